"""The train state: one pytree holding everything a step reads and writes, and the generator's sampler.

``GANState`` leaves: the two :class:`Player` s (G's and D's parameters, statistics such as BatchNorm
running averages and spectral-norm vectors, and optax states), the EMA of G's parameters, the
objective's state (e.g. BEGAN's k_t), the update rule's state (e.g. optimistic GD's last gradients),
the step counter and the step key. The models' static structure (NNX ``GraphDef``) rides along as
non-pytree fields, so a jitted step needs nothing but ``(state, batch)`` and a checkpoint of the
leaves is a complete run state.

:func:`generate` maps ``z`` to samples (pure), :func:`sample` draws ``z`` from a key and generates
(jitted): the one sampler every part of jgan uses.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx, struct


@struct.dataclass
class Player:
  """One network's trainable state: ``params`` (nnx.Param leaves), ``stats`` (every other variable:
  BatchNorm statistics, spectral-norm vectors; may be empty) and ``opt`` (its optax state)."""

  params: Any
  stats: Any
  opt: Any


@struct.dataclass
class GANState:
  """One GAN's complete training state (a pytree; see the module docstring)."""

  step: jax.Array  # int32 scalar: number of completed G updates
  rng: jax.Array  # typed PRNG key; per-step keys are fold_in(rng, step)
  g: Player
  d: Player
  g_ema: Any  # EMA of g.params
  obj_state: Any
  rule_state: Any
  aug_state: Any  # the D-augmentation's state (ADA's p and counters), () without augmentation
  g_graphdef: Any = struct.field(pytree_node=False)
  d_graphdef: Any = struct.field(pytree_node=False)
  latent_dim: int = struct.field(pytree_node=False)  # size of G's input z
  num_classes: int = struct.field(pytree_node=False, default=0)  # > 0: G(z, y) is class-conditional


def create_state(components, rng: jax.Array) -> GANState:
  """The initial state of a run built by :func:`jgan.components.build`, with step key ``rng``.

  Args:
    components: the run's :class:`jgan.components.Components` (models with their initial variables,
      objective, optimisers, update rule). Its initial variables become the state's: the train step
      donates the state's buffers, so build a new ``Components`` for a second fresh state.
    rng: a typed PRNG key; the step draws ``fold_in(rng, step)``, so every random number of a step is
      a function of (rng, step) only.
  """
  c = components
  g_params, d_params = c.g.params, c.d.params
  return GANState(
    step=jnp.zeros((), jnp.int32),
    rng=rng,
    g=Player(g_params, c.g.stats, c.g_tx.init(g_params)),
    d=Player(d_params, c.d.stats, c.d_tx.init(d_params)),
    g_ema=jax.tree.map(jnp.copy, g_params),
    obj_state=c.objective.init_state(),
    rule_state=c.update_rule.init(g_params, d_params),
    aug_state=() if c.augment is None else c.augment.init_state(),
    g_graphdef=c.g.graphdef,
    d_graphdef=c.d.graphdef,
    latent_dim=c.latent_dim,
    num_classes=c.num_classes,
  )


def default_labels(n: int, num_classes: int) -> jax.Array:
  """The classes a conditional G is asked for when none are given: int32 ``[n]``, ``i % num_classes``
  (class-balanced; a sample grid with ``num_classes`` columns shows one class per column)."""
  return jnp.arange(n, dtype=jnp.int32) % num_classes


def generate(
  state: GANState, z: jax.Array, labels: jax.Array | None = None, *, ema: bool = True, train: bool = False
) -> jax.Array:
  """G's samples of ``z`` float32 ``[B, latent_dim]``: ``[B, *data_shape]`` (images in (-1, 1)).

  ``labels``: int32 ``[B]`` in ``[0, num_classes)``, the classes a conditional G draws (None:
  :func:`default_labels`); an unconditional G refuses them. ``ema=True`` uses the EMA of G's parameters
  (what sample grids and evaluations show), False the live ones. ``train=False`` uses BatchNorm running
  averages, so a sample does not depend on its batch. Pure: call it inside ``jax.jit`` (or use
  :func:`sample`).
  """
  g = nnx.merge(state.g_graphdef, state.g_ema if ema else state.g.params, state.g.stats, copy=True)
  g.eval() if not train else g.train()
  if not state.num_classes:
    if labels is not None:
      raise ValueError("labels were given but the generator is unconditional (model.conditional=False)")
    return g(z)
  if labels is None:
    labels = default_labels(z.shape[0], state.num_classes)
  return g(z, jnp.asarray(labels, jnp.int32))


def sample(state: GANState, rng: jax.Array, n: int, labels=None, *, ema: bool = True, z_sharding=None) -> jax.Array:
  """``n`` samples of ``state``'s generator, float32 ``[n, *data_shape]``: ``z ~ N(0, I)`` drawn from ``rng``.

  ``z`` is ``jax.random.normal(rng, (n, latent_dim), float32)``, so ``sample(state, key, n)`` equals
  ``generate(state, normal(key, ...))``. G runs in inference mode; ``ema`` as in :func:`generate`.
  ``labels`` (conditional G only): int ``[n]`` classes, default :func:`default_labels`.
  ``z_sharding`` (e.g. ``NamedSharding(mesh, P("data"))``) splits the batch over a mesh's devices.
  Compiled once per (state structure, ``n``, ``ema``).
  """
  if labels is not None:
    labels = jnp.asarray(labels, jnp.int32)
    if labels.shape != (int(n),):
      raise ValueError(f"labels must be int [n={n}], got shape {labels.shape}")
    if not state.num_classes:
      raise ValueError("labels were given but the generator is unconditional (model.conditional=False)")
  return _sample_jit(state, rng, labels, n=int(n), ema=ema, z_sharding=z_sharding)


@functools.partial(jax.jit, static_argnames=("n", "ema", "z_sharding"))
def _sample_jit(state, rng, labels, *, n: int, ema: bool, z_sharding=None):
  z = jax.random.normal(rng, (n, state.latent_dim), jnp.float32)
  if z_sharding is not None:
    z = jax.lax.with_sharding_constraint(z, z_sharding)
  return generate(state, z, labels, ema=ema).astype(jnp.float32)
