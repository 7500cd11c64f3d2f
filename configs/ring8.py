"""MLP GAN on the 8-Gaussian ring (radius 1, sigma 0.01; PacGAN / VEEGAN protocol sizes) (jgan.presets.ring8)."""

from jgan import presets


def get_config(arg=None):
  return presets.ring8(arg)  # arg: an objective with its recipe, e.g. configs/ring8.py:wgan_gp
