"""A tiny DCGAN on mnist5k that trains 10 steps in seconds: the config tests and CI use."""

from configs import common


def get_config(arg=None):
  c = common.get_config()
  c.data.name = "mnist5k"
  c.data.image_size = 28
  c.model.latent_dim = 16
  c.model.g_width = 8
  c.model.d_width = 8
  c.train.steps = 10
  c.train.batch_size = 16
  c.train.log_every = 5
  c.train.sample_every = 0
  c.train.num_samples = 16
  c.train.progress = False
  if arg:  # e.g. configs/smoke.py:wgan_gp selects an objective with its recipe
    common.set_objective(c, arg)
  return c
