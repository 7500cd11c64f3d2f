"""Hyperparameter schedules counted in training images, as R3GAN (Huang et al. 2024) and StyleGAN/EDM count
them: the learning rates, Adam's beta2, the penalty weight and the EMA half-life of G, each a pure
function of the step counter in the train state, so a resumed run computes exactly what the
uninterrupted run did.

* :func:`cosine`: half a cosine from ``start`` to ``end`` over ``span`` units, then held at ``end`` --
  the reference's ``cosine_decay_with_warmup`` without warm-up (brownvc/R3GAN
  ``training/training_loop.py``): ``start + (end - start) * (1 - cos(pi * min(n, span) / span)) / 2``.
* :func:`images`: the images seen before step ``t``, ``t * batch_size`` (one D and one G batch per
  step, as the reference counts ``cur_nimg``).
* :func:`ema_beta`: the EMA's per-step decay from a half-life in images,
  ``0.5 ** (batch_size / max(half_life, 1e-8))`` (StyleGAN2-ADA, EDM, R3GAN): the EMA forgets half of
  its memory every ``half_life`` images; a half-life of 0 copies the live weights.

Config (:mod:`jgan.config_schema`): ``optim.schedule_kimg`` is the span of every cosine schedule in thousands
of images (0: the whole run, ``train.steps * train.batch_size``); ``optim.lr_schedule = "cosine_to_final"``
takes each player's rate from ``optim.{g,d}.lr`` to ``optim.lr_final_scale`` times it (:mod:`jgan.optim`),
``optim.{g,d}.b2_final`` (> 0) moves Adam's beta2 from ``b2`` to it, ``penalty.final_scale`` (!= 1) the
penalty's weight from its value to that multiple, and ``optim.ema_half_life_kimg`` (> 0) ramps the EMA's
half-life from 0 up to it. Each is a function of a counter in the train state (the step, or an optimiser's
update count), so a resumed run continues every schedule where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

Schedule = Callable[[jax.Array], jax.Array]  # int step / count -> float32 value


def cosine(start: float, end: float, span: float) -> Schedule:
  """``n -> start + (end - start) * (1 - cos(pi * min(n, span) / span)) / 2`` as float32 (``n`` any
  numeric array; ``span > 0``). ``start`` at 0, their mean at ``span / 2``, ``end`` from ``span`` on."""
  if not span > 0:
    raise ValueError(f"a cosine schedule needs a positive span, got {span!r}")

  def value(n: jax.Array) -> jax.Array:
    frac = jnp.minimum(jnp.asarray(n, jnp.float32) / jnp.float32(span), 1.0)
    return jnp.float32(start) + jnp.float32(end - start) * 0.5 * (1.0 - jnp.cos(jnp.pi * frac))

  return value


def images(step: jax.Array, batch_size: int) -> jax.Array:
  """Images seen before step ``step`` (int32 scalar): ``step * batch_size`` as float32."""
  return jnp.asarray(step, jnp.float32) * jnp.float32(batch_size)


def span_images(config) -> float:
  """The span of the run's cosine schedules in images: ``optim.schedule_kimg * 1000``, or with 0 the
  whole run, ``train.steps * train.batch_size``."""
  kimg = config.optim.get("schedule_kimg", 0.0)
  return float(kimg * 1000.0 if kimg else config.train.steps * config.train.batch_size)


def spans_run(config) -> bool:
  """Whether a schedule of ``config`` spans the whole run (``optim.schedule_kimg`` 0 with a schedule in
  use), so that ``train.steps`` changes what the run computes (:mod:`jgan.resume`)."""
  o = config.optim
  used = (
    o.get("lr_schedule", "constant") == "cosine_to_final"
    or o.get("ema_half_life_kimg", 0.0) > 0
    or config.penalty.get("final_scale", 1.0) != 1.0
    or any(o[who].get("b2_final", 0.0) > 0 for who in ("g", "d"))
  )
  return used and not o.get("schedule_kimg", 0.0)


def ema_beta(half_life: jax.Array, batch_size: int) -> jax.Array:
  """Per-step EMA decay for a half-life of ``half_life`` images: ``0.5 ** (batch / max(half_life, 1e-8))``,
  float32 in ``[0, 1)``; 0 (copy the live weights) at half-life 0."""
  return jnp.power(jnp.float32(0.5), jnp.float32(batch_size) / jnp.maximum(jnp.asarray(half_life, jnp.float32), 1e-8))


def ema_beta_schedule(half_life_kimg: float, span: float, batch_size: int) -> Schedule:
  """``step -> ema_beta(cosine(0, half_life_kimg * 1000, span)(images(step)), batch_size)``: R3GAN's EMA,
  its half-life ramped from 0 over ``span`` images on the cosine."""
  half_life = cosine(0.0, half_life_kimg * 1000.0, span)
  return lambda step: ema_beta(half_life(images(step, batch_size)), batch_size)


def scale_schedule(final_scale: float, span: float, batch_size: int) -> Schedule:
  """``step -> cosine(1, final_scale, span)(images(step))``: a weight's multiplier (R3GAN's gamma)."""
  scale = cosine(1.0, final_scale, span)
  return lambda step: scale(images(step, batch_size))
