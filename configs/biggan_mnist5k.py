"""The BigGAN-style model at 28 px on mnist5k, class-conditional, sized for a 2-core CPU
(jgan.presets.biggan_mnist5k)."""

from jgan import presets


def get_config(arg=None):
  return presets.biggan_mnist5k(arg)  # arg: another objective with its recipe
