"""SNGAN's ResNet on TFDS `cifar10`, class-conditional: conditional BatchNorm in G and a projection D
(Miyato & Koyama 2018; Mimicry's cGAN-PD), same recipe as configs/sngan_cifar10.py (jgan.presets.sngan).

Prepare the data once: `jgan data prepare cifar10 --data_dir DIR`, then --config.data.data_dir=DIR."""

from jgan import presets


def get_config(arg=None):
  return presets.sngan("cifar10", 32, True, arg)  # arg: another objective with its recipe
