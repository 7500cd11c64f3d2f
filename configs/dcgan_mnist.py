"""DCGAN on TFDS `mnist` at 28 px. Needs the prepared dataset: --config.data.data_dir=DIR."""

from configs import common


def get_config(arg=None):
  c = common.get_config()
  c.data.name = "mnist"
  c.data.image_size = 28
  c.train.steps = 20000
  c.train.batch_size = 128
  return c
