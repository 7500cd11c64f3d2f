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
"""

from __future__ import annotations

import concurrent.futures
import csv as csv_lib
import dataclasses
import difflib
import hashlib
import itertools
import json
import multiprocessing
import os
import re
import time
from typing import Any

import ml_collections
import numpy as np

from jgan import plots
from jgan.data import mixtures
from jgan.labs import mode_collapse

RESULTS_FILE = "final_metrics.json"
SAMPLES_FILE = "final_samples.npy"
IMAGE_SAMPLES = 16  # images kept per run (final_samples.npy) for samples.png
MODE_KEYS = ("modes", "high_quality", "reverse_kl")  # jgan.labs.mode_collapse.evaluate's results
# A results record's fields that are not metric values (skipped and wall_s: this invocation only).
_RECORD_KEYS = ("name", "labels", "seed", "step", "data", "config_sha256", "skipped", "wall_s")
ARG_KEY = "arg"
_RANGE = re.compile(r"^(-?\d+):(-?\d+)(?::(-?\d+))?$")


@dataclasses.dataclass(frozen=True)
class Run:
  """One point of a sweep: its name, the config argument and the ``(key, value)`` overrides."""

  name: str
  arg: str | None
  overrides: tuple[tuple[str, object], ...]
  labels: tuple[tuple[str, str], ...]  # the multi-valued axes' (key, value text): name and table row

  @property
  def group(self) -> tuple[tuple[str, str], ...]:
    """The run's table row: its labels without the seed."""
    return tuple((k, v) for k, v in self.labels if k != "seed")

  @property
  def seed_label(self) -> str:
    return dict(self.labels).get("seed", "")


def parse_spec(spec: str) -> list[tuple[str, list[str]]]:
  """``"model.pack=1,2;seed=0:3"`` -> ``[("model.pack", ["1", "2"]), ("seed", ["0", "1", "2"])]``.

  Values stay text here (typed against the config in :func:`expand`). Raises ValueError naming the bad
  axis for an empty spec, an axis without ``=``, an empty value, an empty range or a repeated key.
  """
  axes, seen = [], set()
  for part in spec.split(";"):
    part = part.strip()
    if not part:
      continue
    key, eq, raw = part.partition("=")
    key, raw = key.strip(), raw.strip()
    if not eq or not key or not raw:
      raise ValueError(f"bad sweep axis {part!r}: expected KEY=V1,V2,... or KEY=A:B[:S]")
    if key in seen:
      raise ValueError(f"sweep key {key!r} appears twice; give all its values in one axis")
    seen.add(key)
    m = _RANGE.match(raw)
    if m:
      a, b, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
      if s == 0 or not range(a, b, s):
        raise ValueError(f"sweep axis {part!r} is an empty range (range({a}, {b}, {s}))")
      values = [str(v) for v in range(a, b, s)]
    else:
      values = [v.strip() for v in raw.split(",")]
      if any(not v for v in values):
        raise ValueError(f"sweep axis {part!r} has an empty value")
    if len(set(values)) != len(values):
      raise ValueError(f"sweep axis {part!r} repeats a value")
    axes.append((key, values))
  if not axes:
    raise ValueError("empty sweep: give at least one axis, e.g. --sweep 'seed=0:10'")
  return axes


def load_config(spec: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """``get_config([arg])`` of the config file in ``spec`` = ``FILE[:ARG]`` (:func:`jgan.config.load_file`)."""
  from jgan import config as config_lib

  return config_lib.load_file(spec, arg)


def _parse_value(key: str, text: str, current):
  """``text`` as the type of the config field's ``current`` value (bool, int, float or str)."""
  try:
    if isinstance(current, bool):
      return {"true": True, "1": True, "false": False, "0": False}[text.lower()]
    if isinstance(current, (int, float)):
      return type(current)(text)
  except (KeyError, ValueError):
    raise ValueError(
      f"sweep value {key}={text!r} is not a {type(current).__name__} like the default {current!r}"
    ) from None
  if isinstance(current, (str, type(None))):
    return text
  raise ValueError(f"sweep key {key!r} is a section ({type(current).__name__}); sweep its fields instead")


def _field(c, key: str):
  node = c
  parts = key.split(".")
  for i, part in enumerate(parts):
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      siblings = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
      near = difflib.get_close_matches(part, siblings, n=1)
      where = ".".join(parts[:i]) or "the top level"
      hint = f" (did you mean {'.'.join(parts[:i] + near)!r}?)" if near else ""
      raise ValueError(f"unknown config key {key!r} in the sweep{hint}; keys at {where}: {', '.join(siblings)}")
    node = node[part]
  return node


def _dir_name(labels) -> str:
  # Path-safe and readable: "arg=ring8:gan" -> "arg=ring8_gan"; the separator between axes is ",".
  return ",".join(f"{k}={re.sub(r'[^A-Za-z0-9._+-]', '_', v)}" for k, v in labels) or "run"


def expand(config_spec: str, sweep_spec: str) -> list[Run]:
  """The runs of a sweep, in order (first axis slowest), with values typed against the config.

  Raises ValueError for a bad spec, an unknown key, a value of the wrong type or two runs whose
  directory names collide.
  """
  axes = parse_spec(sweep_spec)
  arg_axis = [vals for key, vals in axes if key == ARG_KEY]
  runs: list[Run] = []
  names: dict[str, tuple] = {}
  for combo in itertools.product(*[vals for _, vals in axes]):
    chosen = list(zip([k for k, _ in axes], combo))
    arg = dict(chosen).get(ARG_KEY) if arg_axis else None
    base = load_config(config_spec, arg)
    overrides = []
    for key, text in chosen:
      if key != ARG_KEY:
        overrides.append((key, _parse_value(key, text, _field(base, key))))
    labels = tuple((k, v) for (k, v), (_, vals) in zip(chosen, axes) if len(vals) > 1)
    name = _dir_name(labels)
    if name in names:
      raise ValueError(f"runs {names[name]!r} and {labels!r} get the same directory name {name!r}")
    names[name] = labels
    runs.append(Run(name=name, arg=arg, overrides=tuple(overrides), labels=labels))
  return runs


def run_config(config_spec: str, run: Run) -> ml_collections.ConfigDict:
  """The full config of ``run`` (progress bars off: a sweep prints one line per run instead)."""
  c = load_config(config_spec, run.arg)
  c.update_from_flattened_dict(dict(run.overrides))
  c.train.progress = False
  return c


def config_digest(c: ml_collections.ConfigDict) -> str:
  """sha256 of the config's canonical JSON: what identifies a run's results."""
  return hashlib.sha256(c.to_json_best_effort(sort_keys=True).encode()).hexdigest()


def _write_json(path: str, obj) -> None:
  with open(path + ".tmp", "w") as f:
    json.dump(obj, f, indent=2, sort_keys=True)
    f.write("\n")
  os.replace(path + ".tmp", path)  # atomic: a killed sweep never leaves half a results file


def read_results(run_dir: str) -> dict | None:
  path = os.path.join(run_dir, RESULTS_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def enable_compilation_cache(cache_dir: str) -> None:
  """Turns on JAX's persistent compilation cache in ``cache_dir`` for this process (a global setting).

  Runs that differ only in their seed lower to the same programs, so all but the first load their
  executables instead of compiling (seconds per run on a loaded CPU); results are unchanged.
  """
  import jax

  jax.config.update("jax_compilation_cache_dir", cache_dir)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _is_mixture(config) -> bool:
  return config.data.name in mixtures.MIXTURES


def applicable_metrics(config) -> list[str]:
  """The :data:`jgan.metrics.METRICS` names that can score a generator of ``config``, in registry order.

  2-D mixtures (``ring8``, ``grid25``): the point metrics (``modes2500``). Images: the Inception metrics;
  the digit-classifier ones (``mnist_*``) on one-channel data sets with a domain classifier
  (:data:`jgan.metrics.classifier.DOMAINS`), ``stacked_modes26k`` on three-channel ones; the
  ``*class_match*`` metrics only for a class-conditional model (``model.conditional=True``).
  """
  from jgan import data as data_lib
  from jgan.metrics import METRICS

  name = config.data.name
  mixture = name in mixtures.MIXTURES
  channels = 0 if mixture else data_lib.IMAGE_DATASETS[name].channels
  digits = name in _classifier_domains()
  conditional = bool(config.model.get("conditional", False))
  out = []
  for m, p in METRICS.items():
    if p.extractor == "points":
      ok = mixture
    elif mixture:
      ok = False
    elif p.extractor == "mnist":
      ok = digits and channels == 1
    elif p.extractor == "mnist_stacked":
      ok = digits and channels == 3
    else:
      ok = True
    if p.distance == "class_match" and not conditional:
      ok = False
    if ok:
      out.append(m)
  return out


def _classifier_domains() -> dict[str, str]:
  from jgan.metrics import classifier

  return classifier.DOMAINS


def default_metrics(config) -> str:
  """The metrics a sweep scores ``config``'s runs with when ``--metric`` is not given.

  ``""`` for a 2-D mixture: the mode metrics of :func:`jgan.labs.mode_collapse.evaluate` (keys
  ``modes``, ``high_quality``, ``reverse_kl``) and the mode-collapse table. For images, as ``jgan
  eval``: ``config.evals.metrics`` if set, else the data set's :data:`jgan.evaluation.DEFAULT_METRICS`
  (:data:`jgan.evaluation.FALLBACK_METRICS` for a data set without an entry).
  """
  from jgan import evaluation

  if _is_mixture(config):
    return ""
  return evaluation.eval_settings(config).metrics or evaluation.DEFAULT_METRICS.get(
    config.data.name, evaluation.FALLBACK_METRICS
  )


def _joined(metrics) -> str:
  """Metric names as one comma list: ``metrics`` is None, a comma list or a list of comma lists (``--metric``)."""
  return metrics if isinstance(metrics, str) else ",".join(metrics or ())


def check_metrics(config, metrics=None) -> tuple[str, ...]:
  """The metric names a run of ``config`` is scored with, checked; ``()`` means the mixture mode metrics.

  Args:
    config: the run's config (resolved or not).
    metrics: :data:`jgan.metrics.METRICS` names, a comma list or a list of them; None or empty:
      :func:`default_metrics`.

  Raises ValueError naming an unknown metric (with the registered names) or one that does not apply to
  the run's data or model (with the names that do, :func:`applicable_metrics`). Touches no files.
  """
  from jgan.metrics import protocols

  names = protocols.parse_metric_names(_joined(metrics) or default_metrics(config))
  valid = applicable_metrics(config)
  for m in names:
    if m not in valid:
      unconditional = protocols.METRICS[m].distance == "class_match" and not config.model.get("conditional", False)
      what = f"data.name={config.data.name!r}" + (", model.conditional=False" if unconditional else "")
      raise ValueError(f"metric {m!r} does not apply to this run ({what}); valid choices: {', '.join(valid)}")
  return tuple(names)


def check(config_spec: str, runs: list[Run], metrics=None) -> list[tuple[ml_collections.ConfigDict, tuple]]:
  """Checks every run before anything trains; returns each run's ``(config, metric names)``.

  Each run's config must resolve (:func:`jgan.config.resolve` validates it) and its metrics apply
  (:func:`check_metrics`). Raises ValueError naming the run and the problem. Fast (no JAX work, no
  files): a bad sweep fails in seconds, not after training its first run.
  """
  from jgan import config as config_lib
  from jgan.metrics import protocols

  if metrics:
    protocols.parse_metric_names(_joined(metrics))  # an unknown name is wrong for every run: say so without a run
  out = []
  for run in runs:
    c = run_config(config_spec, run)
    try:
      config_lib.resolve(c)
      names = check_metrics(c, metrics)
    except ValueError as e:
      raise ValueError(f"run {run.name}: {e}") from None
    out.append((c, names))
  return out


_EVALUATORS: dict[str, object] = {}  # one per (data, model classes, evals settings, metrics): extractors stay loaded


def evaluator(config, names, cache_dir: str):
  """A :class:`jgan.evaluation.Evaluator` of metrics ``names`` for ``config``'s data, reused across runs.

  Its real-feature cache is ``config.evals.cache_dir`` if set, else ``cache_dir``. Raises as the
  Evaluator does (FileNotFoundError for missing Inception weights or an explicit classifier path; the
  default domain classifier is trained once if missing).
  """
  from jgan import config as config_lib
  from jgan import evaluation

  c = config_lib.resolve(config)
  settings = evaluation.eval_settings(c)
  settings.cache_dir = settings.cache_dir or cache_dir
  settings.metrics = ",".join(names)
  c.evals = settings
  key = json.dumps(
    [c.data.to_dict(), c.model.get("conditional", False), c.model.get("num_classes", 0), settings.to_dict()],
    sort_keys=True,
    default=str,
  )
  if key not in _EVALUATORS:
    _EVALUATORS[key] = evaluation.Evaluator(c, os.path.dirname(cache_dir), names, progress=False)
  return _EVALUATORS[key]


def score_run(state, config, run_dir: str, metrics=None, *, cache_dir: str | None = None) -> dict:
  """Scores a trained generator: the EMA generator of ``state`` (a :class:`jgan.state.GANState`).

  Works on any state of ``config``'s model (trained in this process or not, e.g. restored from a
  checkpoint or one member of a multi-seed ensemble); the evaluation z depends only on ``config.seed``
  (``jgan.rng.run_keys(seed).eval``), so scoring is deterministic. Writes ``final_samples.npy`` into
  ``run_dir``: the evaluation points ``[2500, 2]`` of a mixture, the first 16 images ``[16, H, W, C]``
  in [-1, 1] of an image model.

  Args:
    metrics: as :func:`check_metrics`; the default scores a mixture with
      :func:`jgan.labs.mode_collapse.evaluate` and an image model with its data set's metrics.
    cache_dir: the real-feature cache when ``config.evals.cache_dir`` is empty (default
      ``<run_dir>/eval_cache``; a sweep shares ``<workdir>/eval_cache`` between its runs).

  Returns ``{"step": int, **metric values}``: ``modes`` (int), ``high_quality`` in [0, 1] and
  ``reverse_kl`` (>= 0 or NaN) for the mixture default, else the Evaluator's keys
  (``mnist_fid5k``, ``mnist_kid5k/kid``, ...: :func:`jgan.metrics.protocols.result_keys`), floats.
  """
  from jgan import evaluation, rng
  from jgan import state as state_lib

  names = check_metrics(config, metrics)
  os.makedirs(run_dir, exist_ok=True)
  step = int(state.step)
  if not names:
    values, x = mode_collapse.evaluate(state, config)
    np.save(os.path.join(run_dir, SAMPLES_FILE), x)
    return {"step": step, **values}
  key = rng.run_keys(config.seed).eval
  ev = evaluator(config, names, cache_dir or os.path.join(run_dir, "eval_cache"))
  values = ev.evaluate(evaluation.state_sampler(state), rng=key)
  n = mode_collapse.EVAL_SAMPLES if _is_mixture(config) else IMAGE_SAMPLES
  x = np.asarray(state_lib.sample(state, key, n), np.float32)
  np.save(os.path.join(run_dir, SAMPLES_FILE), x)
  return {"step": step, **values}


def write_results(run: Run, config, run_dir: str, results: dict) -> dict:
  """Writes ``<run_dir>/final_metrics.json`` (atomically) and returns what it holds.

  ``results`` is :func:`score_run`'s dict (``step`` and the metric values). The record adds the run's
  ``name``, ``labels`` (its multi-valued axes), ``seed``, ``data`` and ``config_sha256`` (the digest of
  ``config``, which must be the run's full config, :func:`run_config`: a later sweep compares it).
  """
  record = {
    "name": run.name,
    "labels": [list(kv) for kv in run.labels],
    "seed": config.seed,
    "data": config.data.name,
    "config_sha256": config_digest(config),
    **results,
  }
  os.makedirs(run_dir, exist_ok=True)
  _write_json(os.path.join(run_dir, RESULTS_FILE), record)
  return record


def _expected_keys(config, names) -> set[str]:
  if not names:
    return set(MODE_KEYS)
  from jgan import evaluation
  from jgan.metrics import protocols

  n = evaluation.eval_settings(config).num_samples
  return {k for m in names for k in protocols.result_keys(m, n)}


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
  digest = config_digest(config)
  done = read_results(run_dir)
  t0 = time.perf_counter()
  if done is not None:
    if done["config_sha256"] != digest:
      raise ValueError(f"{run_dir} holds results of another config; use a new --workdir or delete the run")
    if _expected_keys(config, names) <= set(done):
      return {**done, "skipped": True}
    from jgan import checkpoint

    state, _ = checkpoint.load_state(run_dir)
    extra = {k: v for k, v in done.items() if k not in _RECORD_KEYS}
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
      if done["config_sha256"] != config_digest(config):
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
    info["metrics"] = _joined(metrics)
  _write_json(os.path.join(workdir, "sweep.json"), info)
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


def _mean_std(v: np.ndarray) -> tuple[float, float]:
  """Mean and sample std (ddof=1; 0 for one run) over the finite values of ``v`` (NaN if none)."""
  v = v[np.isfinite(v)]
  if not v.size:
    return float("nan"), float("nan")
  return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def metric_keys(results: list[dict]) -> list[str]:
  """The metric keys of results records (every key but the record's own fields), sorted: a record read
  back from ``final_metrics.json`` and a fresh one give the same columns."""
  return sorted({k for r in results for k in r if k not in _RECORD_KEYS})


def _fmt(x: float, digits: int = 4) -> str:
  return f"{x:.{digits}g}"


def _metric_tables(runs: list[Run], results: list[dict], groups: dict) -> tuple[list[str], list, list]:
  """The table of any metrics: per group and metric key, mean ± sample sd over seeds and the per-seed values."""
  keys = [k for k, _ in runs[0].group]
  mkeys = metric_keys(results)
  header = keys + ["runs", "seeds"] + [h for k in mkeys for h in (k, f"{k} per seed")]
  md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  table_rows = [keys + ["runs", "seeds"] + [h for k in mkeys for h in (f"{k}_mean", f"{k}_std", f"{k}_per_seed")]]
  for g, idx in groups.items():
    rs = [results[i] for i in idx]
    seeds = [runs[i].seed_label or str(results[i]["seed"]) for i in idx]
    md_cells, csv_cells = [], []
    for k in mkeys:
      v = np.array([r.get(k, np.nan) for r in rs], np.float64)
      mean, sd = _mean_std(v)
      bad = int(np.sum(~np.isfinite(v)))
      md_cells += [f"{_fmt(mean)} ± {_fmt(sd, 2)}" + (f" ({bad} undefined)" if bad else ""), ", ".join(map(_fmt, v))]
      csv_cells += [_fmt(mean, 10), _fmt(sd, 10), " ".join(_fmt(x, 10) for x in v)]
    lead = [v for _, v in g] + [str(len(rs)), " ".join(seeds)]
    md.append("| " + " | ".join(lead[:-1] + [", ".join(seeds)] + md_cells) + " |")
    table_rows.append(lead + csv_cells)
  label_keys = [k for k, _ in runs[0].labels if k != "seed"]
  per_run = [["name"] + label_keys + ["seed", "step"] + mkeys]
  for run, r in zip(runs, results):
    labels = dict(run.labels)
    per_run.append(
      [run.name]
      + [labels[k] for k in label_keys]
      + [str(r["seed"]), str(r["step"])]
      + [_fmt(float(r[k]), 10) if k in r else "" for k in mkeys]
    )
  return md, table_rows, per_run


def aggregate(runs: list[Run], results: list[dict], workdir: str, *, log=print) -> str:
  """Writes ``table.md``, ``table.csv``, ``results.csv`` and ``samples.png`` into ``workdir``.

  ``results[i]`` is run ``runs[i]``'s results record (:func:`write_results`). Groups (table rows) are
  the runs that differ only in their seed, in the order of their first run; within a group, runs keep
  the order of the seed axis. Runs scored by the mixture default (keys ``modes`` int, ``high_quality``
  in [0, 1], ``reverse_kl`` >= 0 or NaN) get the mode-collapse table (mean ± sd of each, and how many
  runs captured every mode); any other metrics a column pair per result key: mean ± sample sd (ddof 1,
  over the finite values) and the per-seed values (``table.csv``: ``KEY_mean``, ``KEY_std`` and
  ``KEY_per_seed``, space-separated). Returns the Markdown table.
  """
  groups: dict[tuple, list[int]] = {}
  for i, run in enumerate(runs):
    groups.setdefault(run.group, []).append(i)
  mode_table = set(metric_keys(results)) == set(MODE_KEYS)
  md, table_rows, per_run = (_mode_tables if mode_table else _metric_tables)(runs, results, groups)
  with open(os.path.join(workdir, "table.md"), "w") as f:
    f.write("\n".join(md) + "\n")
  # Run names and config arguments hold commas ("arg=ring8_gan,seed=3"): the csv module quotes them.
  for name, rows in (("table.csv", table_rows), ("results.csv", per_run)):
    with open(os.path.join(workdir, name), "w", newline="") as f:
      csv_lib.writer(f, lineterminator="\n").writerows(rows)
  path = os.path.join(workdir, "samples.png")
  if all(r["data"] in mixtures.MIXTURES for r in results):
    plot_samples(runs, results, groups, path, workdir)
  elif not image_samples(runs, groups, path, workdir):
    log(f"note: no samples.png (the runs' images differ in shape); each run's samples are in runs/*/{SAMPLES_FILE}")
  return "\n".join(md) + "\n"


def _mode_tables(runs: list[Run], results: list[dict], groups: dict) -> tuple[list[str], list, list]:
  """The mode-collapse table (mixture runs scored by :func:`jgan.labs.mode_collapse.evaluate`)."""
  keys = [k for k, _ in runs[0].group]
  num_modes = {g: len(mixtures.get(results[idx[0]]["data"])[0]) for g, idx in groups.items()}
  same_m = len(set(num_modes.values())) == 1
  m_txt = f" (of {next(iter(num_modes.values()))})" if same_m else ""
  header = keys + ["runs", f"modes{m_txt}", "high quality %", "reverse KL", "runs with all modes"]
  md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  table_rows = [
    keys
    + [
      "runs",
      "modes_mean",
      "modes_std",
      "high_quality_mean",
      "high_quality_std",
      "reverse_kl_mean",
      "reverse_kl_std",
      "all_modes_runs",
      "undefined_kl_runs",
    ]
  ]
  for g, idx in groups.items():
    rs = [results[i] for i in idx]
    m = np.array([r["modes"] for r in rs], np.float64)
    hq = np.array([r["high_quality"] for r in rs], np.float64)
    kl = np.array([r["reverse_kl"] for r in rs], np.float64)
    stats = [_mean_std(m), _mean_std(100 * hq), _mean_std(kl)]
    full = int(np.sum(m == num_modes[g]))
    bad_kl = int(np.sum(~np.isfinite(kl)))
    cells = [f"{a:.{d}f} ± {s:.{d}f}" for (a, s), d in zip(stats, (2, 1, 3))]
    if bad_kl:
      cells[2] += f" ({bad_kl} undefined)"
    md.append("| " + " | ".join([v for _, v in g] + [str(len(rs))] + cells + [f"{full}/{len(rs)}"]) + " |")
    nums = [f"{x:.6f}" for pair in stats for x in pair]
    table_rows.append([v for _, v in g] + [str(len(rs))] + nums + [str(full), str(bad_kl)])
  label_keys = [k for k, _ in runs[0].labels if k != "seed"]
  per_run = [["name"] + label_keys + ["seed", "step", "modes", "high_quality", "reverse_kl"]]
  for run, r in zip(runs, results):
    labels = dict(run.labels)
    per_run.append(
      [run.name]
      + [labels[k] for k in label_keys]
      + [str(r["seed"]), str(r["step"]), str(r["modes"]), f"{r['high_quality']:.6f}", f"{r['reverse_kl']:.6f}"]
    )
  return md, table_rows, per_run


def plot_samples(runs: list[Run], results: list[dict], groups: dict, path: str, workdir: str) -> str:
  """A grid of final-sample scatter plots: one row per group, one column per seed; writes PNG ``path``."""
  from jgan.data import mixtures

  rows = []
  for g, idx in groups.items():
    cells = []
    for i in idx:
      r, centres = results[i], mixtures.get(results[i]["data"]).centres
      seed = runs[i].seed_label
      score = f"{r['modes']}/{len(centres)}, {100 * r['high_quality']:.0f}%" if "modes" in r else ""
      title = f"{'s' + seed + ': ' if seed else ''}{score}"
      cells.append((title, np.load(os.path.join(workdir, "runs", runs[i].name, SAMPLES_FILE)), centres))
    rows.append(("\n".join(v for _, v in g) or "runs", cells))
  return plots.scatter_grid(rows, path)


def image_samples(runs: list[Run], groups: dict, path: str, workdir: str) -> bool:
  """A grid of each run's first :data:`IMAGE_SAMPLES` images (a 4 x 4 block per run): one row per group,
  one column per seed, in table order; writes PNG ``path``. False (nothing written) if the runs' images
  differ in shape."""
  from jgan import writers

  blocks = {}
  for i, run in enumerate(runs):
    x = np.load(os.path.join(workdir, "runs", run.name, SAMPLES_FILE))
    blocks[i] = writers.image_grid(x[:IMAGE_SAMPLES], ncols=4).astype(np.float32) / 127.5 - 1.0
  if len({b.shape for b in blocks.values()}) != 1:
    return False
  cols = max(len(idx) for idx in groups.values())
  blank = np.ones_like(blocks[0])
  cells = [blocks[idx[j]] if j < len(idx) else blank for idx in groups.values() for j in range(cols)]
  writers.save_png(path, writers.image_grid(np.stack(cells), ncols=cols, pad=8), scale=2)
  return True
