"""BigGAN-style model on TFDS `cifar10`, class-conditional, with PyTorch-StudioGAN's CIFAR-10 BigGAN
settings (src/configs/CIFAR10/BigGAN.json: hinge, Adam(2e-4, 0.5, 0.999), 5 D steps, batch 64, EMA
0.9999, attention at 16 px; jgan.presets.biggan, whose docstring lists the differences).

Prepare the data once: `jgan data prepare cifar10 --data_dir DIR`, then --config.data.data_dir=DIR.

The experiment: the keys it sets on ``jgan.config.defaults()`` (``jgan config show configs/biggan_cifar10.py``
lists every key with its doc and valid values; ``--changed`` prints these lines)::

    c.data.name = 'cifar10'
    c.model.name = 'biggan'
    c.objective.name = 'hinge'
    c.data.image_size = 32
    c.data.channels = 3
    c.model.latent_dim = 80
    c.model.conditional = True
    c.model.num_classes = 10
    c.optim.ema_decay = 0.9999
    c.train.steps = 100000
    c.train.n_critic = 5
    c.train.sample_every = 5000
"""

from jgan import presets


def get_config(arg=None):
  return presets.biggan("cifar10", 32, arg)  # arg: another objective with its recipe
