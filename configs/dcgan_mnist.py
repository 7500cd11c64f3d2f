"""DCGAN on TFDS `mnist` at 28 px (jgan.presets.dcgan). Needs the prepared dataset: --config.data.data_dir=DIR.

The experiment: the keys it sets on ``jgan.config.defaults()`` (``jgan config show configs/dcgan_mnist.py``
lists every key with its doc and valid values; ``--changed`` prints these lines)::

    c.data.name = 'mnist'
    c.data.channels = 1
    c.train.steps = 20000
    c.train.batch_size = 128
"""

from jgan import presets


def get_config(arg=None):
  return presets.dcgan("mnist", 28, arg)  # arg: an objective with its recipe
