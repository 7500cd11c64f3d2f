"""The only device-aware module: the ``('data',)`` mesh, shardings, placing host data on the mesh.

Data parallelism is ``jax.jit`` over a 1-D mesh named ``'data'``: the batch is sharded along its example
axis, the state is replicated. XLA inserts the gradient all-reduce, and BatchNorm's batch statistics
are computed over the *global* batch (synchronised BatchNorm) because the model sees one logical array.
This is what ``pmap`` did, written the way today's JAX recommends (pmap is ``jit(shard_map)`` since 0.8).

Multi-process runs (``jax.distributed``, set up by :mod:`jgan.multihost`) use the same mesh over every
process's devices: each process loads only its part of the batch and :func:`put_batch` assembles the
global array from the parts without copying data between processes.
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
    raise ValueError(
      f"parallel.num_devices={num_devices} but {len(devices)} device(s) are available "
      f"(valid: 0 = all, or 1..{len(devices)})"
    )
  if jax.process_count() > 1 and num_devices not in (0, len(devices)):
    # Each process feeds its own devices' rows of the batch, so every process must own mesh devices.
    raise ValueError(
      f"parallel.num_devices={num_devices} selects part of the {len(devices)} devices of "
      f"{jax.process_count()} processes; multi-process runs use all devices (valid: 0 or "
      f"{len(devices)})"
    )
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
    raise ValueError(
      f"train.batch_size={batch_size} does not divide by the {n} devices of the mesh; "
      f"use a multiple of {n} (e.g. {', '.join(map(str, valid))}) or set parallel.num_devices"
    )


def global_shape(local_shape: tuple[int, ...], sharding: NamedSharding) -> tuple[int, ...]:
  """The global shape of an array whose ``local_shape`` part is this process's share under ``sharding``.

  Axes partitioned over ``'data'`` grow by (mesh devices) / (this process's mesh devices), i.e. by the
  process count when every process owns the same number of devices; the other axes are unchanged.
  """
  mesh = sharding.mesh
  local = sum(d.process_index == jax.process_index() for d in mesh.devices.flat)
  if not local:
    raise ValueError(f"process {jax.process_index()} owns none of the mesh's {mesh.devices.size} devices")
  scale = mesh.devices.size // local
  spec = tuple(sharding.spec) + (None,) * (len(local_shape) - len(sharding.spec))
  return tuple(n * scale if _uses(axis, "data") else n for n, axis in zip(local_shape, spec))


def _uses(axis, name: str) -> bool:
  return axis == name or (isinstance(axis, tuple) and name in axis)


def put_batch(batch: dict[str, np.ndarray], sharding: NamedSharding) -> dict[str, jax.Array]:
  """Places this process's batch on the mesh as one global array per key.

  Args:
    batch: host arrays, e.g. ``{"x": float32 [n_critic, b, H, W, C]}`` where ``b`` is this process's
      share of the global batch ``B`` (``b = B`` with one process, ``B / process_count`` with several).
    sharding: the batch sharding (``P(None, 'data')`` for ``[n_critic, B, ...]``).

  Returns:
    ``{key: jax.Array [n_critic, B, ...]}``; process ``p``'s rows are ``p * b .. (p + 1) * b - 1``.
  """
  if jax.process_count() == 1:
    return jax.device_put(batch, sharding)
  return {
    k: jax.make_array_from_process_local_data(sharding, v, global_shape(np.shape(v), sharding))
    for k, v in batch.items()
  }


def put_replicated(tree, sharding: NamedSharding):
  """Places a pytree that every process holds identically (same values) on the mesh, replicated.

  With one process this is ``jax.device_put``; with several, each process supplies its own copy for its
  own devices (nothing is sent between processes), so the values must agree, as they do for state built
  from the same seed.
  """
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)

  def put(x):
    if jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key):  # typed keys: via their bits
      return jax.random.wrap_key_data(put(jax.random.key_data(x)), impl=jax.random.key_impl(x))
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])

  return jax.tree.map(put, tree)
