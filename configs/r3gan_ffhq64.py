"""R3GAN's published FFHQ-64 recipe (jgan.presets.r3gan_ffhq64; docs/models.md, "R3GAN").

FFHQ is not a TFDS dataset: the preset reads CelebA at 64 px; `--config.data.name=NAME` trains on FFHQ
prepared from its images (`jgan data prepare PATH --name NAME`, docs/data.md).
"""

from jgan import presets


def get_config():
  return presets.r3gan_ffhq64()
