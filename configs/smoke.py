"""A tiny DCGAN on mnist5k that trains 10 steps in seconds: the config tests and CI use (jgan.presets.smoke).

The experiment: the keys it sets on ``jgan.config.defaults()`` (``jgan config show configs/smoke.py``
lists every key with its doc and valid values; ``--changed`` prints these lines)::

    c.data.channels = 1
    c.model.latent_dim = 16
    c.model.g_width = 8
    c.model.d_width = 8
    c.train.steps = 10
    c.train.batch_size = 16
    c.train.log_every = 5
    c.train.sample_every = 0
    c.train.num_samples = 16
    c.train.progress = False
"""

from jgan import presets


def get_config(arg=None):
  return presets.smoke(arg)  # arg: an objective with its recipe, e.g. configs/smoke.py:wgan_gp
