"""Seed-parallel ensembles vs separate runs: aggregate training steps/s for K runs of one config.

For each workload (``ring8``: the mode-collapse protocol's ring, MLP 2 x 128, 500 steps per call;
``dcgan``: the demo DCGAN on mnist5k) and each K, three ways of training the K seeds ``0..K-1`` for
``S`` steps are timed side by side in this one invocation, each end to end as a user runs it (process
start, JAX import, compilation, training, final samples and checkpoint):

* ``ensemble``: one ``jgan train --config.train.num_seeds=K`` process (jgan.ensemble: on CPU the
  members are split over the cores, ``lax.map`` on each);
* ``processes``: K ``jgan train`` processes, ``--procs`` at a time (default: the CPU count, as
  ``jgan sweep --processes``);
* ``sequential``: one process calling ``jgan.train.train_and_evaluate`` K times in a row.

Aggregate steps/s = K x S / wall seconds; the table gives the ratios ensemble/processes and
ensemble/sequential. The three sides of one K run back to back, so slow drifts in machine load hit
them alike; the table records the load average.

    .venv/bin/python benchmarks/bench_ensemble.py                       # the full table (~20 min, 2 cores)
    .venv/bin/python benchmarks/bench_ensemble.py --quick               # reduced mode (tests run it)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# workload -> (config spec, overrides shared by every side, default steps S, default Ks)
WORKLOADS = {
  "ring8": (
    "configs/mode_collapse.py:ring8",
    {"train.steps_per_call": 500, "train.log_every": 500},
    3000,
    (1, 4, 16, 64),
  ),
  "dcgan": ("configs/dcgan_mnist5k.py", {"train.log_every": 25, "train.sample_every": 0}, 50, (1, 4, 8)),
}
QUICK = {"ring8": (500, (2,)), "dcgan": (4, (2,))}
COMMON = {"train.progress": False, "checkpoint.every_steps": 0, "parallel.num_devices": 1}


def overrides(workload: str, steps: int, quick: bool) -> dict:
  spec, extra, _, _ = WORKLOADS[workload]
  out = {**COMMON, **extra, "train.steps": steps}
  if workload == "ring8" and steps % 500:
    out["train.steps_per_call"] = out["train.log_every"] = steps
  if workload == "dcgan":
    out["evals.every_steps"] = 0
    if quick:
      out.update({"model.g_width": 8, "model.d_width": 8, "train.batch_size": 16, "train.log_every": steps})
  return out


def flags(ov: dict) -> list[str]:
  return [f"--config.{k}={v}" for k, v in ov.items()]


def launch(args: list[str]) -> subprocess.Popen:
  env = {**os.environ, "PYTHONPATH": ROOT}
  return subprocess.Popen(
    [sys.executable, os.path.join(ROOT, "launch.py"), *args],
    cwd=ROOT,
    env=env,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.PIPE,
    text=True,
  )


def wait_ok(p: subprocess.Popen) -> None:
  _, err = p.communicate()
  if p.returncode:
    raise SystemExit(f"a benchmark run failed ({p.returncode}): {err[-2000:]}")


def time_ensemble(spec: str, ov: dict, k: int, work: str) -> float:
  t = time.perf_counter()
  ens = {**ov, "train.num_seeds": k}
  ens.pop("parallel.num_devices")  # the ensemble splits its members over every core
  wait_ok(launch(["train", "--config", spec, "--workdir", os.path.join(work, "ens"), *flags(ens)]))
  return time.perf_counter() - t


def time_processes(spec: str, ov: dict, k: int, work: str, procs: int) -> float:
  t = time.perf_counter()
  pending = list(range(k))
  running: list[subprocess.Popen] = []
  while pending or running:
    while pending and len(running) < procs:
      s = pending.pop(0)
      args = ["train", "--config", spec, "--workdir", os.path.join(work, f"proc{s}"), *flags({**ov, "seed": s})]
      running.append(launch(args))
    p = running.pop(0)
    wait_ok(p)
  return time.perf_counter() - t


SEQUENTIAL = """
import sys, json
import jgan
from jgan import train
from jgan.labs.sweep_spec import load_config
spec, work, k, ov = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
for s in range(k):
  c = load_config(spec)
  c.update_from_flattened_dict({**ov, "seed": s})
  train.train_and_evaluate(c, f"{work}/seq{s}")
"""


def time_sequential(spec: str, ov: dict, k: int, work: str) -> float:
  t = time.perf_counter()
  p = subprocess.Popen(
    [sys.executable, "-c", SEQUENTIAL, spec, work, str(k), json.dumps(ov)],
    cwd=ROOT,
    env={**os.environ, "PYTHONPATH": ROOT},
    stdout=subprocess.DEVNULL,
    stderr=subprocess.PIPE,
    text=True,
  )
  wait_ok(p)
  return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--workloads", default="ring8,dcgan", help=f"comma list of {', '.join(WORKLOADS)}")
  ap.add_argument("--ks", default="", help="comma list of K (default: per workload, see WORKLOADS)")
  ap.add_argument("--steps", type=int, default=0, help="steps S per run (default: per workload)")
  ap.add_argument("--procs", type=int, default=os.cpu_count() or 1, help="separate processes at a time")
  ap.add_argument("--quick", action="store_true", help="tiny runs, K = 2 (the CI mode)")
  ap.add_argument("--json", default="", help="also write the rows to this file")
  args = ap.parse_args(argv)
  names = [w for w in args.workloads.split(",") if w]
  unknown = sorted(set(names) - set(WORKLOADS))
  if unknown:
    ap.error(f"unknown workloads {unknown}; valid choices: {', '.join(WORKLOADS)}")
  rows = []
  print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
  for w in names:
    spec, _, steps, ks = WORKLOADS[w]
    if args.quick:
      steps, ks = QUICK[w]
    steps = args.steps or steps
    ks = tuple(int(k) for k in args.ks.split(",")) if args.ks else ks
    ov = overrides(w, steps, args.quick)
    for k in ks:
      work = tempfile.mkdtemp(prefix=f"bench_ensemble_{w}_{k}_")
      try:
        load = os.getloadavg()[0]
        t_ens = time_ensemble(spec, ov, k, work)
        t_proc = time_processes(spec, ov, k, work, args.procs)
        t_seq = time_sequential(spec, ov, k, work)
      finally:
        shutil.rmtree(work, ignore_errors=True)
      row = {
        "workload": w,
        "K": k,
        "steps": steps,
        "ensemble_s": round(t_ens, 2),
        "processes_s": round(t_proc, 2),
        "sequential_s": round(t_seq, 2),
        "ensemble_steps_per_s": round(k * steps / t_ens, 1),
        "processes_steps_per_s": round(k * steps / t_proc, 1),
        "sequential_steps_per_s": round(k * steps / t_seq, 1),
        "ensemble_vs_processes": round(t_proc / t_ens, 2),
        "ensemble_vs_sequential": round(t_seq / t_ens, 2),
        "load_start": round(load, 2),
      }
      rows.append(row)
      print(json.dumps(row), flush=True)
  print()
  print(
    "| workload | K | steps | ensemble steps/s | processes steps/s | sequential steps/s "
    "| ensemble / processes | ensemble / sequential |"
  )
  print("|---|---|---|---|---|---|---|---|")
  for r in rows:
    print(
      f"| {r['workload']} | {r['K']} | {r['steps']} | {r['ensemble_steps_per_s']} | {r['processes_steps_per_s']} | "
      f"{r['sequential_steps_per_s']} | {r['ensemble_vs_processes']}x | {r['ensemble_vs_sequential']}x |"
    )
  if args.json:
    with open(args.json, "w") as f:
      json.dump(rows, f, indent=2)
  return 0


if __name__ == "__main__":
  sys.exit(main())
