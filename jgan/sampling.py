"""Research entry point: a trained generator from a checkpoint as a plain function.

    sample = jgan.sampling.load_generator("runs/mnist")      # workdir or checkpoint directory
    x = sample(jax.random.key(0), 64)                        # float32 [64, 28, 28, 1] in [-1, 1]

Only the checkpoint is read: the model is rebuilt from the config stored with it and the data's sample
shape (:func:`jgan.data.sample_shape` needs no data), so no dataset has to be present.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections

from jgan import checkpoint as ckpt_lib
from jgan import data as data_lib
from jgan import state as state_lib


def load_state(path: str, *, step: int | None = None) -> tuple[state_lib.GANState, ml_collections.ConfigDict]:
  """The GANState and config of a checkpoint, on the first local device.

  Args:
    path: a run directory (with ``checkpoints/``) or a checkpoint directory of numbered steps.
    step: the step to load; None: the latest that restores (a damaged one is skipped with a warning).

  Raises:
    CheckpointError: no checkpoint at ``path`` or none restores; ``step`` not saved.
  """
  ckpt = ckpt_lib.Checkpointer(ckpt_lib.locate(path), read_only=True)
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])

  def abstract(stored_config: dict) -> state_lib.GANState:
    config = ml_collections.ConfigDict(stored_config)
    return ckpt_lib.abstract_state(config, data_lib.sample_shape(config.data), device)

  try:
    restored = ckpt.restore(abstract, step=step)
  finally:
    ckpt.close()
  if restored is None:
    raise ckpt_lib.CheckpointError(f"no checkpoint under {path!r}")
  return restored.state, ml_collections.ConfigDict(restored.config)


def load_generator(path: str, *, ema: bool = True, step: int | None = None) -> Callable[[jax.Array, int], jax.Array]:
  """A sampler ``sample(rng, n)`` for the generator of a checkpoint (see :func:`load_state` for the args).

  ``ema=True`` uses the EMA of G's parameters (what the run's sample grids show), False the live ones.
  G runs in inference mode (BatchNorm running averages), so a sample does not depend on its batch.
  ``sample(rng, n)`` draws ``z ~ N(0, I)`` float32 ``[n, latent_dim]`` from ``rng`` (a typed or raw key)
  and returns float32 ``[n, H, W, C]`` images in ``[-1, 1]`` (tanh output), or ``[n, 2]`` points for
  2-D mixtures. Compiled once per distinct ``n``.
  """
  state, config = load_state(path, step=step)
  latent_dim = config.model.latent_dim

  @functools.partial(jax.jit, static_argnums=2)
  def _sample(state, rng, n):
    z = jax.random.normal(rng, (n, latent_dim), jnp.float32)
    return state_lib.generator_fn(state, ema=ema)(z).astype(jnp.float32)

  def sample(rng: jax.Array, n: int) -> jax.Array:
    return _sample(state, rng, int(n))

  return sample
