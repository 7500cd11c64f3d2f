"""Seed-parallel ensembles: K independent runs of one config, vmapped into one jitted program.

``train_ensemble(config, workdir)`` trains the ``K = train.num_seeds`` runs of ``config`` with seeds
``config.seed + i`` (each its own initialisation, data order, z and step keys), or the runs given as
``members`` (per-member overrides: the seed and the hyperparameters of :data:`VMAPPABLE`, values that
change no shape). Every leaf of the state gets a leading member axis ``[K, ...]``; one ``jax.vmap`` of
:func:`jgan.step.train_step` advances all members per call. With several devices the member axis is
split over the ``('data',)`` mesh (each member's batch stays on its device, as in a one-device run);
on a CPU host, ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` makes N devices of N cores.

Layout: ``<workdir>/<member name>/`` is an ordinary run directory of that member's single-run config
(``train.num_seeds = 1``, its own seed): ``config.json``, ``metrics.jsonl``, ``tb/``, ``samples/``,
``checkpoints/``. ``jgan eval``, :func:`jgan.checkpoint.load_generator` and ``jgan train`` (which
resumes it as a single run) work on a member directory unchanged. ``<workdir>/ensemble.json`` lists the
members; ``<workdir>/jgan.lock`` holds the ensemble.

Resume: rerunning on the same workdir restores every member's latest checkpoint (the common step of
the running members), so the ensemble continues bit-identically. NaN/Inf: a member whose metrics or
state become non-finite in a call is frozen at its state before that call (the other members go on),
reported on stderr and in ``<member>/frozen.json``; only when every member is frozen does training
stop with FloatingPointError.

Numerics: member i computes what its single run computes, with the matrix products batched over the
member axis; on XLA:CPU the results agree with the single run to ~1e-6 (tests/test_ensemble.py),
not bit for bit. Two ensemble runs of one config are bit-identical.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import os
import shutil
import sys
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jgan import checkpoint as ckpt_lib
from jgan import components, optim, plots, preemption, rng, run_info, sharding, writers
from jgan import config as config_lib
from jgan import data as data_lib
from jgan import penalties as penalties_lib
from jgan import state as state_lib
from jgan import step as step_lib
from jgan import train as train_lib
from jgan import workdir as workdir_lib

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


class EnsembleResult(NamedTuple):
  """What :func:`train_ensemble` returns: the stacked final ``state`` (every leaf ``[K, ...]``), which
  members are still ``alive`` (bool ``[K]``; False: frozen at a NaN/Inf), their ``members`` and
  ``workdirs``. :func:`member_state` takes member i's state out as an ordinary ``GANState``."""

  state: state_lib.GANState
  alive: np.ndarray
  members: list[Member]
  workdirs: list[str]


def member_name(overrides: dict[str, Any]) -> str:
  """A member directory name from its overrides: ``seed=3`` or ``optim.d.lr=0.0001,seed=3``."""
  keys = sorted(k for k in overrides if k != "seed") + (["seed"] if "seed" in overrides else [])
  return ",".join(f"{k}={overrides[k]}" for k in keys) or "member"


def _flat(c: ml_collections.ConfigDict) -> dict[str, Any]:
  out = {}
  for k, v in c.items():
    if isinstance(v, ml_collections.ConfigDict):
      out.update({f"{k}.{kk}": vv for kk, vv in _flat(v).items()})
    else:
      out[k] = v
  return out


def make_members(config, members: list[dict[str, Any]] | None = None) -> list[Member]:
  """The resolved members of an ensemble: ``members`` (override dicts) or ``train.num_seeds`` seeds.

  Raises ValueError (before anything compiles) for an invalid member config, for members that differ in
  a key outside ``seed`` and :data:`VMAPPABLE`, or for two members with the same overrides.
  """
  base = config_lib.resolve(config)
  if members is None:
    k = int(base.train.get("num_seeds", 1))
    members = [{"seed": base.seed + i} for i in range(k)]
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
  first = _flat(out[0].config)
  for m in out[1:]:
    flat = _flat(m.config)
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
  for key in VMAPPABLE:
    vals = [_flat(m.config).get(key) for m in members]
    if vals[0] is not None and len(set(vals)) > 1:
      out[key] = np.asarray(vals, np.float32)
  return out


def parts_with(config, parts: components.Components, hp: dict[str, jax.Array]) -> components.Components:
  """``parts`` with the hyperparameters ``hp`` (``{key: float32 scalar}``, traced under vmap) in place of
  the config's values: the optimisers, the EMA decay and the penalty are rebuilt from them."""
  if not hp:
    return parts
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
    params = {k: v for k, v in c.penalty.items() if k not in ("name", "every")}
    new["penalty"] = penalties_lib.make_penalty(c.penalty.name, **params)
  return parts._replace(**new)


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


def make_ensemble_step(config, parts: components.Components, steps_per_call: int = 1, *, mode: str = "auto", mesh=None):
  """The jitted ensemble step ``(state [K], batch [K], hp {key: [K]}, alive bool [K]) -> (state, metrics,
  ok)``: every member's :func:`jgan.step.train_step` (``steps_per_call`` fused).

  ``mode``: ``vmap`` / ``map`` / ``auto`` (:data:`ENSEMBLE_MODES`); ``mesh``: a ``('data',)`` mesh whose
  devices split the member axis (None: one device). ``ok[i]`` is False when member i was frozen already
  or its metrics or new state hold a NaN/Inf; such a member keeps its input state. The state's buffers
  are donated.
  """

  def member(args):
    state, batch, hp, alive = args
    step_fn = functools.partial(step_lib.train_step, parts=parts_with(config, parts, hp))
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
  from jgan.cpu_safety import _backends_initialised

  flags = os.environ.get("XLA_FLAGS", "")
  if _backends_initialised() or "xla_force_host_platform_device_count" in flags:
    return False
  os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n or os.cpu_count() or 1}".strip()
  return True


def _member_sharding(num_members: int, num_devices: int) -> NamedSharding:
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


def _check_workdir_members(workdir: str, members: list[Member], dirs: list[str]) -> None:
  """Writes ``<workdir>/ensemble.json`` (members, their directories); refuses a workdir that holds
  another ensemble."""
  path = os.path.join(workdir, "ensemble.json")
  names = [m.name for m in members]
  if os.path.exists(path):
    with open(path) as f:
      stored = json.load(f)["members"]
    if [m["name"] for m in stored] != names:
      raise ValueError(
        f"{workdir} holds an ensemble of other members ({', '.join(m['name'] for m in stored)}); use a new --workdir"
      )
  rel = [os.path.relpath(d, workdir) for d in dirs]
  with open(path + ".tmp", "w") as f:
    info = [{"name": m.name, "overrides": m.overrides, "dir": r} for m, r in zip(members, rel)]
    json.dump({"members": info}, f, indent=2, default=str)
  os.replace(path + ".tmp", path)


def train_ensemble(
  config, workdir: str, members: list[dict[str, Any]] | None = None, *, member_dirs: list[str] | None = None
) -> EnsembleResult:
  """Trains the ensemble of ``config`` into ``workdir`` (see the module docstring); returns the result.

  Args:
    config: a config (``train.num_seeds = K`` members with seeds ``seed .. seed + K - 1`` unless
      ``members`` is given).
    workdir: the ensemble's directory; members go to ``<workdir>/<member name>``.
    members: per-member overrides, e.g. ``[{"seed": 0, "optim.d.lr": 1e-4}, ...]`` (keys: ``seed`` and
      :data:`VMAPPABLE`).
    member_dirs: the members' run directories (default ``<workdir>/<member name>``; ``jgan sweep``
      puts them at ``<sweep>/runs/<run name>``).

  Raises:
    ValueError: an invalid member config or members that differ in a non-vmappable key, before anything
      compiles; FloatingPointError when every member became NaN/Inf; the errors of
      :func:`jgan.train.train_and_evaluate` for the workdir and checkpoints.
  """
  ms = make_members(config, members)
  base = ms[0].config
  num_devices = config_lib.resolve(config).parallel.num_devices  # the devices the members are split over
  if jax.process_count() > 1:
    raise ValueError("ensembles run in one process (train.num_seeds > 1 with jax.distributed is not supported)")
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ValueError(f"workdir={workdir!r} exists and is not a directory")
  member_sh = _member_sharding(len(ms), num_devices)
  lock = workdir_lib.lock_run(workdir)
  guard = preemption.PreemptionGuard().__enter__()
  ckpts: list[ckpt_lib.Checkpointer] = []
  try:
    one = sharding.make_shardings(sharding.make_mesh(1), base.train.steps_per_call)
    parts = [components.build(m.config, data_lib.sample_shape(m.config.data)) for m in ms]
    dirs = list(member_dirs) if member_dirs is not None else [os.path.join(workdir, m.name) for m in ms]
    if len(dirs) != len(ms):
      raise ValueError(f"{len(dirs)} member_dirs for {len(ms)} members")
    _check_workdir_members(workdir, ms, dirs)
    for m, d in zip(ms, dirs):
      ckpts.append(
        ckpt_lib.Checkpointer(
          ckpt_lib.checkpoint_dir(d), m.config.checkpoint, config=m.config, versions=run_info.library_versions()
        )
      )
    return _train(ms, dirs, parts, ckpts, one, member_sh, lock, guard)
  finally:
    for c in ckpts:
      c.close(quiet=sys.exc_info()[0] is not None)
    guard.__exit__(None, None, None)
    lock.release()


def _restore(ms, dirs, parts, ckpts, one):
  """Each member's restored checkpoint (or None), at one common step for the members not frozen."""
  frozen = [os.path.exists(os.path.join(d, "frozen.json")) for d in dirs]
  out = []
  for m, p, c in zip(ms, parts, ckpts):
    out.append(c.restore(ckpt_lib.abstract_state(p, one.replicated), config=m.config, quarantine=True))
    c.discard_unfinished()
  running = [i for i in range(len(ms)) if not frozen[i]]
  steps = {None if out[i] is None else out[i].step for i in running}
  if len(steps) > 1:  # a kill between the members' saves: go back to the step every member has
    common = None if None in steps else min(steps)
    for i in running:
      if out[i] is not None and out[i].step != common:
        try:
          out[i] = (
            None
            if common is None
            else ckpts[i].restore(ckpt_lib.abstract_state(parts[i], one.replicated), step=common, config=ms[i].config)
          )
        except ckpt_lib.CheckpointError:
          out[i] = None
    if any(out[i] is None for i in running):  # no common checkpoint: every running member starts over
      for i in running:
        out[i] = None
  return out, frozen


def _train(ms, dirs, parts, ckpts, one, member_sh, lock, guard) -> EnsembleResult:
  base, K = ms[0].config, len(ms)
  t = base.train
  k, n_critic = t.steps_per_call, t.n_critic
  writers_: list[writers.RunWriter] = []
  try:
    restored, frozen = _restore(ms, dirs, parts, ckpts, one)
    per_call = t.batch_size * n_critic * k
    its = [data_lib.make_iterator(m.config.data, per_call, seed=m.config.seed) for m in ms]
    states = []
    for i, m in enumerate(ms):
      if restored[i] is None:
        states.append(state_lib.create_state(parts[i], rng.run_keys(m.config.seed).train))
      else:
        states.append(restored[i].state)
        its[i].set_state(restored[i].data_state)
    state = jax.device_put(stack_states(states), member_sh)
    alive = np.array([not f for f in frozen])
    running = [i for i in range(K) if alive[i]]
    if not running:
      raise FloatingPointError(f"every member of {os.path.dirname(dirs[0])} was frozen at a NaN/Inf")
    start = 0 if restored[running[0]] is None else restored[running[0]].step
    if start:
      print(f"resumed {len(running)} members at step {start}", file=sys.stderr)
    logs = []
    for i, (m, d) in enumerate(zip(ms, dirs)):
      st = 0 if restored[i] is None else restored[i].step
      train_lib.drop_metrics_after(d, st)
      run_info.write_run_info(m.config, d, None if restored[i] is None else restored[i].step)
      tb = os.path.join(d, "tb")
      writers_.append(writers.RunWriter(d, purge_step=st + 1 if os.path.isdir(tb) and os.listdir(tb) else None))
      log = train_lib.MetricsLog(writers_[-1], st)
      if restored[i] is not None:
        log.load(restored[i].log_window)
      logs.append(log)
    hp = jax.device_put({key: jnp.asarray(v) for key, v in hyperparameters(ms).items()}, member_sh)
    train_step = make_ensemble_step(base, parts[0], k, mode=base.parallel.ensemble, mesh=member_sh.mesh)
    batch_keys = ("x", "label") if parts[0].num_classes else ("x",)
    sample_keys = [rng.run_keys(m.config.seed).samples for m in ms]
    pending: list = []  # (device metrics [K, ...], device ok [K]) since the last flush

    def flush(step: int) -> None:
      nonlocal alive
      host = jax.device_get(pending)
      pending.clear()
      for i in np.flatnonzero(alive):
        good = []
        for call, (metrics, ok) in enumerate(host):
          if ok[i]:
            good.append({n: v[i] for n, v in metrics.items()})
            continue
          at = step - (len(host) - call) * k  # the member's last good step
          bad = [n for n, v in metrics.items() if not np.all(np.isfinite(v[i]))]
          reason = f"metric {bad[0]!r} became non-finite" if bad else "its state became non-finite"
          logs[i].rows += good
          logs[i].flush(at) if good else None
          msg = (
            f"member {ms[i].name}: {reason} in steps {at + 1}..{at + k}; frozen at step {at}, "
            f"{int(alive.sum()) - 1} of {K} members go on"
          )
          print(msg, file=sys.stderr)
          with open(os.path.join(dirs[i], "frozen.json"), "w") as f:
            json.dump({"step": at, "reason": msg}, f)
          alive = alive.copy()
          alive[i] = False
          break
        else:
          logs[i].rows += good
          logs[i].flush(step)
      if not alive.any():
        raise FloatingPointError(f"every member of the ensemble became NaN/Inf by step {step}")

    def save(step: int, state) -> None:
      lock.check()
      running = np.flatnonzero(alive)
      # TensorBoard's flush waits for its writer thread (~0.5 s each): flush the members' at once.
      with concurrent.futures.ThreadPoolExecutor(min(16, len(running))) as pool:
        list(pool.map(lambda i: writers_[i].flush(), running))
      for i in running:
        ckpts[i].save(step, member_state(state, i), its[i].get_state(), log_window=logs[i].window())

    step = start
    every = base.checkpoint.every_steps
    progress = train_lib.Progress(
      t.steps, step, f"{os.path.basename(os.path.dirname(os.path.abspath(dirs[0])))} (K={K})", t.progress
    )
    calls = 0
    stop = preemption.stop_signal(guard, calls, 1)
    while step < t.steps and stop is None:
      host = [
        train_lib.stack_batch(next(it), n_critic, k, batch_keys) if alive[i] else None for i, it in enumerate(its)
      ]
      proto = next(h for h in host if h is not None)
      host = [h if h is not None else jax.tree.map(np.zeros_like, proto) for h in host]  # frozen: no data used
      batch = jax.device_put(jax.tree.map(lambda *xs: np.stack(xs), *host), member_sh)
      alive_dev = jax.device_put(jnp.asarray(alive), member_sh)
      state, metrics, ok = train_step(state, batch, hp, alive_dev)
      step += k
      pending.append((metrics, ok))
      progress.step(k)
      save_now = step == t.steps or (every and step % every == 0)
      if step % t.log_every == 0 or save_now:
        flush(step)
        lock.check()
      if save_now:
        save(step, state)
      if t.sample_every and step % t.sample_every == 0 and step != t.steps:
        for i in np.flatnonzero(alive):
          train_lib.save_samples(member_state(state, i), sample_keys[i], dirs[i], step, writers_[i], ms[i].config)
      calls += 1
      stop = preemption.stop_signal(guard, calls, 1)
    if stop is not None:
      flush(step) if pending else None
      save(step, state)
      for c in ckpts:
        c.wait()
      progress.close(step)
      print(f"\n{stop} received: saved the members' checkpoints at step {step} of {t.steps}", file=sys.stderr)
    else:
      progress.close(step)
      for i in range(K):
        final = train_lib.save_samples(member_state(state, i), sample_keys[i], dirs[i], step, writers_[i], ms[i].config)
        shutil.copyfile(final, os.path.join(dirs[i], "samples_final.png"))
        path = os.path.join(dirs[i], "metrics.jsonl")
        rows = writers.read_jsonl(path) if os.path.exists(path) else []  # a member frozen in its first window
        if rows:
          plots.plot_losses(rows, os.path.join(dirs[i], "losses.png"))
      for c in ckpts:
        c.wait()
      print(f"ensemble of {K}: {int(alive.sum())} members finished; runs under {os.path.dirname(dirs[0])}")
    return EnsembleResult(state, alive, ms, dirs)
  finally:
    for w in writers_:
      w.close()


def run_ensemble_if_asked(config, workdir: str):
  """``train.num_seeds > 1``: :func:`train_ensemble`; else None (the caller trains one run)."""
  if int(config.train.get("num_seeds", 1)) > 1:
    return train_ensemble(config, workdir)
  return None


__all__ = [
  "VMAPPABLE",
  "EnsembleResult",
  "Member",
  "make_members",
  "train_ensemble",
  "member_state",
  "stack_states",
  "make_ensemble_step",
  "hyperparameters",
  "parts_with",
]
