"""Mode-collapse lab: the 2-D ring / grid benchmarks with one preset per fix.

``config("DATASET[:METHOD]")`` (``configs/mode_collapse.py:ring8:pacgan2`` on the command line):

* DATASET: ``ring8`` (8 Gaussians on the unit circle, sigma 0.01) or ``grid25`` ({-4,..,4}^2, sigma
  0.05): the VEEGAN / PacGAN mixtures, centres and sigmas in ``jgan.data.mixtures.MIXTURES``.
* METHOD (default ``gan``), each changing only what the fix needs, so every method shares the protocol:
  ``gan`` (non-saturating GAN, the PacGAN baseline); ``pacganM`` (PacGAN, Lin et al. 2018: D judges M
  samples at once, ``model.pack = M``); ``unrolledK`` (Unrolled GAN, Metz et al. 2017: G looks K D
  updates ahead, ``train.unrolled_steps = K``; ``unrolled`` = 5, the paper's ring setting); any
  objective name (``wgan_gp``, ``hinge``, ...) with its recipe from :mod:`jgan.recipes` (WGAN-GP:
  Adam (0.5, 0.9), 5 critic steps, gradient penalty 10).

Protocol (docs/mode_collapse.md explains each choice and how it was tuned): MLPs (ReLU in G,
LeakyReLU(0.2) in D) with a 2-D latent as PacGAN, Adam beta1 0.5, an EMA of G (decay 0.99) for
evaluation, G updates fused 500 per call. Per dataset, the same for every method and seed:

* ring8: 2 hidden layers of 128 units; G's learning rate 1e-3 and D's 1e-4 (the two rates of Metz et
  al.'s ring experiment, a regime where the plain GAN collapses early); D judges 64 items per step.
* grid25: 3 hidden layers of 128 units; both learning rates 1e-3; D judges 128 items per step.
* Both: 60,000 G updates (at 12,000 the packed discriminators were still sharpening their modes; see
  docs/mode_collapse.md).

As in PacGAN, D judges the same number of items for every packing degree M, so G makes M times as many
samples (``train.batch_size = items * M``).
"""

import jax
import ml_collections
import numpy as np

from jgan import config as config_lib
from jgan import recipes, rng
from jgan import state as state_lib
from jgan.data import mixtures
from jgan.metrics import modes

DATASETS = ("ring8", "grid25")
EVAL_SAMPLES = 2500  # VEEGAN / PacGAN evaluate 2,500 generated points
# dataset -> (hidden layers, G learning rate, D learning rate, D items per step, G updates)
PROTOCOL = {"ring8": (2, 1e-3, 1e-4, 64, 60_000), "grid25": (3, 1e-3, 1e-3, 128, 60_000)}


def _apply_method(c, method: str):
  if method == "gan":
    return c
  if method.startswith("pacgan") and method[6:].isdigit():
    c.model.pack = int(method[6:])
    c.train.batch_size *= c.model.pack
    return c
  if method.startswith("unrolled") and (method[8:].isdigit() or method == "unrolled"):
    c.train.unrolled_steps = int(method[8:] or 5)
    return c
  try:
    return recipes.set_objective(c, method)
  except ValueError:
    raise ValueError(
      f"unknown mode-collapse method {method!r}; valid choices: gan, pacganM (e.g. pacgan2), "
      f"unrolledK (e.g. unrolled5) or an objective name (e.g. wgan_gp)"
    ) from None


def config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The protocol's config for ``"DATASET[:METHOD]"`` (default ``ring8:gan``); ValueError for a bad name."""
  dataset, _, method = (arg or "ring8").partition(":")
  if dataset not in DATASETS:
    raise ValueError(f"unknown mode-collapse dataset {dataset!r}; valid choices: {', '.join(DATASETS)}")
  depth, g_lr, d_lr, items, steps = PROTOCOL[dataset]
  c = config_lib.set_model(config_lib.defaults(), "mlp", latent_dim=2, g_width=128, d_width=128, depth=depth)
  c.data.name = dataset
  c.optim.g = {"name": "adam", "lr": g_lr, "b1": 0.5, "b2": 0.999}
  c.optim.d = {"name": "adam", "lr": d_lr, "b1": 0.5, "b2": 0.999}
  c.optim.ema_decay = 0.99
  c.train.steps = steps
  c.train.batch_size = items
  c.train.steps_per_call = 500
  c.train.log_every = 500
  c.train.sample_every = 0  # final scatter only: a sweep trains many short runs
  c.train.num_samples = 2500
  c.checkpoint.every_steps = 0  # runs last a minute: a checkpoint at the end (and on SIGTERM) suffices
  return _apply_method(c, method or "gan")


def evaluate(state, config) -> tuple[dict, np.ndarray]:
  """Mode metrics of :data:`EVAL_SAMPLES` points from the EMA generator; returns (metrics, points [N, 2])."""
  key = rng.run_keys(config.seed).eval
  # The state is an argument of the jitted sampler: every seed runs the same cached program.
  x = np.asarray(jax.device_get(state_lib.sample(state, key, EVAL_SAMPLES)), np.float32)
  centres, sigma = mixtures.get(config.data.name)
  return modes.mode_metrics(x, centres, sigma), x
