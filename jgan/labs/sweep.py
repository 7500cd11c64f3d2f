"""Reproducible sweeps: every combination of config overrides, one workdir per run, one results table.

A sweep is a base config (``FILE[:ARG]``, as ``jgan train --config``) and a spec of axes::

  SPEC  := AXIS (";" AXIS)*
  AXIS  := KEY "=" VALUES
  VALUES:= VALUE ("," VALUE)*      a list; each value parsed as the type of the config field KEY
         | A ":" B [":" S]          the integers range(A, B, S) (S defaults to 1)

``KEY`` is a dotted config key (``model.pack``, ``optim.d.lr``, ``seed``) or ``arg``: the config file's
argument (``arg=ring8:gan,ring8:pacgan2`` loads ``get_config("ring8:gan")``, ...), applied before the
other keys. Runs are the Cartesian product of the axes, the first axis varying slowest. An axis with a
single value is a fixed override: it applies to every run but is left out of run names and table rows.

Before anything trains, :func:`check` resolves every run's config (:func:`jgan.config.resolve`) and
checks the metrics against each run's data and model (:func:`check_metrics`), so a bad sweep fails in
seconds with a ValueError naming the bad value and the valid choices.

Each run trains with :func:`jgan.train.train_and_evaluate` in ``<workdir>/runs/<name>`` (``name`` joins
the multi-valued axes, e.g. ``arg=ring8_pacgan2,seed=3``); :func:`score_run` then scores its final EMA
generator with z that depends only on the seed, and :func:`write_results` writes ``final_metrics.json``.
Scoring and writing take only a state and a config, so states trained elsewhere (a checkpoint, a
member of a multi-seed ensemble) are scored the same way. The metrics:

* 2-D mixtures by default: the mode metrics of :func:`jgan.labs.mode_collapse.evaluate` on
  :data:`jgan.labs.mode_collapse.EVAL_SAMPLES` points (``modes``, ``high_quality``, ``reverse_kl``),
  with ``final_samples.npy`` the points;
* otherwise (``metrics``, ``jgan sweep --metric``, or an image config's default: its ``evals.metrics``,
  else :data:`jgan.evaluation.DEFAULT_METRICS` of its data set) any :data:`jgan.metrics.METRICS` names,
  computed by :class:`jgan.evaluation.Evaluator` (``evals.*`` settings such as ``num_samples`` apply;
  real features are cached in ``<workdir>/eval_cache``), with ``final_samples.npy`` the first
  :data:`IMAGE_SAMPLES` images.

A run whose ``final_metrics.json`` exists is skipped, so an interrupted sweep resumes where it stopped (a
run cut short resumes from its checkpoint); a finished run that lacks a requested metric is scored again
from its checkpoint; a run whose stored config differs from the sweep's is refused.

Aggregation (:func:`aggregate`) groups runs by every multi-valued axis except ``seed`` and writes
``table.md`` and ``table.csv``, ``results.csv`` (one row per run) and ``samples.png``. Mixture runs with
the default metrics get the mode-collapse table (mean and sample std over seeds of each mode metric,
runs with every mode) and a grid of scatter plots (a row per group, a column per seed); any other
metrics get, per result key, the mean ± sample std over seeds and the per-seed values in seed order,
and a grid of each run's final images (a row per group, a column per seed). None of these hold times,
so the same sweep on the same machine writes byte-identical files; wall times go to ``timing.jsonl``.

This module runs sweeps; the grammar is :mod:`jgan.labs.sweep_spec`, metric checks and scoring
:mod:`jgan.labs.sweep_scoring`, the aggregate files :mod:`jgan.labs.sweep_report`.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import time
from typing import Any

from jgan.labs.sweep_report import aggregate, metric_keys
from jgan.labs.sweep_scoring import (
  MODE_KEYS,
  RECORD_KEYS,
  check,
  check_metrics,
  evaluator,
  expected_keys,
  joined_metrics,
  read_results,
  score_run,
  write_json_atomic,
  write_results,
)
from jgan.labs.sweep_spec import Run, expand, holds_results_of, run_config


def enable_compilation_cache(cache_dir: str) -> None:
  """Turns on JAX's persistent compilation cache in ``cache_dir`` for this process (a global setting).

  Runs that differ only in their seed lower to the same programs, so all but the first load their
  executables instead of compiling (seconds per run on a loaded CPU); results are unchanged.
  """
  import jax

  jax.config.update("jax_compilation_cache_dir", cache_dir)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def train_one(config_spec: str, run: Run, workdir: str, metrics=None) -> dict:
  """Trains and scores one run (skipped if its results exist); returns its results dict.

  Training is :func:`jgan.train.train_and_evaluate` in ``<workdir>/runs/<name>``, scoring
  :func:`score_run`, the record :func:`write_results`. A finished run that lacks some of the requested
  metrics is scored again from its checkpoint (not retrained). Raises ValueError if the run directory
  holds results of a different config, RuntimeError if training stopped early (SIGTERM/SIGINT: its
  checkpoint is kept and the next sweep resumes it).
  """
  from jgan import train

  config = run_config(config_spec, run)
  names = check_metrics(config, metrics)
  run_dir = os.path.join(workdir, "runs", run.name)
  cache_dir = os.path.join(workdir, "eval_cache")
  done = read_results(run_dir)
  t0 = time.perf_counter()
  if done is not None:
    if not holds_results_of(run_dir, done, config):
      raise ValueError(f"{run_dir} holds results of another config; use a new --workdir or delete the run")
    if expected_keys(config, names) <= set(done):
      return {**done, "skipped": True}
    from jgan import resume

    state, _ = resume.load_state(run_dir)
    extra = {k: v for k, v in done.items() if k not in RECORD_KEYS}
    scored = score_run(state, config, run_dir, names, cache_dir=cache_dir)
    results = write_results(run, config, run_dir, {**extra, **scored})
    return {**results, "skipped": False, "wall_s": time.perf_counter() - t0}
  state = train.train_and_evaluate(config, run_dir)
  if int(state.step) < config.train.steps:
    raise RuntimeError(
      f"run {run.name} stopped at step {int(state.step)} of {config.train.steps}; rerun the sweep to resume it"
    )
  results = write_results(run, config, run_dir, score_run(state, config, run_dir, names, cache_dir=cache_dir))
  return {**results, "skipped": False, "wall_s": time.perf_counter() - t0}


# --- Ensembles: the runs that differ only in seed and vmappable hyperparameters (jgan.ensemble_step.VMAPPABLE:
# learning rates, EMA decay, penalty weights) train as the members of one program; every other axis
# (arg, model sizes, step budgets, ...) separates groups. Each run keeps its directory runs/<name>; the
# group's lock and ensemble.json live in ensembles/<group>. Members run on one device each, so a group
# of one computes what jgan train on one device computes (bit for bit on CPU, tests/test_ensemble.py).


def member_overrides(run: Run) -> dict:
  """The overrides of ``run`` that vary inside an ensemble: ``seed`` and the vmappable keys."""
  from jgan.ensemble_step import VMAPPABLE

  return {k: v for k, v in run.overrides if k == "seed" or k in VMAPPABLE}


def group_key(run: Run) -> tuple:
  """What must be equal for runs to share one program: the config argument and every other override."""
  from jgan.ensemble_step import VMAPPABLE

  return (run.arg, tuple((k, v) for k, v in run.overrides if k != "seed" and k not in VMAPPABLE))


def group_runs(runs: list[Run]) -> list[list[Run]]:
  """``runs`` split into ensembles (:func:`group_key`), in the order of each group's first run."""
  groups: dict[tuple, list[Run]] = {}
  for r in runs:
    groups.setdefault(group_key(r), []).append(r)
  return list(groups.values())


def _group_dir(workdir: str, runs: list[Run]) -> str:
  """``<workdir>/ensembles/<label>-<hash of the member runs>`` (a resumed group finds its directory)."""
  from jgan.ensemble_step import VMAPPABLE

  labels = [f"{k}={v}" for k, v in runs[0].labels if k != "seed" and k not in VMAPPABLE]
  digest = hashlib.sha256("\n".join(r.name for r in runs).encode()).hexdigest()[:10]
  return os.path.join(workdir, "ensembles", f"{','.join(labels) or 'all'}-{digest}")


def train_group(config_spec: str, runs: list[Run], workdir: str, metrics=None) -> list[dict]:
  """Trains the unfinished runs of one group as one ensemble, scores every member; returns the results
  of all ``runs`` (finished ones read back, ``skipped=True``, or scored again from their checkpoints
  for metrics they lack). A member frozen at a NaN/Inf gets NaN
  metric values (tables leave it out of the mean and say how many are undefined)."""
  from jgan import ensemble

  todo, out = [], {}
  for run in runs:
    config = run_config(config_spec, run)
    names = check_metrics(config, metrics)
    done = read_results(os.path.join(workdir, "runs", run.name))
    if done is not None:
      if not holds_results_of(os.path.join(workdir, "runs", run.name), done, config):
        raise ValueError(f"runs/{run.name} holds results of another config; use a new --workdir or delete the run")
      # Finished: skipped, or scored for the metrics it lacks from its checkpoint (train_one does both).
      out[run.name] = train_one(config_spec, run, workdir, metrics)
      continue
    todo.append((run, config, names))
  if todo:
    t0 = time.perf_counter()
    base = run_config(config_spec, todo[0][0])
    dirs = [os.path.join(workdir, "runs", run.name) for run, _, _ in todo]
    result = ensemble.train_ensemble(
      base, _group_dir(workdir, [r for r, _, _ in todo]), [member_overrides(r) for r, _, _ in todo], member_dirs=dirs
    )
    steps = int(result.state.step.max())
    if steps < base.train.steps:
      raise RuntimeError(f"ensemble stopped at step {steps} of {base.train.steps}; rerun the sweep to resume it")
    cache_dir = os.path.join(workdir, "eval_cache")
    for i, ((run, config, names), run_dir) in enumerate(zip(todo, dirs)):
      scored = score_run(ensemble.member_state(result.state, i), config, run_dir, names, cache_dir=cache_dir)
      if not result.alive[i]:  # frozen at a NaN/Inf: its numbers are not results of this config
        scored = {k: (float("nan") if isinstance(v, float | int) and k != "step" else v) for k, v in scored.items()}
      record = write_results(run, config, run_dir, scored)
      out[run.name] = {**record, "skipped": False, "wall_s": (time.perf_counter() - t0) / len(todo)}
  return [out[r.name] for r in runs]


def _worker_init(cache_dir: str | None, cpu_devices: int = 0) -> None:
  import jgan  # noqa: F401  (the XLA:CPU work-around must precede JAX's backend start in each process)

  if cpu_devices:  # ensembles split their members over this process's share of the cores
    from jgan import ensemble

    ensemble.use_cpu_cores(cpu_devices)
  if cache_dir:
    enable_compilation_cache(cache_dir)


def run_sweep(
  config_spec: str,
  sweep_spec: str,
  workdir: str,
  *,
  metrics=None,
  processes: int = 1,
  cache_dir: str | None = None,
  ensembles: bool = True,
  log=print,
) -> list[dict]:
  """Runs (or skips) every run of the sweep, then writes the aggregate files; returns the results.

  Everything is checked first (:func:`expand`, :func:`check`; then each metric's extractor is set up,
  so missing Inception weights fail here): a bad sweep raises before any run trains. ``metrics`` (a
  comma list or list of :data:`jgan.metrics.METRICS` names; default :func:`default_metrics`) score every
  run. ``processes > 1`` trains runs in that many spawned processes (each run is deterministic, so the
  results are those of a sequential sweep). ``cache_dir`` turns on JAX's persistent compilation cache
  there (:func:`enable_compilation_cache`; in this process too when ``processes == 1``). The sweep's
  spec goes to ``<workdir>/sweep.json``.

  ``ensembles`` (default): runs that differ only in seed and vmappable hyperparameters train as one
  ensemble (:func:`group_runs`, :func:`train_group`), each group one task; spawned processes get
  ``cpu_count // processes`` CPU devices each to split their members over (call
  :func:`jgan.ensemble.use_cpu_cores` before any JAX work for this process's share). False: every
  run is its own ``train_and_evaluate``.
  """
  runs = expand(config_spec, sweep_spec)
  checked = check(config_spec, runs, metrics)
  for c, names in checked:
    if names:
      evaluator(c, names, os.path.join(workdir, "eval_cache"))
  os.makedirs(os.path.join(workdir, "runs"), exist_ok=True)
  info = {"config": config_spec, "sweep": sweep_spec, "runs": [r.name for r in runs]}
  if metrics:
    info["metrics"] = joined_metrics(metrics)
  write_json_atomic(os.path.join(workdir, "sweep.json"), info)
  t0, load0 = time.perf_counter(), os.getloadavg()
  results: dict[str, dict] = {}

  def report(res: dict) -> None:
    results[res["name"]] = res
    how = "skipped (done)" if res["skipped"] else f"{res['wall_s']:.1f} s"
    keys = metric_keys([res])
    if set(keys) == set(MODE_KEYS):
      what = f"{res['modes']} modes, {100 * res['high_quality']:.1f}% high quality, reverse KL {res['reverse_kl']:.3f}"
    else:
      what = ", ".join(f"{k} {res[k]:.4g}" for k in keys)
    log(f"[{len(results)}/{len(runs)}] {res['name']}: {what} ({how})")

  tasks: list[tuple[Any, Any]]  # (train_group, [Run, ...]) or (train_one, Run)
  if ensembles:
    tasks = [(train_group, g) for g in group_runs(runs)]
  else:
    tasks = [(train_one, run) for run in runs]

  def report_all(res) -> None:
    for r in res if isinstance(res, list) else [res]:
      report(r)

  if processes <= 1:
    if cache_dir:
      enable_compilation_cache(cache_dir)
    for fn, task in tasks:
      report_all(fn(config_spec, task, workdir, metrics))
  else:
    ctx = multiprocessing.get_context("spawn")  # fork after JAX started is unsafe
    cpu_devices = max(1, (os.cpu_count() or 1) // processes) if ensembles else 0
    with concurrent.futures.ProcessPoolExecutor(
      processes, mp_context=ctx, initializer=_worker_init, initargs=(cache_dir, cpu_devices)
    ) as pool:
      futures = [pool.submit(fn, config_spec, task, workdir, metrics) for fn, task in tasks]
      for fut in concurrent.futures.as_completed(futures):
        report_all(fut.result())
  ordered = [results[r.name] for r in runs]
  wall = time.perf_counter() - t0
  with open(os.path.join(workdir, "timing.jsonl"), "a") as f:  # one line per invocation of the sweep
    f.write(
      json.dumps(
        {
          "wall_s": round(wall, 1),
          "processes": processes,
          "ensembles": len(tasks) if ensembles else 0,
          "load_average_start": load0,
          "load_average_end": os.getloadavg(),
          "trained": sum(not r["skipped"] for r in ordered),
          "runs_wall_s": {r["name"]: round(r["wall_s"], 1) for r in ordered if not r["skipped"]},
        }
      )
      + "\n"
    )
  aggregate(runs, ordered, workdir, log=log)
  log(
    f"sweep done in {wall:.0f} s ({sum(not r['skipped'] for r in ordered)} trained, "
    f"{sum(r['skipped'] for r in ordered)} skipped): {os.path.join(workdir, 'table.md')}"
  )
  return ordered
