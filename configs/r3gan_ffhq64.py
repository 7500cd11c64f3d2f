"""R3GAN's published FFHQ-64 recipe (jgan.presets.r3gan_ffhq64; docs/models.md, "R3GAN").

FFHQ is not a TFDS dataset: the preset reads CelebA at 64 px; `--config.data.name=NAME` trains on FFHQ
prepared from its images (`jgan data prepare PATH --name NAME`, docs/data.md).

The experiment: the keys it sets on ``jgan.config.defaults()`` (``jgan config show configs/r3gan_ffhq64.py``
lists every key with its doc and valid values; ``--changed`` prints these lines)::

    c.data.name = 'celeb_a'
    c.model.name = 'r3gan'
    c.objective.name = 'rpgan'
    c.penalty.name = 'r1_r2'
    c.data.image_size = 64
    c.data.channels = 3
    c.model.latent_dim = 64
    c.penalty.final_scale = 0.1
    c.penalty.gamma = 2.0
    c.optim.g.b1 = 0.0
    c.optim.g.b2 = 0.9
    c.optim.g.b2_final = 0.99
    c.optim.d.b1 = 0.0
    c.optim.d.b2 = 0.9
    c.optim.d.b2_final = 0.99
    c.optim.lr_schedule = 'cosine_to_final'
    c.optim.lr_final_scale = 0.25
    c.optim.schedule_kimg = 20000.0
    c.optim.ema_half_life_kimg = 500.0
    c.train.steps = 78125
    c.train.batch_size = 256
    c.train.sample_every = 5000
    c.checkpoint.every_steps = 5000
"""

from jgan import presets


def get_config():
  return presets.r3gan_ffhq64()
