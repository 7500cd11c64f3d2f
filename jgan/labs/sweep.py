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

Each run trains with :func:`jgan.train.train_and_evaluate` in ``<workdir>/runs/<name>`` (``name`` joins
the multi-valued axes, e.g. ``arg=ring8_pacgan2,seed=3``), then evaluates the EMA generator on
:data:`jgan.labs.mode_collapse.EVAL_SAMPLES` points drawn from a z that depends only on the seed, and writes
``final_metrics.json`` (mode metrics, ``jgan.metrics.modes``) and ``final_samples.npy``. A run whose
``final_metrics.json`` exists is skipped, so an interrupted sweep resumes where it stopped (a run cut
short resumes from its checkpoint); a run whose stored config differs from the sweep's is refused.

Aggregation (:func:`aggregate`) groups runs by every multi-valued axis except ``seed`` and writes
``table.md`` and ``table.csv`` (mean and sample std over seeds), ``results.csv`` (one row per run) and
``samples.png`` (a grid of scatter plots: a row per group, a column per seed). None of these hold times,
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

import ml_collections
import numpy as np

from jgan import plots
from jgan.labs import mode_collapse

RESULTS_FILE = "final_metrics.json"
SAMPLES_FILE = "final_samples.npy"
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


def train_one(config_spec: str, run: Run, workdir: str) -> dict:
  """Trains and evaluates one run (skipped if its results exist); returns its results dict.

  Raises ValueError if the run directory holds results of a different config, RuntimeError if training
  stopped early (SIGTERM/SIGINT: its checkpoint is kept and the next sweep resumes it).
  """
  from jgan import train

  config = run_config(config_spec, run)
  run_dir = os.path.join(workdir, "runs", run.name)
  digest = config_digest(config)
  done = read_results(run_dir)
  if done is not None:
    if done["config_sha256"] != digest:
      raise ValueError(f"{run_dir} holds results of another config; use a new --workdir or delete the run")
    return {**done, "skipped": True}
  t0 = time.perf_counter()
  state = train.train_and_evaluate(config, run_dir)
  if int(state.step) < config.train.steps:
    raise RuntimeError(
      f"run {run.name} stopped at step {int(state.step)} of {config.train.steps}; rerun the sweep to resume it"
    )
  metrics, x = mode_collapse.evaluate(state, config)
  np.save(os.path.join(run_dir, SAMPLES_FILE), x)
  results = {
    "name": run.name,
    "labels": [list(kv) for kv in run.labels],
    "seed": config.seed,
    "step": int(state.step),
    "data": config.data.name,
    "config_sha256": digest,
    **metrics,
  }
  _write_json(os.path.join(run_dir, RESULTS_FILE), results)
  return {**results, "skipped": False, "wall_s": time.perf_counter() - t0}


def _worker_init(cache_dir: str | None) -> None:
  import jgan  # noqa: F401  (the XLA:CPU work-around must precede JAX's backend start in each process)

  if cache_dir:
    enable_compilation_cache(cache_dir)


def run_sweep(
  config_spec: str, sweep_spec: str, workdir: str, *, processes: int = 1, cache_dir: str | None = None, log=print
) -> list[dict]:
  """Runs (or skips) every run of the sweep, then writes the aggregate files; returns the results.

  ``processes > 1`` trains runs in that many spawned processes (each run is deterministic, so the
  results are those of a sequential sweep). ``cache_dir`` turns on JAX's persistent compilation cache
  there (:func:`enable_compilation_cache`; in this process too when ``processes == 1``). The sweep's
  spec goes to ``<workdir>/sweep.json``.
  """
  runs = expand(config_spec, sweep_spec)
  os.makedirs(os.path.join(workdir, "runs"), exist_ok=True)
  _write_json(
    os.path.join(workdir, "sweep.json"), {"config": config_spec, "sweep": sweep_spec, "runs": [r.name for r in runs]}
  )
  t0, load0 = time.perf_counter(), os.getloadavg()
  results: dict[str, dict] = {}

  def report(res: dict) -> None:
    results[res["name"]] = res
    how = "skipped (done)" if res["skipped"] else f"{res['wall_s']:.1f} s"
    log(
      f"[{len(results)}/{len(runs)}] {res['name']}: {res['modes']} modes, "
      f"{100 * res['high_quality']:.1f}% high quality, reverse KL {res['reverse_kl']:.3f} ({how})"
    )

  if processes <= 1:
    if cache_dir:
      enable_compilation_cache(cache_dir)
    for run in runs:
      report(train_one(config_spec, run, workdir))
  else:
    ctx = multiprocessing.get_context("spawn")  # fork after JAX started is unsafe
    with concurrent.futures.ProcessPoolExecutor(
      processes, mp_context=ctx, initializer=_worker_init, initargs=(cache_dir,)
    ) as pool:
      futures = [pool.submit(train_one, config_spec, run, workdir) for run in runs]
      for fut in concurrent.futures.as_completed(futures):
        report(fut.result())
  ordered = [results[r.name] for r in runs]
  wall = time.perf_counter() - t0
  with open(os.path.join(workdir, "timing.jsonl"), "a") as f:  # one line per invocation of the sweep
    f.write(
      json.dumps(
        {
          "wall_s": round(wall, 1),
          "processes": processes,
          "load_average_start": load0,
          "load_average_end": os.getloadavg(),
          "trained": sum(not r["skipped"] for r in ordered),
          "runs_wall_s": {r["name"]: round(r["wall_s"], 1) for r in ordered if not r["skipped"]},
        }
      )
      + "\n"
    )
  aggregate(runs, ordered, workdir)
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


def aggregate(runs: list[Run], results: list[dict], workdir: str) -> str:
  """Writes ``table.md``, ``table.csv``, ``results.csv`` and ``samples.png`` into ``workdir``.

  ``results[i]`` is run ``runs[i]``'s results dict (``modes`` int, ``high_quality`` in [0, 1],
  ``reverse_kl`` >= 0 or NaN). Groups keep the order of their first run. Returns the Markdown table.
  """
  from jgan.data import mixtures

  groups: dict[tuple, list[int]] = {}
  for i, run in enumerate(runs):
    groups.setdefault(run.group, []).append(i)
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
  with open(os.path.join(workdir, "table.md"), "w") as f:
    f.write("\n".join(md) + "\n")
  # Run names and config arguments hold commas ("arg=ring8_gan,seed=3"): the csv module quotes them.
  for name, rows in (("table.csv", table_rows), ("results.csv", per_run)):
    with open(os.path.join(workdir, name), "w", newline="") as f:
      csv_lib.writer(f, lineterminator="\n").writerows(rows)
  plot_samples(runs, results, groups, os.path.join(workdir, "samples.png"), workdir)
  return "\n".join(md) + "\n"


def plot_samples(runs: list[Run], results: list[dict], groups: dict, path: str, workdir: str) -> str:
  """A grid of final-sample scatter plots: one row per group, one column per seed; writes PNG ``path``."""
  from jgan.data import mixtures

  rows = []
  for g, idx in groups.items():
    cells = []
    for i in idx:
      r, centres = results[i], mixtures.get(results[i]["data"]).centres
      seed = runs[i].seed_label
      title = f"{'s' + seed + ': ' if seed else ''}{r['modes']}/{len(centres)}, {100 * r['high_quality']:.0f}%"
      cells.append((title, np.load(os.path.join(workdir, "runs", runs[i].name, SAMPLES_FILE)), centres))
    rows.append(("\n".join(v for _, v in g) or "runs", cells))
  return plots.scatter_grid(rows, path)
