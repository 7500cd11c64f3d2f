"""DCGAN on TFDS `cifar10` at 32 px (jgan.presets.dcgan).

Prepare the data once: `jgan data prepare cifar10 --data_dir DIR`, then --config.data.data_dir=DIR."""

from jgan import presets


def get_config(arg=None):
  return presets.dcgan("cifar10", 32, arg)  # arg: an objective with its recipe
