"""Optimisers (optax), WGAN weight clipping and the EMA of G's parameters.

``OPTIMIZERS[name](cfg, lr) -> optax.GradientTransformation`` where ``lr`` is a float or an optax schedule
and ``cfg`` has the optimiser's own fields, registered with their defaults (``b1``, ``b2``, ``eps`` for
Adam; ``decay``, ``eps`` for RMSProp; ``momentum`` for SGD): the config keys ``optim.g.*`` / ``optim.d.*``
beside ``name`` and ``lr`` (:mod:`jgan.config_schema`). G and D get separate optimisers, so
two-time-scale updates (TTUR, Heusel et al. 2017) are just two learning rates. ``optim.lr_schedule``
(:data:`LR_SCHEDULES`) decays both rates over the run.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jgan.registry import Registry

OPTIMIZERS: Registry[Callable[..., optax.GradientTransformation]] = Registry(
  "optimizer",
  {
    "adam": lambda c, lr: optax.adam(lr, b1=c.b1, b2=c.b2, eps=c.eps),
    "rmsprop": lambda c, lr: optax.rmsprop(lr, decay=c.decay, eps=c.eps),
    "sgd": lambda c, lr: optax.sgd(lr, momentum=c.momentum or None),  # 0: plain SGD (no momentum state)
  },
  defaults={
    # Adam's betas are DCGAN's (Radford et al. 2015: beta1 0.5), jgan's default recipe; eps is optax's.
    "adam": {"b1": 0.5, "b2": 0.999, "eps": 1e-8},
    # WGAN's RMSProp: no momentum, decay 0.9 as in the reference (PyTorch's alpha=0.99 is a variant).
    "rmsprop": {"decay": 0.9, "eps": 1e-8},
    "sgd": {"momentum": 0.0},
  },
)

# Learning-rate schedules over a run of ``n`` optimiser updates: (base rate, n) -> float or optax schedule.
LR_SCHEDULES: Registry[Callable[[float, int], object]] = Registry(
  "optim.lr_schedule",
  {
    "constant": lambda lr, n: lr,
    "linear": lambda lr, n: optax.linear_schedule(lr, 0.0, n),  # lr at update 0, 0 at update n
    "cosine": lambda lr, n: optax.cosine_decay_schedule(lr, n),  # half a cosine from lr to 0
  },
  sort_choices=False,
)


def make_optimizer(
  cfg, schedule: str = "constant", updates: int = 1, *, field: str = ""
) -> optax.GradientTransformation:
  """The optimiser named ``cfg.name`` (see OPTIMIZERS) with learning rate ``cfg.lr`` under ``schedule``
  (see LR_SCHEDULES) over ``updates`` optimiser updates; ValueError listing the valid names otherwise
  (naming the config ``field`` that holds the name, if given)."""
  OPTIMIZERS.check(cfg.name, field=field)
  LR_SCHEDULES.check(schedule, field="optim.lr_schedule")
  missing = {k: v for k, v in OPTIMIZERS.defaults(cfg.name).items() if k not in cfg}
  if missing:  # a section not resolved by jgan.config.resolve: its fields at their registered defaults
    cfg = ml_collections.ConfigDict({**cfg.to_dict(), **missing})
  return OPTIMIZERS[cfg.name](cfg, LR_SCHEDULES[schedule](cfg.lr, max(1, updates)))


def make_optimizers(config) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
  """G's and D's optimisers for ``config`` (``optim.g``, ``optim.d``, ``optim.lr_schedule``).

  Built once per run by :func:`jgan.components.build`, so the state's optimiser states and the step's
  updates come from the same transformations.
  """
  # G updates once per step, D n_critic times: each schedule spans its own optimiser's updates.
  schedule = config.optim.get("lr_schedule", "constant")  # absent from configs stored before it existed
  g_tx = make_optimizer(config.optim.g, schedule, config.train.steps, field="optim.g.name")
  d_tx = make_optimizer(config.optim.d, schedule, config.train.steps * config.train.n_critic, field="optim.d.name")
  return g_tx, d_tx


def clip_weights(params, clip: float):
  """WGAN weight clipping: every parameter of the pytree projected into ``[-clip, clip]`` (``clip > 0``)."""
  # A plain tree map: optax.projections.projection_box expects bounds shaped like the tree.
  return jax.tree.map(lambda p: jnp.clip(p, -clip, clip), params)


def ema_decay_at(step: jax.Array, decay: float) -> jax.Array:
  """Effective EMA decay at ``step`` (int32 scalar): ``min(decay, (1 + step) / (10 + step))``.

  The warm-up (as in ``tf.train.ExponentialMovingAverage`` with ``num_updates``) keeps the early EMA
  close to the live weights instead of anchored at the random initialisation. Value in ``[0.1, decay]``.
  """
  t = step.astype(jnp.float32)
  return jnp.minimum(decay, (1.0 + t) / (10.0 + t))


def ema_update(ema, params, step: jax.Array, decay: float):
  """New EMA ``decay_t * ema + (1 - decay_t) * params`` (optax's Polyak update), with the warm-up above."""
  return optax.incremental_update(params, ema, 1.0 - ema_decay_at(step, decay))
