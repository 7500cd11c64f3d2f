"""The CPU-sized R3GAN on Stacked MNIST, 1,000 modes (jgan.presets.r3gan_stacked_mnist5k; docs/models.md, "R3GAN").

`configs/r3gan_stacked_mnist5k.py:non_saturating` swaps RpGAN for another objective, R1 + R2 and the schedules kept.
"""

from jgan import presets


def get_config(arg=None):
  return presets.r3gan_stacked_mnist5k(arg)  # arg: another objective (R1 + R2 and the schedules kept)
