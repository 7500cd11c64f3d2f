"""The pieces of a seed-parallel ensemble (jgan.ensemble): its members, their hyperparameters, the
stacked state and the one jitted step that advances every member.

A member is a resolved single-run config (:func:`make_members`); members may differ only in ``seed``
and :data:`VMAPPABLE` keys. :func:`make_ensemble_step` maps :func:`jgan.step.train_step` over the
member axis (``lax.map`` or ``vmap``, :data:`ENSEMBLE_MODES`) inside a ``shard_map`` that splits the
members over the mesh's devices; :func:`use_cpu_cores` gives a CPU host one device per core.
"""

from __future__ import annotations

import functools
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jgan import components as components_lib
from jgan import config as config_lib
from jgan import optim, sharding
from jgan import penalties as penalties_lib
from jgan import state as state_lib
from jgan import step as step_lib

# Config keys that may differ between the members of one ensemble besides ``seed``: scalars read only
# arithmetically inside the step, so a traced per-member value computes what the Python constant does.
# (Adam's betas are not here: optax forms ``1 - b`` from a Python float in float64, from a traced one
# in float32, which moves the numbers.)
VMAPPABLE = ("optim.g.lr", "optim.d.lr", "optim.ema_decay", "penalty.gamma", "penalty.weight")


class Member(NamedTuple):
  """One member: its directory name, its overrides of the base config and its resolved config."""

  name: str
  overrides: dict[str, Any]
  config: ml_collections.ConfigDict


def member_name(overrides: dict[str, Any]) -> str:
  """A member directory name from its overrides: ``seed=3`` or ``optim.d.lr=0.0001,seed=3``."""
  keys = sorted(k for k in overrides if k != "seed") + (["seed"] if "seed" in overrides else [])
  return ",".join(f"{k}={overrides[k]}" for k in keys) or "member"


def make_members(config, members: list[dict[str, Any]] | None = None) -> list[Member]:
  """The resolved members of an ensemble: ``members`` (override dicts) or ``train.num_seeds`` seeds.

  Raises ValueError (before anything compiles) for an invalid member config, for members that differ in
  a key outside ``seed`` and :data:`VMAPPABLE`, or for two members with the same overrides.
  """
  base = config_lib.resolve(config)
  if members is None:
    num_seeds = int(base.train.get("num_seeds", 1))
    members = [{"seed": base.seed + i} for i in range(num_seeds)]
  if not members:
    raise ValueError("an ensemble needs at least one member")
  out, names = [], set()
  for ov in members:
    c = ml_collections.ConfigDict(config.to_dict())  # a copy, unlocked like the caller's
    # A member is the run of one seed on one device: resumed alone (jgan train on its directory) it
    # must compute what it computed inside the ensemble.
    c.update_from_flattened_dict({**ov, "train.num_seeds": 1, "parallel.num_devices": 1})
    name = member_name(ov)
    if name in names:
      raise ValueError(f"two ensemble members have the same overrides {ov}")
    names.add(name)
    out.append(Member(name, dict(ov), config_lib.resolve(c)))
  first = config_lib.flatten(out[0].config)
  for m in out[1:]:
    flat = config_lib.flatten(m.config)
    bad = sorted(
      k for k in set(first) | set(flat) if k != "seed" and k not in VMAPPABLE and first.get(k) != flat.get(k)
    )
    if bad:
      raise ValueError(
        f"ensemble members may differ only in seed and {', '.join(VMAPPABLE)}; {bad[0]} differs "
        f"({first.get(bad[0])!r} vs {flat.get(bad[0])!r} in member {m.name}): train those as separate runs "
        f"(jgan sweep groups the vmappable axes into ensembles and runs the rest as processes)"
      )
  return out


def hyperparameters(members: list[Member]) -> dict[str, np.ndarray]:
  """The :data:`VMAPPABLE` values that differ between members: ``{key: float32 [K]}``."""
  out = {}
  flats = [config_lib.flatten(m.config) for m in members]
  for key in VMAPPABLE:
    vals = [flat.get(key) for flat in flats]
    if vals[0] is not None and len(set(vals)) > 1:
      out[key] = np.asarray(vals, np.float32)
  return out


def components_with(
  config, components: components_lib.Components, hp: dict[str, jax.Array]
) -> components_lib.Components:
  """``components`` with the hyperparameters ``hp`` (``{key: float32 scalar}``, traced under vmap) in place
  of the config's values: the optimisers, the EMA decay and the penalty are rebuilt from them."""
  if not hp:
    return components
  c = ml_collections.ConfigDict(config.to_dict())
  with c.ignore_type():
    for key, v in hp.items():
      sect, _, leaf = key.rpartition(".")
      functools.reduce(lambda d, s: d[s], sect.split("."), c)[leaf] = v
  new = {}
  if any(k.startswith("optim.g.") or k.startswith("optim.d.") for k in hp):
    new["g_tx"], new["d_tx"] = optim.make_optimizers(c)
  if "optim.ema_decay" in hp:
    new["ema_decay"] = hp["optim.ema_decay"]
  if any(k.startswith("penalty.") for k in hp):
    params = {k: v for k, v in c.penalty.items() if k not in penalties_lib.STEP_FIELDS}
    new["penalty"] = penalties_lib.make_penalty(c.penalty.name, **params)
  return components._replace(**new)


def member_state(state: state_lib.GANState, i: int) -> state_lib.GANState:
  """Member ``i`` of a stacked ensemble state, as the ``GANState`` of an ordinary run."""
  return _take(state, jnp.asarray(i, jnp.int32))


@jax.jit
def _take(state, i):
  # One compiled program for every member (a traced index): eager x[i] compiles one per leaf shape.
  return jax.tree.map(lambda x: x[i], state)


def stack_states(states: list[state_lib.GANState]) -> state_lib.GANState:
  """Stacks member states (same structure) along a new leading axis ``[K, ...]``."""
  return jax.tree.map(lambda *xs: jnp.stack(xs), *states)


def _all_finite(tree) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


# How the members of one device are computed. ``vmap``: batched into one program (the fast choice on
# accelerators, where one small run leaves the chip idle); results agree with the single runs to ~1e-9
# per step, which GAN dynamics can amplify (ring8, 200 steps: up to 0.24). ``map``: one member after the
# other inside the program (``lax.map``), the single run's computation exactly, bit-identical to it;
# on XLA:CPU a small step is compute-bound, so batching gains nothing there (benchmarks/bench_ensemble.py).
# ``auto``: map on CPU, vmap elsewhere. Devices always split the members (shard_map over 'data').
ENSEMBLE_MODES = config_lib.ENSEMBLE_MODES


def resolve_mode(mode: str) -> str:
  """``vmap`` or ``map`` for ``parallel.ensemble = mode`` on this backend (see ENSEMBLE_MODES)."""
  if mode not in ENSEMBLE_MODES:
    raise ValueError(f"unknown parallel.ensemble={mode!r}; valid choices: {', '.join(ENSEMBLE_MODES)}")
  if mode == "auto":
    return "map" if jax.default_backend() == "cpu" else "vmap"
  return mode


def make_ensemble_step(
  config, components: components_lib.Components, steps_per_call: int = 1, *, mode: str = "auto", mesh=None
):
  """The jitted ensemble step ``(state [K], batch [K], hp {key: [K]}, alive bool [K]) -> (state, metrics,
  ok)``: every member's :func:`jgan.step.train_step` (``steps_per_call`` fused).

  ``mode``: ``vmap`` / ``map`` / ``auto`` (:data:`ENSEMBLE_MODES`); ``mesh``: a ``('data',)`` mesh whose
  devices split the member axis (None: one device). ``ok[i]`` is False when member i was frozen already
  or its metrics or new state hold a NaN/Inf; such a member keeps its input state. The state's buffers
  are donated.
  """

  def member(args):
    state, batch, hp, alive = args
    step_fn = functools.partial(step_lib.train_step, components=components_with(config, components, hp))
    if steps_per_call > 1:
      new, metrics = step_lib.multi_step(state, batch, step_fn=step_fn)
    else:
      new, metrics = step_fn(state, batch)
    ok = alive & _all_finite(metrics) & _all_finite(new)

    def keep(a, b):  # typed PRNG keys do not change within a step (and jnp.where does not take them)
      return a if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key) else jnp.where(ok, a, b)

    return jax.tree.map(keep, new, state), metrics, ok

  over = jax.vmap(member) if resolve_mode(mode) == "vmap" else functools.partial(jax.lax.map, member)
  fn = lambda state, batch, hp, alive: over((state, batch, hp, alive))
  if mesh is not None and mesh.devices.size > 1:
    fn = jax.shard_map(fn, mesh=mesh, in_specs=P("data"), out_specs=P("data"))
  return jax.jit(fn, donate_argnums=(0,))


def use_cpu_cores(n: int | None = None) -> bool:
  """Makes XLA:CPU expose ``n`` devices (default: the CPU count), so an ensemble's members are split over
  the cores (``--xla_force_host_platform_device_count``). Call it before any JAX computation; returns
  False (changing nothing) when JAX's backends already started or the flag is set already. GPU/TPU
  hosts are unaffected (the flag concerns the CPU platform only)."""
  from jgan.cpu_safety import backends_initialised

  flags = os.environ.get("XLA_FLAGS", "")
  if backends_initialised() or "xla_force_host_platform_device_count" in flags:
    return False
  os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n or os.cpu_count() or 1}".strip()
  return True


def member_sharding(num_members: int, num_devices: int) -> NamedSharding:
  """The member axis split over ``parallel.num_devices`` devices; 0 (all): the most devices that divide
  the members evenly."""
  if num_devices == 0:
    n_all = len(jax.devices())
    num_devices = max(d for d in range(1, n_all + 1) if num_members % d == 0)
  mesh = sharding.make_mesh(num_devices)
  n = mesh.devices.size
  if num_members % n:
    valid = ", ".join(str(n * m) for m in range(1, 5))
    raise ValueError(
      f"an ensemble of {num_members} members does not divide over parallel.num_devices={n} devices; use a "
      f"multiple of {n} members (e.g. {valid}) or set parallel.num_devices=0 (the most that divide)"
    )
  return NamedSharding(mesh, P("data"))
