"""DCGAN on TFDS `fashion_mnist` at 28 px (jgan.presets.dcgan).

Prepare the data once: `jgan data prepare fashion_mnist --data_dir DIR`, then --config.data.data_dir=DIR."""

from jgan import presets


def get_config(arg=None):
  return presets.dcgan("fashion_mnist", 28, arg)  # arg: an objective with its recipe
