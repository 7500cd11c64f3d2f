"""MLP GAN on the 25-Gaussian grid, PacGAN / VEEGAN sizes (jgan.presets.grid25)."""

from jgan import presets


def get_config(arg=None):
  return presets.grid25(arg)  # arg: an objective with its recipe, e.g. configs/grid25.py:wgan_gp
