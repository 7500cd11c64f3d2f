"""DCGAN on TFDS `celeb_a` at 64 px (jgan.presets.dcgan).

Prepare the data once: `jgan data prepare celeb_a --data_dir DIR`, then --config.data.data_dir=DIR.

The experiment: the keys it sets on ``jgan.config.defaults()`` (``jgan config show configs/dcgan_celeb_a.py``
lists every key with its doc and valid values; ``--changed`` prints these lines)::

    c.data.name = 'celeb_a'
    c.data.image_size = 64
    c.data.channels = 3
    c.train.steps = 20000
    c.train.batch_size = 128
"""

from jgan import presets


def get_config(arg=None):
  return presets.dcgan("celeb_a", 64, arg)  # arg: an objective with its recipe
