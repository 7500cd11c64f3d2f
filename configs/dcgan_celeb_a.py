"""DCGAN on TFDS `celeb_a` at 64 px (jgan.presets.dcgan).

Prepare the data once: `jgan data prepare celeb_a --data_dir DIR`, then --config.data.data_dir=DIR."""

from jgan import presets


def get_config(arg=None):
  return presets.dcgan("celeb_a", 64, arg)  # arg: an objective with its recipe
