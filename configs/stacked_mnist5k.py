"""Stacked MNIST from the embedded mnist5k digits: 3 digits as RGB channels, 1,000 modes (jgan.presets).

PacGAN's Table 3 protocol: evaluate with `jgan eval --workdir DIR --metrics stacked_modes26k`; PacDCGAN2 is
`--config.model.pack=2`. docs/stacked_mnist.md has the table."""

from jgan import presets


def get_config(arg=None):
  return presets.stacked_mnist5k(arg)  # arg: an objective with its recipe
