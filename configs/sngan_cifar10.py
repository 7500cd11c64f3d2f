"""SNGAN's ResNet (Miyato et al. 2018) on TFDS `cifar10`, unconditional: hinge loss, Adam(2e-4, 0.0, 0.9),
5 D updates per G update, batch 64, 100k steps with linear decay (Mimicry's recipe; jgan.presets.sngan).

Prepare the data once: `jgan data prepare cifar10 --data_dir DIR`, then --config.data.data_dir=DIR."""

from jgan import presets


def get_config(arg=None):
  return presets.sngan("cifar10", 32, False, arg)  # arg: another objective with its recipe
