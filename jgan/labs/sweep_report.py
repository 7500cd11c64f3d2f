"""A sweep's aggregate files: ``table.md``, ``table.csv``, ``results.csv`` and ``samples.png``.

:func:`aggregate` groups runs by every multi-valued axis except ``seed``; mixture runs scored by the mode
metrics get the mode-collapse table, any other metrics mean ± sample sd and per-seed values per key
(see :mod:`jgan.labs.sweep`). Nothing here depends on time, so equal results give byte-identical files.
"""

from __future__ import annotations

import csv as csv_lib
import os

import numpy as np

from jgan import plots
from jgan.data import mixtures
from jgan.labs.sweep_scoring import IMAGE_SAMPLES, MODE_KEYS, RECORD_KEYS, SAMPLES_FILE
from jgan.labs.sweep_spec import Run


def _mean_std(v: np.ndarray) -> tuple[float, float]:
  """Mean and sample std (ddof=1; 0 for one run) over the finite values of ``v`` (NaN if none)."""
  v = v[np.isfinite(v)]
  if not v.size:
    return float("nan"), float("nan")
  return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def metric_keys(results: list[dict]) -> list[str]:
  """The metric keys of results records (every key but the record's own fields), sorted: a record read
  back from ``final_metrics.json`` and a fresh one give the same columns."""
  return sorted({k for r in results for k in r if k not in RECORD_KEYS})


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
