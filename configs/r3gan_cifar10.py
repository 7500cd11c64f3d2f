"""R3GAN's published CIFAR-10 recipe, class-conditional (jgan.presets.r3gan_cifar10; docs/models.md, "R3GAN").

Config E at the paper's size (20.8 M / 21.3 M parameters), RpGAN + R1 + R2 with the reference's cosine
schedules of gamma, the learning rates, Adam's beta2 and the EMA half-life over 20,000 kimg; 250 M images.

The experiment: the keys it sets on ``jgan.config.defaults()`` (``jgan config show configs/r3gan_cifar10.py``
lists every key with its doc and valid values; ``--changed`` prints these lines)::

    c.data.name = 'cifar10'
    c.model.name = 'r3gan'
    c.objective.name = 'rpgan'
    c.penalty.name = 'r1_r2'
    c.data.image_size = 32
    c.data.channels = 3
    c.model.latent_dim = 64
    c.model.conditional = True
    c.model.num_classes = 10
    c.penalty.final_scale = 0.1
    c.optim.g.b1 = 0.0
    c.optim.g.b2 = 0.9
    c.optim.g.b2_final = 0.99
    c.optim.d.b1 = 0.0
    c.optim.d.b2 = 0.9
    c.optim.d.b2_final = 0.99
    c.optim.lr_schedule = 'cosine_to_final'
    c.optim.lr_final_scale = 0.25
    c.optim.schedule_kimg = 20000.0
    c.optim.ema_half_life_kimg = 5000.0
    c.train.steps = 488282
    c.train.batch_size = 512
    c.train.sample_every = 5000
    c.checkpoint.every_steps = 5000
"""

from jgan import presets


def get_config():
  return presets.r3gan_cifar10()
