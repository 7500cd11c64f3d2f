"""What the benchmarks that train and score runs seed by seed share: their command line, their results file.

``benchmarks/bench_demo.py`` (the old and new ``make demo`` side by side) and ``benchmarks/parity_dcgan.py``
(jgan against the PyTorch trainer) both append one JSON row per finished run to ``<workdir>/results.jsonl``
and skip the runs already there, so an interrupted benchmark resumes where it stopped; both take the same
``--seeds / --workdir / --steps / --num-samples / --classifier / --quick / --table / --json`` flags.
``find_torch_python`` is also used by ``benchmarks/bench_layers.py``. Imports neither jgan nor JAX.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# --quick (the tests): 20 G updates, seed 0, 500 samples per metric.
QUICK = {"steps": 20, "seeds": "0", "num_samples": 500}


def find_torch_python(arg: str) -> str:
  """The interpreter of a torch side: ``arg`` if given, else this one if it has torch, else the repository's
  ``.venv-ref/bin/python`` (``make .venv-ref``); ``''`` when there is none (the caller skips its torch side)."""
  if arg:
    return arg
  if importlib.util.find_spec("torch") is not None:
    return sys.executable
  ref = os.path.join(ROOT, ".venv-ref", "bin", "python")
  return ref if os.path.exists(ref) else ""


def add_arguments(ap: argparse.ArgumentParser, *, workdir: str, steps_help: str) -> None:
  """Adds the shared flags to ``ap`` (``workdir``: the default of ``--workdir``)."""
  ap.add_argument("--seeds", default="", help="comma list (default 0,1,2; 0 with --quick)")
  ap.add_argument("--workdir", default=workdir)
  ap.add_argument("--steps", type=int, default=0, help=steps_help)
  ap.add_argument("--num-samples", type=int, default=0, help="samples per metric (0: the protocol's; 500 --quick)")
  ap.add_argument("--classifier", default="", help="the digit classifier (default: evals.classifier_path's)")
  ap.add_argument("--quick", action="store_true", help="tests: 20 steps, seed 0, 500 samples")
  ap.add_argument("--table", action="store_true", help="print the table of the stored results, run nothing")
  ap.add_argument("--json", default="", help="also write the rows to this JSON file")


def parse(ap: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, list[int]]:
  """``(args, seeds)``: ``ap``'s arguments with ``--quick``'s defaults filled in, and the seeds as ints.

  A bad seed list exits with ``ap``'s one-line usage error naming it."""
  args = ap.parse_args(argv)
  if args.quick:
    args.steps = args.steps or QUICK["steps"]
    args.seeds = args.seeds or QUICK["seeds"]
    args.num_samples = args.num_samples or QUICK["num_samples"]
  try:
    seeds = [int(s) for s in (args.seeds or "0,1,2").split(",")]
  except ValueError:
    ap.error(f"--seeds={args.seeds!r}: expected a comma list of integers, e.g. 0,1,2")
  return args, seeds


def load_rows(path: str) -> list[dict]:
  """The rows of a ``results.jsonl`` (none if it does not exist)."""
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def append_rows(path: str, rows: list[dict]) -> None:
  """Appends ``rows`` to ``path`` (one JSON object a line) and prints them: a finished run is never lost."""
  with open(path, "a") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
  print(*(json.dumps(r) for r in rows), sep="\n", flush=True)


def write_json(path: str, rows: list[dict]) -> None:
  """``--json``: the rows as one indented JSON list (nothing when ``path`` is empty)."""
  if path:
    with open(path, "w") as f:
      json.dump(rows, f, indent=1)
