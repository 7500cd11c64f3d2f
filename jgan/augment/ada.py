"""ADA: adaptive discriminator augmentation (Karras et al. 2020, "Training GANs with Limited Data").

The augmentation pipeline (``jgan.augment.ada_pipeline``) is applied to every image D sees with strength
``p``; ``p`` is tuned from D's overfitting heuristic

    r_t = E[sign(D(x_real))]

accumulated over ``interval`` D updates (the reference: 4 minibatches), then

    p <- clip(p + sign(r_t - target) * N / (kimg * 1000), 0, 1)

with ``N`` the number of real images scored since the last adjustment (``batch * interval``), so that p can
move from 0 to 1 in ``kimg`` thousand images (500k in the paper, target 0.6). This follows NVlabs/
stylegan2-ada-pytorch ``training_loop.py``; two differences: the reference clamps p only at 0 (it may
exceed 1, where it acts as 1 but takes longer to come down), and it also counts the signs its lazy R1
passes report. The state is a dict of arrays (lives in the checkpoint, so a resumed run continues with the
same p bit for bit):

* ``p`` float32: the current strength;
* ``sign_sum`` int32, ``count`` int32, ``updates`` int32: sum of ``sign(D(real))``, number of real scores
  and number of D updates since the last adjustment (exact integer accumulators);
* ``rt`` float32: r_t of the last completed interval (0 before the first), for logging.
"""

from __future__ import annotations

import jax.numpy as jnp

from jgan.augment.ada_pipeline import PIPELINES, ada_pipeline
from jgan.augment.base import Array, Augment


def ada_init_state(p: float = 0.0) -> dict[str, Array]:
  """The heuristic's initial state (see the module docstring) with strength ``p``."""
  return {
    "p": jnp.asarray(p, jnp.float32),
    "sign_sum": jnp.zeros((), jnp.int32),
    "count": jnp.zeros((), jnp.int32),
    "updates": jnp.zeros((), jnp.int32),
    "rt": jnp.zeros((), jnp.float32),
  }


def ada_update(
  state: dict[str, Array], d_real: Array, *, target: float, interval: int, kimg: float, adaptive: bool = True
) -> tuple[dict[str, Array], dict[str, Array]]:
  """One D update's step of the p heuristic; pure, no Python control flow on values (jit / scan safe).

  Args:
    state: as :func:`ada_init_state` returns.
    d_real: float ``[B]`` raw D scores (logits / critic values) on this update's real batch.
    target: the r_t aimed at (0.6 in the paper).
    interval: D updates per adjustment of p.
    kimg: thousands of real images for p to go from 0 to 1.
    adaptive: False keeps p fixed (r_t is still measured).

  Returns:
    ``(state, {"ada_p": p, "ada_rt": r_t})``: float32 scalars, p after this update and r_t of the last
    completed interval.
  """
  if d_real.ndim != 1:
    raise ValueError(f"ada's update_state needs D's raw scores on the real batch [B], got shape {d_real.shape}")
  sign_sum = state["sign_sum"] + jnp.sum(jnp.sign(d_real).astype(jnp.int32))
  count = state["count"] + d_real.shape[0]
  updates = state["updates"] + 1
  due = updates >= interval
  rt = sign_sum.astype(jnp.float32) / jnp.maximum(count, 1).astype(jnp.float32)
  step = jnp.sign(rt - target) * count.astype(jnp.float32) / (kimg * 1000.0)
  p = state["p"]
  if adaptive:
    p = jnp.where(due, jnp.clip(p + step, 0.0, 1.0), p).astype(jnp.float32)
  zero = jnp.zeros((), jnp.int32)
  new = {
    "p": p,
    "sign_sum": jnp.where(due, zero, sign_sum),
    "count": jnp.where(due, zero, count),
    "updates": jnp.where(due, zero, updates),
    "rt": jnp.where(due, rt, state["rt"]),
  }
  return new, {"ada_p": new["p"], "ada_rt": new["rt"]}


def _check(name: str, value, ok: bool, want: str) -> None:
  if not ok:
    raise ValueError(f"ada {name} must be {want}, got {value!r}")


def _is_number(v) -> bool:
  return isinstance(v, int | float) and not isinstance(v, bool)


def ada(
  *,
  pipeline: str = "bgc",
  target: float = 0.6,
  interval: int = 4,
  kimg: float = 500.0,
  p: float = 0.0,
  adaptive: bool = True,
) -> Augment:
  """ADA as an :class:`~jgan.augment.base.Augment` (see the module docstring and ``ada_pipeline``'s).

  Args:
    pipeline: which transforms, the reference's augpipe names: ``blit``, ``geom``, ``color``, ``bg``, ``bgc``.
    target: r_t target in ``(-1, 1)``, 0.6 in the paper.
    interval: D updates between adjustments of p (the reference: 4 minibatches).
    kimg: thousands of real images for p to move by 1 (500 in the paper).
    p: the initial strength in ``[0, 1]``; with ``adaptive=False`` the fixed one (the reference's
      ``--aug=fixed --p``).
    adaptive: tune p with the r_t heuristic.

  ``apply(x, key, state)`` augments with ``state["p"]``; ``update_state(state, d_real)`` is
  :func:`ada_update`. Bad values raise ValueError here, before anything is traced.
  """
  if pipeline not in PIPELINES:
    raise ValueError(f"unknown ada pipeline {pipeline!r}; valid choices: {', '.join(PIPELINES)}")
  _check("target", target, _is_number(target) and -1 < target < 1, "a number in (-1, 1)")
  _check(
    "interval",
    interval,
    isinstance(interval, int) and not isinstance(interval, bool) and interval > 0,
    "a positive integer",
  )
  _check("kimg", kimg, _is_number(kimg) and kimg > 0, "a positive number")
  _check("p", p, _is_number(p) and 0 <= p <= 1, "a number in [0, 1]")
  _check("adaptive", adaptive, isinstance(adaptive, bool), "True or False")
  spec = PIPELINES[pipeline]

  def apply(x: Array, key: Array, state: dict[str, Array]) -> Array:
    return ada_pipeline(x, key, state["p"], spec)

  def update_state(state: dict[str, Array], d_real: Array) -> tuple[dict[str, Array], dict[str, Array]]:
    return ada_update(state, d_real, target=target, interval=interval, kimg=kimg, adaptive=adaptive)

  return Augment(init_state=lambda: ada_init_state(p), apply=apply, update_state=update_state)
