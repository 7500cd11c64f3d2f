"""Stacked MNIST from the embedded mnist5k digits: 3 digits as RGB channels, 1,000 modes (jgan.presets).

PacGAN's Table 3 protocol: evaluate with `jgan eval --workdir DIR --metrics stacked_modes26k`; PacDCGAN2 is
`--config.model.pack=2`. docs/stacked_mnist.md has the table.

The experiment: the keys it sets on ``jgan.config.defaults()`` (``jgan config show configs/stacked_mnist5k.py``
lists every key with its doc and valid values; ``--changed`` prints these lines)::

    c.data.name = 'stacked_mnist5k'
    c.data.channels = 3
    c.model.latent_dim = 64
    c.model.g_width = 32
    c.model.d_width = 32
    c.train.steps = 3000
    c.evals.metrics = 'stacked_modes26k'
"""

from jgan import presets


def get_config(arg=None):
  return presets.stacked_mnist5k(arg)  # arg: an objective with its recipe
