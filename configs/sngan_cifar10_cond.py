"""SNGAN's ResNet on TFDS `cifar10`, class-conditional: conditional BatchNorm in G and a projection D
(Miyato & Koyama 2018; Mimicry's cGAN-PD), same recipe as configs/sngan_cifar10.py (jgan.presets.sngan).

Prepare the data once: `jgan data prepare cifar10 --data_dir DIR`, then --config.data.data_dir=DIR.

The experiment: the keys it sets on ``jgan.config.defaults()`` (``jgan config show configs/sngan_cifar10_cond.py``
lists every key with its doc and valid values; ``--changed`` prints these lines)::

    c.data.name = 'cifar10'
    c.model.name = 'resnet'
    c.objective.name = 'hinge'
    c.data.image_size = 32
    c.data.channels = 3
    c.model.latent_dim = 128
    c.model.conditional = True
    c.model.num_classes = 10
    c.optim.g.b1 = 0.0
    c.optim.g.b2 = 0.9
    c.optim.d.b1 = 0.0
    c.optim.d.b2 = 0.9
    c.optim.lr_schedule = 'linear'
    c.optim.ema_decay = 0.0
    c.train.steps = 100000
    c.train.n_critic = 5
    c.train.sample_every = 5000
"""

from jgan import presets


def get_config(arg=None):
  return presets.sngan("cifar10", 32, True, arg)  # arg: another objective with its recipe
