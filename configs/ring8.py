"""MLP GAN on the 8-Gaussian ring (radius 1, sigma 0.01; PacGAN / VEEGAN protocol sizes)."""

from configs import common


def get_config(arg=None):
  c = common.get_config()
  c.data.name = "ring8"
  c.model.name = "mlp"
  c.model.latent_dim = 2
  c.model.g_width = 128
  c.model.d_width = 128
  c.model.depth = 2
  c.optim.g = dict(name="adam", lr=1e-3, b1=0.5, b2=0.999)
  c.optim.d = dict(name="adam", lr=1e-3, b1=0.5, b2=0.999)
  c.optim.ema_decay = 0.99
  c.train.steps = 3000
  c.train.batch_size = 256
  c.train.steps_per_call = 50
  c.train.log_every = 100
  c.train.sample_every = 1000
  c.train.num_samples = 2500
  if arg:  # e.g. configs/ring8.py:wgan_gp selects an objective with its recipe
    common.set_objective(c, arg)
  return c
