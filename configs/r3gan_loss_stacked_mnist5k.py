"""R3GAN's loss and schedules on the demo DCGAN, Stacked MNIST (jgan.presets.r3gan_loss_stacked_mnist5k).

For the loss ablation of issue #28: `configs/r3gan_loss_stacked_mnist5k.py:non_saturating` is the classic GAN
arm, `--config.penalty.name=r1` drops R2.
"""

from jgan import presets


def get_config(arg=None):
  return presets.r3gan_loss_stacked_mnist5k(arg)  # arg: another objective (R1 + R2 and the schedules kept)
