"""DCGAN on TFDS `fashion_mnist` at 28 px (jgan.presets.dcgan); needs --config.data.data_dir=DIR."""

from jgan import presets


def get_config(arg=None):
  return presets.dcgan("fashion_mnist", 28, arg)  # arg: an objective with its recipe
