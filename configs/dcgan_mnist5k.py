"""DCGAN on mnist5k, 28 px: the first ``make demo`` recipe, kept unchanged for comparisons and the golden record
(jgan.presets.dcgan_mnist5k; ``make demo`` runs configs/demo_mnist5k.py now).

The experiment: the keys it sets on ``jgan.config.defaults()`` (``jgan config show configs/dcgan_mnist5k.py``
lists every key with its doc and valid values; ``--changed`` prints these lines)::

    c.data.channels = 1
    c.model.latent_dim = 64
    c.model.g_width = 32
    c.model.d_width = 32
    c.train.steps = 3000
"""

from jgan import presets


def get_config(arg=None):
  return presets.dcgan_mnist5k(arg)  # arg: an objective with its recipe, e.g. configs/dcgan_mnist5k.py:wgan_gp
