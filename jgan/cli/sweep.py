"""``jgan sweep``: run a reproducible sweep and write its results table.

Examples::

  jgan sweep --config configs/mode_collapse.py \\
      --sweep "arg=ring8:gan,ring8:pacgan2;seed=0:10" --workdir runs/ring8_sweep
  jgan sweep --config configs/mode_collapse.py:grid25:gan \\
      --sweep "model.pack=1,2,4;seed=0:10;train.steps=2000" --workdir runs/pack --processes 2

Grammar of ``--sweep`` (see :mod:`jgan.labs.sweep`): axes separated by ``;``, each ``KEY=V1,V2,...`` or
``KEY=A:B[:S]`` (integers ``range(A, B, S)``); ``KEY`` is a dotted config key or ``arg`` (the config
file's argument). Runs are the Cartesian product; single-valued axes are fixed overrides. Rerunning the
same command skips finished runs and rewrites the table (``--report-only`` only rewrites it).

Image configs are scored with any registered metric (``--metric``, repeatable or a comma list; default
the data set's, e.g. the ``mnist_*5k`` set for mnist5k); 2-D mixtures default to the mode metrics::

  jgan sweep --config configs/dcgan_mnist5k.py --sweep "seed=0:5;train.steps=3000" \\
      --metric mnist_fid5k,mnist_modes5k --workdir runs/dcgan_seeds

Axis keys, every run's config (``jgan.config.resolve``) and the metrics' fit to each run's data and
model are checked before anything trains: a bad sweep prints ``error: ...`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys


def _parser() -> argparse.ArgumentParser:
  from jgan.cli import args as a

  p = a.Parser(prog="jgan sweep", description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1])
  p.add_argument("--config", required=True, help="experiment file FILE[:ARG], e.g. configs/mode_collapse.py:ring8")
  p.add_argument("--sweep", required=True, help="axes, e.g. 'arg=ring8:gan,ring8:pacgan2;seed=0:10'")
  p.add_argument(
    "--workdir", required=True, type=a.new_dir, help="sweep directory: runs/<name>/, table.md, table.csv, samples.png"
  )
  p.add_argument(
    "--metric",
    action="append",
    default=[],
    metavar="NAME[,NAME...]",
    help="jgan.metrics.METRICS name(s) every run is scored with (repeatable or a comma list; default: the mode "
    "metrics for 2-D mixtures, else the config's evals.metrics or the data set's default, as `jgan eval`)",
  )
  p.add_argument(
    "--processes", type=a.int_in(1, 1024), default=1, help="runs trained in parallel processes (default 1)"
  )
  p.add_argument(
    "--cache_dir", default="", help="XLA persistent compilation cache (default <workdir>/xla_cache; 'none' disables)"
  )
  p.add_argument(
    "--no_ensembles",
    action="store_true",
    help="train every run as its own process-level run (default: runs that differ only in seed and "
    "vmappable hyperparameters train as one ensemble program, jgan.ensemble)",
  )
  p.add_argument("--dry_run", action="store_true", help="list the runs and exit")
  p.add_argument("--report_only", action="store_true", help="aggregate finished runs only (all must be done)")
  return p


def main(argv) -> int:
  """Entry point of ``jgan sweep``; 0 when done, 2 after one ``error:`` line (a bad sweep or a failed run)."""
  from jgan.cli import args as args_lib

  args = args_lib.parse(_parser(), argv)
  if isinstance(args, int):
    return args
  from jgan.labs import sweep, sweep_report, sweep_scoring, sweep_spec

  metrics = ",".join(args.metric) or None
  if not args.no_ensembles and args.processes <= 1 and not (args.dry_run or args.report_only):
    from jgan import ensemble

    ensemble.use_cpu_cores()  # before any JAX work: an ensemble's members split over the cores
  try:
    runs = sweep_spec.expand(args.config, args.sweep)
    sweep_scoring.check(args.config, runs, metrics)  # every run's config and metrics, before anything trains
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if args.dry_run:
    for run in runs:
      done = sweep_scoring.read_results(os.path.join(args.workdir, "runs", run.name)) is not None
      print(f"{run.name}{'  (done)' if done else ''}")
    if not args.no_ensembles:
      groups = sweep.group_runs(runs)
      print(f"{len(runs)} runs in {len(groups)} ensembles of {', '.join(str(len(g)) for g in groups)} members")
    else:
      print(f"{len(runs)} runs")
    return 0
  if args.report_only:
    results = [sweep_scoring.read_results(os.path.join(args.workdir, "runs", r.name)) for r in runs]
    missing = [r.name for r, res in zip(runs, results) if res is None]
    if missing:
      print(f"error: {len(missing)} runs are not finished, e.g. {missing[0]}", file=sys.stderr)
      return 2
    print(sweep_report.aggregate(runs, [r for r in results if r is not None], args.workdir), end="")
    return 0
  cache = None if args.cache_dir == "none" else (args.cache_dir or os.path.join(args.workdir, "xla_cache"))
  from absl import logging

  logging.set_verbosity(logging.WARNING)  # absl INFO lines (backend probing) would drown the run lines
  try:
    sweep.run_sweep(
      args.config,
      args.sweep,
      args.workdir,
      metrics=metrics,
      processes=args.processes,
      cache_dir=cache,
      ensembles=not args.no_ensembles,
    )
  except (ValueError, RuntimeError, FileNotFoundError, FloatingPointError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  with open(os.path.join(args.workdir, "table.md")) as f:
    print(f.read(), end="")
  return 0
