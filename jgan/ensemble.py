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
:func:`jgan.resume.load_generator` and ``jgan train`` (which continues it as a single run) work on
a member directory unchanged. ``<workdir>/ensemble.json`` lists the members; ``<workdir>/jgan.lock``
holds the ensemble.

The loop is the single run's (:func:`jgan.loop.train_loop`, same cadences, signals, resume hint):
:class:`EnsembleTrainer` supplies the stacked state, the ensemble step and one
:class:`jgan.outputs.RunOutputs` per member. Resume: rerunning on the same workdir restores every
member's latest checkpoint (the common step of the running members), so the ensemble continues
bit-identically. NaN/Inf: a member whose metrics or state become non-finite in a call is frozen at its
state before that call (the others go on), logged and written to ``<member>/frozen.json``; only when
every member is frozen does training stop with FloatingPointError. Periodic evaluations
(``evals.every_steps``) run for every running member into its ``evals.jsonl``. One process only
(``jax.distributed`` runs are refused). docs/ensembles.md has the measurements.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import sys
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jgan import checkpoint as ckpt_lib
from jgan import components as components_lib
from jgan import config as config_lib
from jgan import data as data_lib
from jgan import preemption, resume, rng, run_info, sharding, storage
from jgan import state as state_lib
from jgan import train as train_lib
from jgan import workdir as workdir_lib
from jgan.ensemble_step import (
  ENSEMBLE_MODES,
  VMAPPABLE,
  Member,
  components_with,
  hyperparameters,
  make_ensemble_step,
  make_members,
  member_name,
  member_sharding,
  member_state,
  resolve_mode,
  stack_states,
  use_cpu_cores,
)
from jgan.loop import train_loop
from jgan.outputs import RunOutputs
from jgan.progress import Progress

log = logging.getLogger(__name__)


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
  path = storage.join(workdir, "ensemble.json")
  names = [m.name for m in members]
  if storage.exists(path):
    stored = json.loads(storage.read_text(path))["members"]
    if [m["name"] for m in stored] != names:
      raise ValueError(
        f"{workdir} holds an ensemble of other members ({', '.join(m['name'] for m in stored)}); use a new --workdir"
      )
  rel = [storage.relpath(d, workdir) for d in dirs]
  info = [{"name": m.name, "overrides": m.overrides, "dir": r} for m, r in zip(members, rel)]
  storage.replace_text(path, json.dumps({"members": info}, indent=2, default=str))


def train_ensemble(
  config,
  workdir: str,
  members: list[dict[str, Any]] | None = None,
  *,
  member_dirs: list[str] | None = None,
  resume_command: str | None = None,
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
    resume_command: the shell command logged after a SIGTERM/SIGINT (``jgan train`` passes its own).

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
  if storage.exists(workdir) and not storage.isdir(workdir):
    raise ValueError(f"workdir={workdir!r} exists and is not a directory")
  member_sh = member_sharding(len(ms), num_devices)
  lock = workdir_lib.lock_run(workdir)
  guard = preemption.PreemptionGuard().__enter__()
  ckpts: list[ckpt_lib.Checkpointer] = []
  trainer = None
  try:
    one = sharding.make_shardings(sharding.make_mesh(1), base.train.steps_per_call)
    components = [components_lib.build(m.config, data_lib.sample_shape(m.config.data)) for m in ms]
    dirs = list(member_dirs) if member_dirs is not None else [storage.join(workdir, m.name) for m in ms]
    if len(dirs) != len(ms):
      raise ValueError(f"{len(dirs)} member_dirs for {len(ms)} members")
    _check_workdir_members(workdir, ms, dirs)
    for m, d in zip(ms, dirs):
      ckpts.append(
        ckpt_lib.Checkpointer(
          ckpt_lib.checkpoint_dir(d), m.config.checkpoint, config=m.config, versions=run_info.library_versions()
        )
      )
    restored, frozen = _restore(ms, dirs, components, ckpts, one)
    trainer = EnsembleTrainer(ms, dirs, components, ckpts, restored, frozen, member_sh)
    hint = train_lib.resume_hint(workdir, resume_command)
    t = base.train
    desc = f"{storage.basename(storage.abspath(workdir))} (K={len(ms)})"
    progress = Progress(t.steps, trainer.start, desc, t.progress)
    state = train_loop(
      trainer, trainer.state, trainer.start, config=base, lock=lock, guard=guard, progress=progress, resume_hint=hint
    )
    return EnsembleResult(state, trainer.alive, ms, dirs)
  finally:
    if trainer is not None:
      for out in trainer.outs:
        out.close()
    for c in ckpts:
      c.close(quiet=sys.exc_info()[0] is not None)
    guard.__exit__(None, None, None)
    lock.release()


def _restore(ms, dirs, components, ckpts, one):
  """Each member's restored checkpoint (or None), at one common step for the members not frozen."""
  frozen = [storage.exists(storage.join(d, "frozen.json")) for d in dirs]
  out = []
  for m, p, c in zip(ms, components, ckpts):
    out.append(resume.restore(c, ckpt_lib.abstract_state(p, one.replicated), config=m.config, quarantine=True))
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
            else resume.restore(
              ckpts[i], ckpt_lib.abstract_state(components[i], one.replicated), step=common, config=ms[i].config
            )
          )
        except ckpt_lib.CheckpointError:
          out[i] = None
    if any(out[i] is None for i in running):  # no common checkpoint: every running member starts over
      for i in running:
        out[i] = None
  return out, frozen


class EnsembleTrainer:
  """The K members for :func:`jgan.loop.train_loop`: the stacked state, the ensemble step, the members'
  iterators, outputs and evaluators, and which members are still alive (not frozen at a NaN/Inf)."""

  def __init__(self, ms, dirs, components, ckpts, restored, frozen, member_sh):
    base = ms[0].config
    t = base.train
    self.ms, self.dirs, self.ckpts, self.member_sh = ms, dirs, ckpts, member_sh
    # Real batches per step: one per critic update (+ G's own, Objective.g_own_batch).
    self.real_batches, self.steps_per_call = components[0].real_batches(t.n_critic), t.steps_per_call
    per_call = t.batch_size * self.real_batches * t.steps_per_call
    self.its = [data_lib.make_iterator(m.config.data, per_call, seed=m.config.seed) for m in ms]
    states = []
    for i, m in enumerate(ms):
      if restored[i] is None:
        states.append(state_lib.create_state(components[i], rng.run_keys(m.config.seed).train))
      else:
        states.append(restored[i].state)
        self.its[i].set_state(restored[i].data_state)
    self.state = jax.device_put(stack_states(states), member_sh)
    self.alive = np.array([not f for f in frozen])
    running = [i for i in range(len(ms)) if self.alive[i]]
    if not running:
      raise FloatingPointError(f"every member of {storage.dirname(dirs[0])} was frozen at a NaN/Inf")
    self.start = 0 if restored[running[0]] is None else restored[running[0]].step
    if self.start:
      log.info(f"resumed {len(running)} members at step {self.start}")
    self.outs = [RunOutputs(d, m.config, c, r) for m, d, c, r in zip(ms, dirs, ckpts, restored)]
    self.hp = jax.device_put({key: jnp.asarray(v) for key, v in hyperparameters(ms).items()}, member_sh)
    self.train_step = make_ensemble_step(
      base, components[0], t.steps_per_call, mode=base.parallel.ensemble, mesh=member_sh.mesh
    )
    self.batch_keys = ("x", "label") if components[0].num_classes else ("x",)
    self.evaluators = [train_lib.make_evaluator(m.config, d) for m, d in zip(ms, dirs)]
    self.pending: list = []  # (device metrics [K, ...], device ok [K]) since the last flush
    self.step_count = self.start  # the step the stacked state is at

  def running(self) -> list[int]:
    return [int(j) for j in np.flatnonzero(self.alive)]

  def step(self, state):
    host = [
      train_lib.stack_batch(next(it), self.real_batches, self.steps_per_call, self.batch_keys)
      if self.alive[i]
      else None
      for i, it in enumerate(self.its)
    ]
    proto = next(h for h in host if h is not None)
    host = [h if h is not None else jax.tree.map(np.zeros_like, proto) for h in host]  # frozen: no data used
    batch = jax.device_put(jax.tree.map(lambda *xs: np.stack(xs), *host), self.member_sh)
    alive = jax.device_put(jnp.asarray(self.alive), self.member_sh)
    state, metrics, ok = self.train_step(state, batch, self.hp, alive)
    self.pending.append((metrics, ok))
    self.step_count += self.steps_per_call
    return state

  def _collect(self) -> None:
    """Moves the pending calls' metrics into the running members' logging windows; a member whose call
    went non-finite is frozen at its last good step (its good rows written up to it)."""
    host = jax.device_get(self.pending)
    self.pending.clear()
    per_call, num_members = self.steps_per_call, len(self.ms)
    for i in self.running():
      good = []
      for call, (metrics, ok) in enumerate(host):
        if ok[i]:
          good.append({n: v[i] for n, v in metrics.items()})
          continue
        at = self.step_count - (len(host) - call) * per_call  # the member's last good step
        bad = [n for n, v in metrics.items() if not np.all(np.isfinite(v[i]))]
        reason = f"metric {bad[0]!r} became non-finite" if bad else "its state became non-finite"
        self.outs[i].log.extend(good)
        self.outs[i].log.flush(at) if good else None
        msg = (
          f"member {self.ms[i].name}: {reason} in steps {at + 1}..{at + per_call}; frozen at step {at}, "
          f"{int(self.alive.sum()) - 1} of {num_members} members go on"
        )
        log.warning(msg)
        storage.write_text(storage.join(self.dirs[i], "frozen.json"), json.dumps({"step": at, "reason": msg}))
        self.alive = self.alive.copy()
        self.alive[i] = False
        break
      else:
        self.outs[i].log.extend(good)
    if not self.alive.any():
      raise FloatingPointError(f"every member of the ensemble became NaN/Inf by step {self.step_count}")

  def log(self, step):
    """Writes every running member's row of ``step``; None: no single row for the progress line."""
    self._collect()
    for i in self.running():
      self.outs[i].log.flush(step)
    return None

  def evaluate(self, state, step):
    """``{member index: results}`` of the running members' evaluations (None: no evaluations)."""
    out = {}
    for i in self.running():
      ev = self.evaluators[i]
      if ev is not None:
        results = ev(member_state(state, i), step)
        if results:
          self.outs[i].writer.scalars(step, {f"eval/{name}": v for name, v in results.items()})
          out[i] = results
    return out or None

  def save(self, step, state, results=None):
    self._collect()  # the open window (also pending calls after a signal) goes into each checkpoint
    running = self.running()
    # TensorBoard's flush waits for its writer thread (~0.5 s each): flush the members' at once.
    with concurrent.futures.ThreadPoolExecutor(min(16, len(running))) as pool:
      list(pool.map(lambda i: self.outs[i].writer.flush(), running))
    for i in running:
      metrics = (results or {}).get(i)
      self.outs[i].save(step, member_state(state, i), self.its[i].get_state(), metrics=metrics)

  def samples(self, state, step):
    for i in self.running():
      self.outs[i].samples(member_state(state, i), step)

  def finish(self, state, step):
    for i, out in enumerate(self.outs):  # frozen members too: their last good state
      out.finish(member_state(state, i), step)
    self.wait()
    where = storage.dirname(self.dirs[0])
    log.info(f"ensemble of {len(self.ms)}: {int(self.alive.sum())} members finished; runs under {where}")

  def wait(self):
    for c in self.ckpts:
      c.wait()

  def saved(self, step):
    return f"saved the checkpoints of {len(self.running())} members"

  def last_good(self):
    self.wait()
    last = [c.latest_step() for c in self.ckpts]
    if any(s is None for s in last):
      return "no checkpoint had been saved yet by every member"
    return f"every member's checkpoint of step {min(last)} is intact; rerunning on this workdir resumes from it"


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
  "components_with",
  "resolve_mode",
  "stack_states",
  "train_ensemble",
  "use_cpu_cores",
]
