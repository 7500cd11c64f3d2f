"""DCGAN on TFDS `cifar10` at 32 px (jgan.presets.dcgan).

Prepare the data once: `jgan data prepare cifar10 --data_dir DIR`, then --config.data.data_dir=DIR.

The experiment: the keys it sets on ``jgan.config.defaults()`` (``jgan config show configs/dcgan_cifar10.py``
lists every key with its doc and valid values; ``--changed`` prints these lines)::

    c.data.name = 'cifar10'
    c.data.image_size = 32
    c.data.channels = 3
    c.train.steps = 20000
    c.train.batch_size = 128
"""

from jgan import presets


def get_config(arg=None):
  return presets.dcgan("cifar10", 32, arg)  # arg: an objective with its recipe
