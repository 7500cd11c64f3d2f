"""MLP GAN on the 8-Gaussian ring (radius 1, sigma 0.01; PacGAN / VEEGAN protocol sizes) (jgan.presets.ring8).

The experiment: the keys it sets on ``jgan.config.defaults()`` (``jgan config show configs/ring8.py``
lists every key with its doc and valid values; ``--changed`` prints these lines)::

    c.data.name = 'ring8'
    c.model.name = 'mlp'
    c.model.latent_dim = 2
    c.optim.g.lr = 0.001
    c.optim.d.lr = 0.001
    c.optim.ema_decay = 0.99
    c.train.steps = 3000
    c.train.batch_size = 256
    c.train.steps_per_call = 50
    c.train.log_every = 100
    c.train.sample_every = 1000
    c.train.num_samples = 2500
"""

from jgan import presets


def get_config(arg=None):
  return presets.ring8(arg)  # arg: an objective with its recipe, e.g. configs/ring8.py:wgan_gp
