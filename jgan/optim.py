"""Optimisers (optax), WGAN weight clipping and the EMA of G's parameters.

``OPTIMIZERS[name](cfg, lr) -> optax.GradientTransformation`` where ``lr`` is a float or an optax schedule
and ``cfg`` has the optimiser's own fields, registered with their defaults (``b1``, ``b2``, ``eps`` for
Adam; ``decay``, ``eps`` for RMSProp; ``momentum`` for SGD): the config keys ``optim.g.*`` / ``optim.d.*``
beside ``name`` and ``lr`` (:mod:`jgan.config_schema`). G and D get separate optimisers, so
two-time-scale updates (TTUR, Heusel et al. 2017) are just two learning rates. ``optim.lr_schedule``
(:data:`LR_SCHEDULES`) decays both rates over the run, or with ``cosine_to_final`` (R3GAN) moves each from
``lr`` to ``lr * optim.lr_final_scale`` on half a cosine over ``optim.schedule_kimg``, then holds it. Adam's
beta2 follows a cosine of its own from ``b2`` to ``b2_final`` over the same span when ``b2_final > 0``
(``optax.inject_hyperparams``: the current rate and beta2 sit in the optimiser state, so a resumed run
continues with them). The EMA of G decays at ``optim.ema_decay`` (warmed up), or per a half-life in images
(``optim.ema_half_life_kimg``, :mod:`jgan.schedules`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jgan import schedules
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
    # b2_final > 0: beta2 moves from b2 to it on the cosine over optim.schedule_kimg (R3GAN: 0.9 -> 0.99).
    "adam": {"b1": 0.5, "b2": 0.999, "eps": 1e-8, "b2_final": 0.0},
    # WGAN's RMSProp: no momentum, decay 0.9 as in the reference (PyTorch's alpha=0.99 is a variant).
    "rmsprop": {"decay": 0.9, "eps": 1e-8},
    "sgd": {"momentum": 0.0},
  },
)


class Span(NamedTuple):
  """What a learning-rate schedule spans, in one optimiser's updates: ``updates`` in the whole run,
  ``schedule`` of the cosine schedules (``optim.schedule_kimg``; the whole run when 0), and the rate's
  final multiple ``final_scale`` (``optim.lr_final_scale``)."""

  updates: int
  schedule: float
  final_scale: float


# Learning-rate schedules: (base rate, Span) -> float or optax schedule (a function of the update count).
LR_SCHEDULES: Registry[Callable[[float, Span], object]] = Registry(
  "optim.lr_schedule",
  {
    "constant": lambda lr, s: lr,
    "linear": lambda lr, s: optax.linear_schedule(lr, 0.0, s.updates),  # lr at update 0, 0 at update n
    "cosine": lambda lr, s: optax.cosine_decay_schedule(lr, s.updates),  # half a cosine from lr to 0
    # R3GAN: half a cosine from lr to lr * final_scale over the schedules' span, then held there.
    "cosine_to_final": lambda lr, s: schedules.cosine(lr, lr * s.final_scale, s.schedule),
  },
  sort_choices=False,
)


def make_optimizer(
  cfg, schedule: str = "constant", updates: int = 1, *, field: str = "", span: float = 0.0, final_scale: float = 0.0
) -> optax.GradientTransformation:
  """The optimiser named ``cfg.name`` (see OPTIMIZERS) with learning rate ``cfg.lr`` under ``schedule``
  (see LR_SCHEDULES) over ``updates`` optimiser updates; ValueError listing the valid names otherwise
  (naming the config ``field`` that holds the name, if given).

  ``span`` (> 0; 0: ``updates``) is the length of the cosine schedules in this optimiser's updates, over
  which ``cosine_to_final`` takes the rate to ``cfg.lr * final_scale`` and Adam's beta2 goes from ``cfg.b2``
  to ``cfg.b2_final`` (when that is > 0; then the optimiser is ``optax.inject_hyperparams(optax.adam)``,
  its state holding the current ``learning_rate`` and ``b2``).
  """
  OPTIMIZERS.check(cfg.name, field=field)
  LR_SCHEDULES.check(schedule, field="optim.lr_schedule")
  missing = {k: v for k, v in OPTIMIZERS.defaults(cfg.name).items() if k not in cfg}
  if missing:  # a section not resolved by jgan.config.resolve: its fields at their registered defaults
    cfg = ml_collections.ConfigDict({**cfg.to_dict(), **missing})
  n = max(1, updates)
  s = Span(n, float(span) if span > 0 else float(n), final_scale)
  lr = LR_SCHEDULES[schedule](cfg.lr, s)
  if cfg.name == "adam" and cfg.b2_final > 0:  # beta2 on the cosine too (R3GAN)
    b2 = schedules.cosine(cfg.b2, cfg.b2_final, s.schedule)
    return optax.inject_hyperparams(optax.adam)(learning_rate=lr, b1=cfg.b1, b2=b2, eps=cfg.eps)
  return OPTIMIZERS[cfg.name](cfg, lr)


def make_optimizers(config) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
  """G's and D's optimisers for ``config`` (``optim.g``, ``optim.d``, ``optim.lr_schedule``,
  ``optim.lr_final_scale``, ``optim.schedule_kimg``).

  Built once per run by :func:`jgan.components.build`, so the state's optimiser states and the step's
  updates come from the same transformations.
  """
  # G updates once per step, D n_critic times: each schedule spans its own optimiser's updates.
  schedule = config.optim.get("lr_schedule", "constant")  # absent from configs stored before it existed
  steps, n_critic = config.train.steps, config.train.n_critic
  span = schedules.span_images(config) / config.train.batch_size  # in steps (G updates) of batch_size images
  final = config.optim.get("lr_final_scale", 0.0)
  g_tx = make_optimizer(config.optim.g, schedule, steps, field="optim.g.name", span=span, final_scale=final)
  d_tx = make_optimizer(
    config.optim.d, schedule, steps * n_critic, field="optim.d.name", span=span * n_critic, final_scale=final
  )
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


def ema_update_beta(ema, params, beta: jax.Array):
  """New EMA ``beta * ema + (1 - beta) * params`` for a per-step decay ``beta`` (float32 scalar in [0, 1),
  :func:`jgan.schedules.ema_beta_schedule`'s): the reference's ``p.lerp(p_ema, beta)``."""
  return optax.incremental_update(params, ema, 1.0 - beta)
