"""Seed-parallel ensembles: K independent runs of one config trained by one jitted program.

``train_ensemble(config, workdir)`` trains the ``K = train.num_seeds`` runs of ``config`` with seeds
``config.seed + i`` (each its own initialisation, data order, z and step keys), or the runs given as
``members`` (per-member overrides: ``seed`` and the hyperparameters of :data:`VMAPPABLE`, values that
change no shape). Every leaf of the state gets a leading member axis ``[K, ...]``; one call of the
step (:func:`jgan.ensemble_step.make_ensemble_step`) advances every member: the members are split
over the devices of a ``('data',)`` mesh and, within a device, computed one after another
(``parallel.ensemble = map``, the CPU default: bit-identical to the single runs) or batched
(``vmap``, the default on GPU/TPU). On a CPU host, :func:`use_cpu_cores` (called by ``jgan train``
and ``jgan sweep``) makes one device per core.

Layout: ``<workdir>/<member name>/`` (or ``member_dirs``) is an ordinary run directory of that
member's single-run config (its own seed, ``train.num_seeds = 1``, ``parallel.num_devices = 1``):
``config.json``, ``metrics.jsonl``, ``tb/``, ``samples/``, ``checkpoints/``. ``jgan eval``,
:func:`jgan.checkpoint.load_generator` and ``jgan train`` (which continues it as a single run) work on
a member directory unchanged. ``<workdir>/ensemble.json`` lists the members; ``<workdir>/jgan.lock``
holds the ensemble.

Resume: rerunning on the same workdir restores every member's latest checkpoint (the common step of
the running members), so the ensemble continues bit-identically. NaN/Inf: a member whose metrics or
state become non-finite in a call is frozen at its state before that call (the others go on),
reported on stderr and in ``<member>/frozen.json``; only when every member is frozen does training
stop with FloatingPointError. Periodic evaluations (``evals.every_steps``) are not run inside an
ensemble: score the members afterwards (``jgan eval``, ``jgan sweep --metric``). One process only
(``jax.distributed`` runs are refused). docs/ensembles.md has the measurements.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import sys
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jgan import checkpoint as ckpt_lib
from jgan import components, plots, preemption, rng, run_info, sharding, writers
from jgan import config as config_lib
from jgan import data as data_lib
from jgan import state as state_lib
from jgan import train as train_lib
from jgan import workdir as workdir_lib
from jgan.ensemble_step import (
  ENSEMBLE_MODES,
  VMAPPABLE,
  Member,
  _member_sharding,
  hyperparameters,
  make_ensemble_step,
  make_members,
  member_name,
  member_state,
  parts_with,
  resolve_mode,
  stack_states,
  use_cpu_cores,
)


class EnsembleResult(NamedTuple):
  """What :func:`train_ensemble` returns: the stacked final ``state`` (every leaf ``[K, ...]``), which
  members are still ``alive`` (bool ``[K]``; False: frozen at a NaN/Inf), their ``members`` and
  ``workdirs``. :func:`member_state` takes member i's state out as an ordinary ``GANState``."""

  state: state_lib.GANState
  alive: np.ndarray
  members: list[Member]
  workdirs: list[str]


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
  if base.evals.metrics and base.evals.every_steps:
    print(
      f"note: evals.every_steps={base.evals.every_steps} is not run inside an ensemble; score the members "
      f"afterwards (jgan eval --workdir {os.path.join(workdir, ms[0].name)}, or jgan sweep --metric)",
      file=sys.stderr,
    )
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
    return _train(ms, dirs, parts, ckpts, one, member_sh, lock, guard, workdir)
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


def _train(ms, dirs, parts, ckpts, one, member_sh, lock, guard, workdir: str) -> EnsembleResult:
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
      for i in [int(j) for j in np.flatnonzero(alive)]:
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
      running = [int(j) for j in np.flatnonzero(alive)]
      # TensorBoard's flush waits for its writer thread (~0.5 s each): flush the members' at once.
      with concurrent.futures.ThreadPoolExecutor(min(16, len(running))) as pool:
        list(pool.map(lambda i: writers_[i].flush(), running))
      for i in running:
        ckpts[i].save(step, member_state(state, i), its[i].get_state(), log_window=logs[i].window())

    step = start
    every = base.checkpoint.every_steps
    progress = train_lib.Progress(t.steps, step, f"{os.path.basename(os.path.abspath(workdir))} (K={K})", t.progress)
    calls = 0
    stop = preemption.stop_signal(guard, calls, 1)
    if stop is not None and step < t.steps:  # during start-up: no step trained, nothing new to save
      progress.close(step)
      print(preemption.startup_message(stop, "rerun the same command to start"), file=sys.stderr)
      return EnsembleResult(state, alive, ms, dirs)
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
        for i in [int(j) for j in np.flatnonzero(alive)]:
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
        assert final is not None  # one process writes everything
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


__all__ = [  # the ensemble's public names, most defined in jgan.ensemble_step
  "ENSEMBLE_MODES",
  "VMAPPABLE",
  "EnsembleResult",
  "Member",
  "hyperparameters",
  "make_ensemble_step",
  "make_members",
  "member_name",
  "member_state",
  "parts_with",
  "resolve_mode",
  "stack_states",
  "train_ensemble",
  "use_cpu_cores",
]
