"""The Augment interface shared by every augmentation of D's inputs (see ``jgan.augment`` for the contract)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

Array = jax.Array


class Augment(NamedTuple):
  """An augmentation of D's inputs as pure functions.

  * ``init_state() -> state``: a pytree of float32 / int32 arrays (``{}`` when stateless), carried in the
    train state and the checkpoint.
  * ``apply(x, key, state) -> x_aug``: ``x`` float ``[B, H, W, C]`` images in about ``[-1, 1]``; returns an
    array of the same shape and dtype, differentiable with respect to ``x`` (G is trained through it).
  * ``update_state(state, d_real) -> (state, metrics)``: called once per D update with that update's raw D
    scores on the real batch, float ``[B]``; ``metrics`` are float32 scalars to log.
  """

  init_state: Callable[[], Any]
  apply: Callable[[Array, Array, Any], Array]
  update_state: Callable[[Any, Array], tuple[Any, dict[str, Array]]]


def check_images(x: Array, who: str) -> None:
  """Raises ValueError unless ``x`` is a floating ``[B, H, W, C]`` array (checked at trace time)."""
  if x.ndim != 4 or not jax.numpy.issubdtype(x.dtype, jax.numpy.floating):
    raise ValueError(f"{who} needs float images [B, H, W, C], got shape {tuple(x.shape)} dtype {x.dtype}")


def stateless(apply: Callable[[Array, Array], Array]) -> Augment:
  """An :class:`Augment` without state from ``apply(x, key) -> x_aug`` (``update_state`` logs nothing)."""
  return Augment(
    init_state=lambda: {},
    apply=lambda x, key, state: apply(x, key),
    update_state=lambda state, d_real: (state, {}),
  )
