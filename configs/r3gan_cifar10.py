"""R3GAN's published CIFAR-10 recipe, class-conditional (jgan.presets.r3gan_cifar10; docs/models.md, "R3GAN").

Config E at the paper's size (20.8 M / 21.3 M parameters), RpGAN + R1 + R2 with the reference's cosine
schedules of gamma, the learning rates, Adam's beta2 and the EMA half-life over 20,000 kimg; 250 M images.
"""

from jgan import presets


def get_config():
  return presets.r3gan_cifar10()
