"""BigGAN-style model on TFDS `cifar10`, class-conditional, with PyTorch-StudioGAN's CIFAR-10 BigGAN
settings (src/configs/CIFAR10/BigGAN.json: hinge, Adam(2e-4, 0.5, 0.999), 5 D steps, batch 64, EMA
0.9999, attention at 16 px; jgan.presets.biggan, whose docstring lists the differences).

Prepare the data once: `jgan data prepare cifar10 --data_dir DIR`, then --config.data.data_dir=DIR."""

from jgan import presets


def get_config(arg=None):
  return presets.biggan("cifar10", 32, arg)  # arg: another objective with its recipe
