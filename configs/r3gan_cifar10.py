"""R3GAN's published recipe as preset `r3gan_cifar10` (jgan.presets.r3gan_cifar10; docs/models.md, "R3GAN")."""

from jgan import presets


def get_config():
  return presets.r3gan_cifar10()
