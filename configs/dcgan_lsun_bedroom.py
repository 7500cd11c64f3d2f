"""DCGAN on TFDS `lsun_bedroom` at 64 px (jgan.presets.dcgan); needs --config.data.data_dir=DIR."""

from jgan import presets


def get_config(arg=None):
  return presets.dcgan("lsun_bedroom", 64, arg)  # arg: an objective with its recipe
