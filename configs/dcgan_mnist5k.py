"""The ``make demo`` default: DCGAN on mnist5k, 28 px (jgan.presets.dcgan_mnist5k)."""

from jgan import presets


def get_config(arg=None):
  return presets.dcgan_mnist5k(arg)  # arg: an objective with its recipe, e.g. configs/dcgan_mnist5k.py:wgan_gp
