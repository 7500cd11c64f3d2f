"""The only device-aware module: the ``('data',)`` mesh, shardings, multi-host initialisation.

Data parallelism is ``jax.jit`` over a 1-D mesh named ``'data'``: the batch is sharded along its example
axis, the state is replicated. XLA inserts the gradient all-reduce, and BatchNorm's batch statistics
are computed over the *global* batch (synchronised BatchNorm) because the model sees one logical array.
This is what ``pmap`` did, written the way today's JAX recommends (pmap is ``jit(shard_map)`` since 0.8).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P


class Shardings(NamedTuple):
  """Shardings of one run: replicated state, ``[n_critic, B, ...]`` batches, ``[B, ...]`` arrays."""

  mesh: Mesh
  replicated: NamedSharding
  batch: NamedSharding
  data: NamedSharding


def make_mesh(num_devices: int = 0) -> Mesh:
  """A 1-D ``('data',)`` mesh over the first ``num_devices`` devices (0 = all, across all hosts)."""
  devices = jax.devices()
  if num_devices < 0 or num_devices > len(devices):
    raise ValueError(f"parallel.num_devices={num_devices} but {len(devices)} device(s) are available "
                     f"(valid: 0 = all, or 1..{len(devices)})")
  devices = devices[: num_devices or len(devices)]
  return Mesh(np.asarray(devices), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def make_shardings(mesh: Mesh, fused_steps: int = 1) -> Shardings:
  """Shardings for ``mesh``; with ``fused_steps > 1`` batches carry a leading steps axis too."""
  lead = (None,) * (2 if fused_steps > 1 else 1)  # [k?, n_critic, B, ...]
  return Shardings(
      mesh=mesh,
      replicated=NamedSharding(mesh, P()),
      batch=NamedSharding(mesh, P(*lead, "data")),
      data=NamedSharding(mesh, P("data")),
  )


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
  """Raises ValueError if the global batch does not divide evenly over the mesh's devices."""
  n = mesh.devices.size
  if batch_size % n:
    valid = [m * n for m in range(max(1, batch_size // n - 1), batch_size // n + 3)]
    raise ValueError(f"train.batch_size={batch_size} does not divide by the {n} devices of the mesh; "
                     f"use a multiple of {n} (e.g. {', '.join(map(str, valid))}) or set parallel.num_devices")


def put_batch(batch: dict[str, np.ndarray], sharding: NamedSharding) -> dict[str, jax.Array]:
  """Places a host batch (global arrays on a single host) onto the mesh with ``sharding``."""
  return jax.device_put(batch, sharding)
