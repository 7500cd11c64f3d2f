"""The CPU-sized R3GAN on mnist5k (jgan.presets.r3gan_mnist5k; docs/models.md, "R3GAN").

`configs/r3gan_mnist5k.py:non_saturating` swaps RpGAN for another objective, R1 + R2 and the schedules kept.

The experiment: the keys it sets on ``jgan.config.defaults()`` (``jgan config show configs/r3gan_mnist5k.py``
lists every key with its doc and valid values; ``--changed`` prints these lines)::

    c.model.name = 'r3gan'
    c.objective.name = 'rpgan'
    c.penalty.name = 'r1_r2'
    c.data.channels = 1
    c.model.latent_dim = 64
    c.model.arch = 'small'
    c.model.width = 32
    c.model.blocks = 1
    c.penalty.final_scale = 0.1
    c.penalty.gamma = 1.0
    c.optim.g.b1 = 0.0
    c.optim.g.b2 = 0.9
    c.optim.g.b2_final = 0.99
    c.optim.d.b1 = 0.0
    c.optim.d.b2 = 0.9
    c.optim.d.b2_final = 0.99
    c.optim.lr_schedule = 'cosine_to_final'
    c.optim.lr_final_scale = 0.25
    c.optim.ema_half_life_kimg = 5.0
    c.train.steps = 2000
    c.train.batch_size = 32
    c.checkpoint.every_steps = 500
"""

from jgan import presets


def get_config(arg=None):
  return presets.r3gan_mnist5k(arg)  # arg: another objective (R1 + R2 and the schedules kept)
