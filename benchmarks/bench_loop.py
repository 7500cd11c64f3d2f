"""The trainer end to end: the fused multi-step loop against one Python call per step.

Every row is a real run of ``launch.py --config CONFIG --workdir TMP`` in a fresh process, with
``train.steps_per_call=K`` (K steps in one jitted ``lax.scan``) or ``K=1`` (one Python call per step:
host batch, ``device_put``, dispatch and metric bookkeeping every step). Sample plots during training
and periodic checkpoints are off (``sample_every=0``, ``checkpoint.every_steps=0``); the final scatter
plot, loss plot and checkpoint are written as in any run.

For each run the table gives the training throughput (steps/s over the logging windows after the first,
which holds the compilation), the whole process's wall time (Python start, imports, compilation,
training, final outputs) and the training loop's time (``steps / throughput``). The two sides of a
config are measured one after the other, ``--reps`` times, alternating; medians are reported.

  .venv/bin/python benchmarks/bench_loop.py [--configs configs/ring8.py,configs/mode_collapse.py:ring8]
      [--steps 25000] [--unfused-steps 5000] [--k 500] [--reps 3] [--ynn-dot]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

YNN_DOT = "--xla_cpu_experimental_ynn_fusion_type=individual_dot"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(config: str, steps: int, k: int, xla_flags: str = "") -> dict:
  """One launch.py run in a fresh process; returns its wall time and steady training steps/s.

  ``xla_flags`` is appended to ``XLA_FLAGS`` for that process (jgan keeps a YNN flag the user set).
  """
  with tempfile.TemporaryDirectory() as wd:
    log_every = max(k, 500)
    cmd = [
      sys.executable,
      os.path.join(ROOT, "launch.py"),
      "--config",
      config,
      "--workdir",
      wd,
      f"--config.train.steps={steps}",
      f"--config.train.steps_per_call={k}",
      f"--config.train.log_every={log_every}",
      "--config.train.sample_every=0",
      "--config.checkpoint.every_steps=0",
      "--config.train.progress=False",
    ]
    t0 = time.perf_counter()
    env = dict(os.environ, XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + " " + xla_flags).strip())
    subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT, env=env)
    wall = time.perf_counter() - t0
    with open(os.path.join(wd, "metrics.jsonl")) as f:
      rows = [json.loads(line) for line in f]
  steady = rows[1:]  # the first window includes compilation
  secs = sum(log_every / r["steps_per_sec"] for r in steady)
  rate = len(steady) * log_every / secs
  return {
    "wall_s": wall,
    "steps_per_s": rate,
    "loop_s": steps / rate,
    "first_window_s": log_every / rows[0]["steps_per_sec"],
  }


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--configs", default="configs/ring8.py,configs/mode_collapse.py:ring8")
  p.add_argument("--steps", type=int, default=25_000, help="G steps of a fused run")
  p.add_argument("--unfused-steps", type=int, default=5_000, help="G steps of a one-call-per-step run")
  p.add_argument("--k", type=int, default=500, help="steps per fused call")
  p.add_argument("--reps", type=int, default=3)
  p.add_argument(
    "--ynn-dot",
    action="store_true",
    help=f"add a fused side with XLA_FLAGS={YNN_DOT} (YNNPACK matmuls; opt-in, see docs/performance.md)",
  )
  args = p.parse_args()
  la = os.getloadavg()
  print(
    f"# {os.cpu_count()} cores; load average at start {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}; "
    f"{args.reps} alternating runs per side, medians"
  )
  print(
    "\n| config | loop | steps | training steps/s | training loop s | process wall s | first window s (incl. compile) |"
  )
  print("|---|---|---|---|---|---|---|")
  for config in args.configs.split(","):
    sides = {f"fused ({args.k}/call)": (args.steps, args.k, ""), "one call per step": (args.unfused_steps, 1, "")}
    if args.ynn_dot:
      sides[f"fused ({args.k}/call), YNN dots"] = (args.steps, args.k, YNN_DOT)
    res = {name: [] for name in sides}
    for _ in range(args.reps):
      for name, (steps, k, flags) in sides.items():
        res[name].append(run(config, steps, k, flags))
    med = {name: {key: float(np.median([r[key] for r in rs])) for key in rs[0]} for name, rs in res.items()}
    for name, (steps, _, _) in sides.items():
      m = med[name]
      print(
        f"| `{config}` | {name} | {steps} | {m['steps_per_s']:.0f} | {m['loop_s']:.1f} | {m['wall_s']:.1f} | "
        f"{m['first_window_s']:.1f} |",
        flush=True,
      )
    names = list(sides)
    print(
      f"| `{config}` | **fused / per-step** | | **{med[names[0]]['steps_per_s'] / med[names[1]]['steps_per_s']:.2f}x** "
      f"| | | |",
      flush=True,
    )
  la = os.getloadavg()
  print(f"\n# load average at end {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}")


if __name__ == "__main__":
  main()
