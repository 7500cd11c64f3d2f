"""A tiny DCGAN on mnist5k that trains 10 steps in seconds: the config tests and CI use (jgan.presets.smoke)."""

from jgan import presets


def get_config(arg=None):
  return presets.smoke(arg)  # arg: an objective with its recipe, e.g. configs/smoke.py:wgan_gp
