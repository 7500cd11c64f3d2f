"""R3GAN's presets (Huang et al. 2024, brownvc/R3GAN): the paper's CIFAR-10 and FFHQ-64 recipes and the
CPU-sized mnist5k / Stacked MNIST ones, and :func:`r3gan_recipe`, R3GAN's loss and schedules on any config
(``jgan.presets.r3gan_loss_stacked5k``: on the demo DCGAN, for the loss ablation of docs/models.md).
Registered in :data:`jgan.presets.PRESETS` and re-exported there (``jgan.presets.r3gan_mnist5k()``).
"""

from __future__ import annotations

import ml_collections

from jgan import config as config_lib


def r3gan_recipe(c: ml_collections.ConfigDict, *, gamma: float, ema_kimg: float, schedule_kimg: float) -> None:
  """R3GAN's loss and schedules on config ``c`` (brownvc/R3GAN ``train.py`` and ``training_loop.py``): RpGAN,
  R1 + R2 every step with gamma on the cosine to a tenth, Adam with beta1 0, beta2 0.9 -> 0.99 and lr 2e-4 ->
  5e-5 (both players), the EMA half-life ramped from 0 to ``ema_kimg``, all over ``schedule_kimg``."""
  config_lib.set_component(c, "objective", "rpgan")
  config_lib.set_component(c, "penalty", "r1_r2", gamma=gamma, every=1, final_scale=R3GAN_FINAL_GAMMA_SCALE)
  for who in ("g", "d"):
    config_lib.set_component(c, f"optim.{who}", "adam", lr=2e-4, b1=0.0, b2=0.9, b2_final=0.99)
  c.optim.lr_schedule = "cosine_to_final"
  c.optim.lr_final_scale = 0.25  # 2e-4 -> 5e-5
  c.optim.schedule_kimg = schedule_kimg
  c.optim.ema_half_life_kimg = ema_kimg


R3GAN_FINAL_GAMMA_SCALE = 0.1  # every reference preset: gamma_scheduler's final_value = base_value / 10
R3GAN_SCHEDULE_KIMG = 20_000.0  # the reference's decay_nimg = 2e7 (CIFAR-10, FFHQ)


def r3gan(
  dataset: str,
  image_size: int,
  *,
  conditional: bool,
  gamma: float,
  ema_kimg: float,
  batch_size: int,
  total_kimg: float,
  schedule_kimg: float = R3GAN_SCHEDULE_KIMG,
) -> ml_collections.ConfigDict:
  """R3GAN (Huang et al. 2024, config E; model ``r3gan``) with the reference's recipe (brownvc/R3GAN
  ``train.py`` presets): RpGAN with G on its own real batch, R1 + R2 every step with gamma on a cosine to
  a tenth of its start, Adam with beta1 0 and beta2 0.9 -> 0.99 and lr 2e-4 -> 5e-5 on the same cosine
  over ``schedule_kimg`` (20,000 kimg, then held), the EMA of G with a half-life ramped from 0 to
  ``ema_kimg`` on it, z of 64, ``total_kimg`` thousand images of batch ``batch_size``.

  Not carried over: the reference's augmentation (its ADA pipeline with p on a cosine from 0, not
  adaptive) and dataset x-flips, which jgan has no schedule / option for yet; bfloat16 stages (set
  ``model.compute_dtype``).
  """
  c = config_lib.set_model(config_lib.defaults(), "r3gan", latent_dim=64, conditional=conditional)
  c.data.name = dataset
  c.data.image_size = image_size
  r3gan_recipe(c, gamma=gamma, ema_kimg=ema_kimg, schedule_kimg=schedule_kimg)
  c.train.batch_size = batch_size
  c.train.steps = -(-int(total_kimg * 1000) // batch_size)  # at least total_kimg
  c.train.sample_every = 5000
  c.checkpoint.every_steps = 5000
  return c


def r3gan_cifar10() -> ml_collections.ConfigDict:
  """The paper's CIFAR-10 recipe, class-conditional (reference ``--preset=CIFAR10 --cond=1 --batch=512``):
  widths 768 x 4 stages, 2 blocks each, 96 groups (20,781,952 / 21,280,512 parameters), gamma 0.05 ->
  0.005, EMA half-life up to 5,000 kimg, batch 512, 250 M images (488,282 steps; the paper's budget).
  Needs the prepared dataset (``jgan data prepare cifar10``)."""
  return r3gan("cifar10", 32, conditional=True, gamma=0.05, ema_kimg=5000.0, batch_size=512, total_kimg=250_000.0)


def r3gan_ffhq64() -> ml_collections.ConfigDict:
  """The paper's FFHQ-64 recipe (reference ``--preset=FFHQ-64 --batch=256``): widths 768 x 4 + 384, 2
  blocks per stage (22,429,824 / 22,381,440 parameters), gamma 2 -> 0.2, EMA half-life up to 500 kimg,
  batch 256. FFHQ is not among jgan's datasets (TFDS has no FFHQ): the preset reads CelebA at 64 px
  (``data.name = celeb_a``) until an FFHQ source is added (or set ``data.name`` to FFHQ prepared from a
  folder, ``jgan data prepare PATH``); the budget is left at 20,000 kimg (the schedules' span)."""
  return r3gan("celeb_a", 64, conditional=False, gamma=2.0, ema_kimg=500.0, batch_size=256, total_kimg=20_000.0)


def r3gan_mnist5k(objective: str | None = None) -> ml_collections.ConfigDict:
  """A CPU-sized R3GAN on mnist5k (28 px): model ``r3gan``'s ``small`` table at width R3GAN_MNIST5K_WIDTH
  (G 7x7x32 -> 14x14x16 -> 28x28x8, D the reverse; one block per stage), RpGAN + R1 + R2 with R3GAN's
  schedules over the run (gamma R3GAN_MNIST5K_GAMMA -> a tenth, lr 2e-4 -> 5e-5, beta2 0.9 -> 0.99, EMA
  half-life up to R3GAN_MNIST5K_EMA_KIMG kimg), batch 32, 2,000 steps (64 k images).

  ``objective``: another objective, R1 + R2 and the schedules kept (the loss ablation of docs/models.md).
  Measured on the shared 2-core CPU: 5.5 GFLOP and 0.17 CPU s per step (the DCGAN demo with R1 + R2 at
  batch 64: 5.6 GFLOP); the penalties' double back-propagation is most of it."""
  c = r3gan(
    "mnist5k",
    28,
    conditional=False,
    gamma=R3GAN_MNIST5K_GAMMA,
    ema_kimg=R3GAN_MNIST5K_EMA_KIMG,
    batch_size=32,
    total_kimg=64.0,
    schedule_kimg=0.0,
  )
  c.model.arch, c.model.width, c.model.blocks = "small", R3GAN_MNIST5K_WIDTH, 1
  c.train.sample_every = 500
  c.checkpoint.every_steps = 500
  if objective:
    config_lib.set_component(c, "objective", objective)
  return c


def r3gan_stacked_mnist5k(objective: str | None = None) -> ml_collections.ConfigDict:
  """:func:`r3gan_mnist5k` on Stacked MNIST (1,000 modes; ``stacked_modes26k``, PacGAN Table 3's protocol)."""
  c = r3gan_mnist5k(objective)
  c.data.name = "stacked_mnist5k"
  c.evals.metrics = "stacked_modes26k"
  return c


# The CPU-sized R3GAN (docs/models.md, "R3GAN"). gamma: at 500 steps on Stacked MNIST (seed 0) gamma 0.1 hit
# 404 modes with D far ahead (D(real) - D(fake) ~ 5), gamma 1.0 639 modes (the earlier session's runs).
R3GAN_MNIST5K_WIDTH = 32
R3GAN_MNIST5K_GAMMA = 1.0
R3GAN_MNIST5K_EMA_KIMG = 5.0
