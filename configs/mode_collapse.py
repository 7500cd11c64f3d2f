"""The mode-collapse protocol, ``configs/mode_collapse.py:DATASET[:METHOD]`` (jgan.labs.mode_collapse.config).

DATASET is ring8 or grid25; METHOD is gan (default), pacganM, unrolledK or an objective name.

The experiment: the keys it sets on ``jgan.config.defaults()`` (``jgan config show configs/mode_collapse.py``
lists every key with its doc and valid values; ``--changed`` prints these lines)::

    c.data.name = 'ring8'
    c.model.name = 'mlp'
    c.model.latent_dim = 2
    c.optim.g.lr = 0.001
    c.optim.d.lr = 0.0001
    c.optim.ema_decay = 0.99
    c.train.steps = 60000
    c.train.steps_per_call = 500
    c.train.log_every = 500
    c.train.sample_every = 0
    c.train.num_samples = 2500
    c.checkpoint.every_steps = 0
"""

from jgan.labs import mode_collapse


def get_config(arg=None):
  return mode_collapse.config(arg)
