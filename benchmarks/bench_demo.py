"""``make demo`` side by side: the old and the new demo config, each a fresh process, wall time and score.

For each seed the script runs ``make demo``'s command, ``launch.py --config CONFIG --workdir DIR``
(plus ``--config.seed=S``), once with the old demo config (``configs/dcgan_mnist5k.py``) and once with the
new one (``configs/demo_mnist5k.py``), back to back; the order alternates from seed to seed (old first
on even seeds), so neither side always runs first into a change of load. Each run's wall time is the
process's, start-up, compilation, sample grids and checkpoints included (what a user waits for), and
its CPU seconds are the child's (``getrusage``). The ratio new / old is taken per seed, between the two
runs measured together, and summarised by its median: on a shared machine absolute seconds move with
other processes' load, ratios measured side by side much less.

After its timed run, each run's final EMA generator is scored in this process by
``jgan.evaluation.Evaluator`` (``mnist_fid5k``; ``mnist_class_match10k`` too for a conditional config),
outside the timed window. Every run is appended to ``<workdir>/results.jsonl`` as it finishes and runs
already there are skipped (a resumed pair is then not measured side by side: its row says so).

    .venv/bin/python benchmarks/bench_demo.py --seeds 0,1,2 --workdir runs/bench_demo
    .venv/bin/python benchmarks/bench_demo.py --workdir runs/bench_demo --table
    .venv/bin/python benchmarks/bench_demo.py --quick --workdir /tmp/bench_demo    # tests: 20 steps
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from seeded_runs import add_arguments, append_rows, load_rows, parse, write_json  # noqa: E402

CONFIGS = {"old": "configs/dcgan_mnist5k.py", "new": "configs/demo_mnist5k.py"}


def timed_run(config_path: str, seed: int, workdir: str, steps: int) -> dict:
  """``make demo``'s command with ``config_path`` and ``seed`` into ``workdir``: wall and CPU seconds, load."""
  cmd = [sys.executable, os.path.join(ROOT, "launch.py"), "--config", config_path, "--workdir", workdir]
  cmd += [f"--config.seed={seed}"] + ([f"--config.train.steps={steps}"] if steps else [])
  load0 = os.getloadavg()[0]
  cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
  t0 = time.perf_counter()
  subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
  wall = time.perf_counter() - t0
  cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
  cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
  return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "load_start": round(load0, 2)}


def score(workdir: str, args) -> dict:
  """The final EMA generator of the run in ``workdir`` scored by jgan's metrics (see the module docstring)."""
  from jgan import evaluation, resume

  state, config = resume.load_state(workdir)
  metrics = "mnist_fid5k" + (",mnist_class_match10k" if config.model.conditional else "")
  config.evals.num_samples = args.num_samples
  config.evals.cache_dir = os.path.join(args.workdir, "eval_cache")
  if args.classifier:
    config.evals.classifier_path = args.classifier
  ev = evaluation.Evaluator(config, workdir, metrics, progress=False)
  return {"steps": int(state.step), **ev.evaluate(evaluation.state_sampler(state, ema=True))}


def _stat(values: list[float], digits: str = ".4g") -> str:
  v = np.asarray(values, np.float64)
  sd = f" ± {v.std(ddof=1):.3g}" if v.size > 1 else ""
  return f"{v.mean():{digits}}{sd} ({', '.join(f'{x:{digits}}' for x in v)})"


def table(rows: list[dict], configs: dict[str, str]) -> str:
  """Markdown: a row per side (scores mean ± sd and per seed, wall and CPU s per seed), then the ratios."""
  fixed = {"side", "config", "seed", "steps", "wall_s", "cpu_s", "load_start", "order", "paired"}
  keys = sorted({k for r in rows for k, v in r.items() if k not in fixed and isinstance(v, int | float)})
  head = ["side", "config", "seeds", "steps", *keys, "wall s per seed", "CPU s per seed"]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  by = {side: sorted((r for r in rows if r["side"] == side), key=lambda r: r["seed"]) for side in configs}
  for side, rs in by.items():
    if not rs:
      continue
    cells = [_stat([r[k] for r in rs if k in r]) if any(k in r for r in rs) else "" for k in keys]
    seeds = ",".join(str(r["seed"]) for r in rs)
    walls, cpus = (", ".join(f"{r[k]:.0f}" for r in rs) for k in ("wall_s", "cpu_s"))
    lines.append(f"| {side} | `{configs[side]}` | {seeds} | {rs[0]['steps']:,} | " + " | ".join(cells))
    lines[-1] += f" | {walls} | {cpus} |"
  old = {r["seed"]: r for r in by.get("old", [])}
  pairs = [(r, old[r["seed"]]) for r in by.get("new", []) if r["seed"] in old]
  if pairs:
    ratios = [n["wall_s"] / o["wall_s"] for n, o in pairs]
    cpu = [n["cpu_s"] / o["cpu_s"] for n, o in pairs]
    unpaired = [n["seed"] for n, o in pairs if not (n.get("paired") and o.get("paired"))]
    lines.append(
      f"\nwall time new / old per seed (measured back to back): {', '.join(f'{x:.3f}' for x in ratios)}; "
      f"median {float(np.median(ratios)):.3f}, mean {float(np.mean(ratios)):.3f}; CPU s new / old: "
      f"{', '.join(f'{x:.3f}' for x in cpu)}, median {float(np.median(cpu)):.3f}"
      + (f" (seeds {unpaired}: a resumed pair, not measured side by side)" if unpaired else "")
    )
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--old", default=CONFIGS["old"], help="the old demo config")
  ap.add_argument("--new", default=CONFIGS["new"], help="the new demo config")
  add_arguments(ap, workdir="runs/bench_demo", steps_help="G updates of both (default: each config's; 20 --quick)")
  args, seeds = parse(ap, argv)
  configs = {"old": args.old, "new": args.new}
  path = os.path.join(args.workdir, "results.jsonl")
  if not args.table:
    import jgan  # noqa: F401  (the XLA:CPU work-around before any JAX work)

    os.makedirs(args.workdir, exist_ok=True)
    print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)
    done = {(r["side"], r["seed"]) for r in load_rows(path)}
    for seed in seeds:
      order = ["old", "new"] if seed % 2 == 0 else ["new", "old"]
      todo = [side for side in order if (side, seed) not in done]
      for side in todo:
        run_dir = os.path.join(args.workdir, side, f"seed={seed}")
        row = {"side": side, "config": configs[side], "seed": seed, "order": order.index(side)}
        row |= timed_run(configs[side], seed, run_dir, args.steps)
        row |= {"paired": len(todo) == 2, **score(run_dir, args)}
        append_rows(path, [row])
  rows = [r for r in load_rows(path) if r["seed"] in seeds]
  print(table(rows, configs))
  write_json(args.json, rows)
  return 0


if __name__ == "__main__":
  sys.exit(main())
