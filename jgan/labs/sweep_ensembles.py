"""Sweep runs grouped into ensembles: the runs of a sweep that differ only in ``seed`` and the vmappable
hyperparameters (:data:`jgan.ensemble.VMAPPABLE`: learning rates, EMA decay, penalty weights) train as
the members of one program (:func:`jgan.ensemble.train_ensemble`); every other axis (``arg``, model
sizes, step budgets, ...) separates groups, which run one after the other or in ``--processes``.

Each run keeps its directory ``<sweep>/runs/<name>`` (an ordinary run directory: checkpoints, metrics,
``final_metrics.json``); the group's lock and ``ensemble.json`` live in ``<sweep>/ensembles/<group>``.
Members run on one device each (``parallel.num_devices = 1`` in their stored config), so a group of one
computes what ``jgan train`` on one device computes, and the members equal their single runs bit for
bit on CPU (tests/test_ensemble.py).
"""

from __future__ import annotations

import hashlib
import os
import time

from jgan import ensemble
from jgan.labs import sweep as sweep_lib


def member_overrides(run: sweep_lib.Run) -> dict:
  """The overrides of ``run`` that vary inside an ensemble: ``seed`` and the vmappable keys."""
  return {k: v for k, v in run.overrides if k == "seed" or k in ensemble.VMAPPABLE}


def group_key(run: sweep_lib.Run) -> tuple:
  """What must be equal for runs to share one program: the config argument and every other override."""
  return (run.arg, tuple((k, v) for k, v in run.overrides if k != "seed" and k not in ensemble.VMAPPABLE))


def group_runs(runs: list[sweep_lib.Run]) -> list[list[sweep_lib.Run]]:
  """``runs`` split into ensembles (:func:`group_key`), in the order of each group's first run."""
  groups: dict[tuple, list[sweep_lib.Run]] = {}
  for r in runs:
    groups.setdefault(group_key(r), []).append(r)
  return list(groups.values())


def _group_dir(workdir: str, runs: list[sweep_lib.Run]) -> str:
  """``<workdir>/ensembles/<label>-<hash of the member runs>`` (a resumed group finds its directory)."""
  labels = [f"{k}={v}" for k, v in runs[0].labels if k != "seed" and k not in ensemble.VMAPPABLE]
  digest = hashlib.sha256("\n".join(r.name for r in runs).encode()).hexdigest()[:10]
  return os.path.join(workdir, "ensembles", f"{','.join(labels) or 'all'}-{digest}")


def train_group(config_spec: str, runs: list[sweep_lib.Run], workdir: str, metrics=None) -> list[dict]:
  """Trains the unfinished runs of one group as one ensemble, scores every member; returns the results
  of all ``runs`` (finished ones read back, ``skipped=True``, or scored again from their checkpoints
  for metrics they lack). A member frozen at a NaN/Inf gets NaN
  metric values (tables leave it out of the mean and say how many are undefined)."""
  todo, out = [], {}
  for run in runs:
    config = sweep_lib.run_config(config_spec, run)
    names = sweep_lib.check_metrics(config, metrics)
    done = sweep_lib.read_results(os.path.join(workdir, "runs", run.name))
    if done is not None:
      if done["config_sha256"] != sweep_lib.config_digest(config):
        raise ValueError(f"runs/{run.name} holds results of another config; use a new --workdir or delete the run")
      # Finished: skipped, or scored for the metrics it lacks from its checkpoint (train_one does both).
      out[run.name] = sweep_lib.train_one(config_spec, run, workdir, metrics)
      continue
    todo.append((run, config, names))
  if todo:
    t0 = time.perf_counter()
    base = sweep_lib.run_config(config_spec, todo[0][0])
    dirs = [os.path.join(workdir, "runs", run.name) for run, _, _ in todo]
    result = ensemble.train_ensemble(
      base, _group_dir(workdir, [r for r, _, _ in todo]), [member_overrides(r) for r, _, _ in todo], member_dirs=dirs
    )
    steps = int(result.state.step.max())
    if steps < base.train.steps:
      raise RuntimeError(f"ensemble stopped at step {steps} of {base.train.steps}; rerun the sweep to resume it")
    cache_dir = os.path.join(workdir, "eval_cache")
    for i, ((run, config, names), run_dir) in enumerate(zip(todo, dirs)):
      scored = sweep_lib.score_run(ensemble.member_state(result.state, i), config, run_dir, names, cache_dir=cache_dir)
      if not result.alive[i]:  # frozen at a NaN/Inf: its numbers are not results of this config
        scored = {k: (float("nan") if isinstance(v, float | int) and k != "step" else v) for k, v in scored.items()}
      record = sweep_lib.write_results(run, config, run_dir, scored)
      out[run.name] = {**record, "skipped": False, "wall_s": (time.perf_counter() - t0) / len(todo)}
  return [out[r.name] for r in runs]
