"""The Objective interface shared by every objective (see ``jgan.objectives`` for the contract)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


class Objective(NamedTuple):
  """A GAN objective as pure functions (see the module docstring for shapes and meaning)."""

  loss: Callable[[Any, Any, Any], tuple[Array, Array]]
  init_state: Callable[[], Any] = lambda: ()
  update_state: Callable[[Any, Any, Any], tuple[Any, dict]] = lambda s, r, f: (s, {})
  d_output: str = "logit"
  g_uses_real: bool = False
  g_own_batch: bool = False
  d_penalty: Callable[..., Array] | None = None


def as_float(x) -> Array:
  """``x`` as a JAX array of at least float32 precision (bf16/f16 outputs of D are upcast for losses)."""
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))
