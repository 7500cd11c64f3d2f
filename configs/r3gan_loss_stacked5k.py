"""R3GAN's loss and schedules on the demo DCGAN, Stacked MNIST (jgan.presets.r3gan_loss_stacked5k).

For the loss ablation of issue #28: `configs/r3gan_loss_stacked5k.py:non_saturating` is the classic GAN
arm, `--config.penalty.name=r1` drops R2.

The experiment: the keys it sets on ``jgan.config.defaults()`` (``jgan config show configs/r3gan_loss_stacked5k.py``
lists every key with its doc and valid values; ``--changed`` prints these lines)::

    c.data.name = 'stacked_mnist5k'
    c.objective.name = 'rpgan'
    c.penalty.name = 'r1_r2'
    c.data.channels = 3
    c.model.latent_dim = 64
    c.model.g_width = 32
    c.model.d_width = 32
    c.model.d_norm = 'none'
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
    c.optim.ema_half_life_kimg = 10.0
    c.train.steps = 2000
    c.checkpoint.every_steps = 500
    c.evals.metrics = 'stacked_modes26k'
"""

from jgan import presets


def get_config(arg=None):
  return presets.r3gan_loss_stacked5k(arg)  # arg: another objective (R1 + R2 and the schedules kept)
