"""SNGAN's ResNet at 28 px on mnist5k, class-conditional, sized for a 2-core CPU (jgan.presets.resnet_mnist5k).

--config.model.conditional=False trains the unconditional model."""

from jgan import presets


def get_config(arg=None):
  return presets.resnet_mnist5k(arg)  # arg: another objective with its recipe
