"""The train state: one pytree holding everything a step reads and writes.

``GANState`` leaves: both models' parameters and batch statistics (BatchNorm running stats), both optax
states, the EMA of G's parameters, the objective's state (e.g. BEGAN's k_t), the step counter and the
root PRNG key. The models' static structure (NNX ``GraphDef``) rides along as non-pytree fields, so a
jitted step needs nothing but ``(state, batch)`` and a checkpoint of the leaves is a complete run state.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx, struct

from jgan import objectives as objectives_lib
from jgan import optim
from jgan.models import make_models


@struct.dataclass
class GANState:
  """One GAN's complete training state (a pytree; see the module docstring)."""

  step: jax.Array  # int32 scalar: number of completed G updates
  rng: jax.Array  # typed PRNG key; per-step keys are fold_in(rng, step)
  g_params: Any
  g_stats: Any
  d_params: Any
  d_stats: Any
  g_opt: Any
  d_opt: Any
  g_ema: Any
  obj_state: Any
  g_graphdef: Any = struct.field(pytree_node=False)
  d_graphdef: Any = struct.field(pytree_node=False)


def create_state(config, data_shape: tuple[int, ...], rng: jax.Array) -> GANState:
  """Builds the initial state for ``config`` and one sample's ``data_shape`` from the typed key ``rng``.

  Model initialisation draws from ``fold_in(rng, 0)``-derived keys; the root ``rng`` is stored as is,
  so every per-step key is a function of (seed, step) only.
  """
  k_g, k_d = jax.random.split(jax.random.fold_in(rng, 0x5EED))
  objective = objectives_lib.make_objective(**config.objective)
  g, d = make_models(config.model, data_shape, nnx.Rngs(params=k_g, default=k_d), objective.d_output)
  g_graphdef, g_params, g_stats = nnx.split(g, nnx.Param, ...)
  d_graphdef, d_params, d_stats = nnx.split(d, nnx.Param, ...)
  g_tx, d_tx = optim.make_optimizers(config)
  return GANState(
      step=jnp.zeros((), jnp.int32),
      rng=rng,
      g_params=g_params,
      g_stats=g_stats,
      d_params=d_params,
      d_stats=d_stats,
      g_opt=g_tx.init(g_params),
      d_opt=d_tx.init(d_params),
      g_ema=jax.tree.map(jnp.copy, g_params),
      obj_state=objective.init_state(),
      g_graphdef=g_graphdef,
      d_graphdef=d_graphdef,
  )


def generator_fn(state: GANState, *, ema: bool = True, train: bool = False):
  """A pure function ``z [B, latent] -> samples [B, *data_shape]`` using the EMA (default) or live G.

  ``train=False`` uses BatchNorm running averages, so a sample does not depend on the rest of its batch.
  """
  params = state.g_ema if ema else state.g_params

  def sample(z):
    g = nnx.merge(state.g_graphdef, params, state.g_stats, copy=True)
    g.eval() if not train else g.train()
    return g(z)

  return sample
