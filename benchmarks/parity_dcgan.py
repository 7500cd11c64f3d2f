"""Outcome parity: jgan's demo DCGAN recipe against the same recipe in PyTorch, trained and scored alike.

For each seed the script trains two runs on the same 4,500 digits (mnist5k's train split) for the same
budget and scores both with jgan's own metric, so whether jgan's training matches a reference
implementation is re-checked whenever the step changes:

* ``jgan``: ``launch.py train --config configs/dcgan_mnist5k.py`` (the old ``make demo`` recipe: DCGAN
  28 px, latent 64, widths 32, non-saturating loss, Adam(2e-4, 0.5, 0.999), batch 64, 3,000 steps, EMA of
  G 0.999) with ``--config.seed=S``, a fresh process per run;
* ``torch``: ``benchmarks/torch_dcgan_train.py`` in an interpreter with PyTorch: the same architecture
  (``torch_dcgan.py``, parameter counts asserted equal) and the PyTorch DCGAN example's step, given the
  recipe's numbers read from the same config, on the digits jgan's loader decodes (exported to
  ``<workdir>/digits.npz``); it writes 5,000 samples of its live and its EMA generator.

Each side's live G and EMA G (BatchNorm in eval mode on both sides) are scored by
``jgan.evaluation.Evaluator`` (``--metrics``, default ``mnist_fid5k,mnist_prdc5k``: the held-out digit
classifier's features, docs/evaluation.md) in this process. The sides alternate (jgan seed 0, torch seed
0, jgan seed 1, ...), one run at a time. Every scored run is appended to ``<workdir>/results.jsonl`` at
once and runs already there are skipped, so an interrupted benchmark resumes where it stopped:

    .venv/bin/python benchmarks/parity_dcgan.py --seeds 0,1,2 --workdir runs/parity
    .venv/bin/python benchmarks/parity_dcgan.py --workdir runs/parity --table      # the table only
    .venv/bin/python benchmarks/parity_dcgan.py --quick --workdir /tmp/parity      # tests: 20 steps

The table gives mean ± sample sd over seeds and the per-seed values; the parity line asks whether jgan's
mean lies within one seed sd of PyTorch's mean, for each generator. ``--torch-python``: the interpreter
of the torch side (default: this one if it has torch, else ``.venv-ref/bin/python``, which ``make test``
builds, else the torch side is skipped and the output says so).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from seeded_runs import add_arguments, append_rows, find_torch_python, load_rows, parse, write_json  # noqa: E402

CONFIG = os.path.join(ROOT, "configs", "dcgan_mnist5k.py")
TORCH_TRAINER = os.path.join(HERE, "torch_dcgan_train.py")


def recipe(steps: int):
  """The resolved jgan config of the demo recipe (configs/dcgan_mnist5k.py), ``steps`` G updates if > 0."""
  from jgan import config as config_lib

  c = config_lib.load_file(CONFIG)
  if steps:
    c.train.steps = steps
  return config_lib.resolve(c)


def export_digits(config, path: str) -> int:
  """Writes the train split as jgan's loader decodes it (``x`` float32 [N, 28, 28, 1] in [-1, 1]); returns N."""
  from jgan import data as data_lib

  if not os.path.exists(path):
    x, y = data_lib.split_arrays(config.data, "train")
    np.savez(path + ".tmp.npz", x=x, y=y)
    os.replace(path + ".tmp.npz", path)
  with np.load(path) as f:
    return len(f["x"])


def train_jgan(config, seed: int, workdir: str) -> float:
  """``launch.py train`` of the demo config with ``seed`` in ``workdir`` (a fresh process); its wall seconds."""
  cmd = [sys.executable, os.path.join(ROOT, "launch.py"), "train", "--config", CONFIG, "--workdir", workdir]
  cmd += [f"--config.seed={seed}", f"--config.train.steps={config.train.steps}", "--config.train.progress=False"]
  t0 = time.perf_counter()
  subprocess.run(cmd, check=True, cwd=ROOT)
  return time.perf_counter() - t0


def train_torch(config, seed: int, python: str, digits: str, out: str, num_samples: int) -> float:
  """The torch side of ``seed`` with ``config``'s recipe numbers, writing ``out``; its wall seconds."""
  g, d = config.optim.g, config.optim.d
  if (g.name, g.lr, g.b1, g.b2) != (d.name, d.lr, d.b1, d.b2) or g.name != "adam" or config.train.n_critic != 1:
    raise ValueError("the torch trainer implements one Adam for both players and one D update per G update")
  cmd = [python, TORCH_TRAINER, "--data", digits, "--out", out, "--seed", str(seed)]
  cmd += ["--steps", str(config.train.steps), "--batch-size", str(config.train.batch_size)]
  cmd += ["--latent-dim", str(config.model.latent_dim), "--width", str(config.model.g_width)]
  cmd += ["--lr", str(g.lr), "--b1", str(g.b1), "--b2", str(g.b2), "--ema-decay", str(config.optim.ema_decay)]
  cmd += ["--num-samples", str(num_samples)]
  t0 = time.perf_counter()
  subprocess.run(cmd, check=True, cwd=ROOT)
  return time.perf_counter() - t0


def run_side(side: str, seed: int, config, args, torch_python: str) -> list[dict]:
  """Trains and scores one side of one seed; returns its rows (one per generator: live, ema)."""
  import jax

  from jgan import evaluation, resume

  c = config.copy_and_resolve_references()
  c.seed = seed
  c.evals.cache_dir = os.path.join(args.workdir, "eval_cache")
  c.evals.num_samples = args.num_samples
  if args.classifier:
    c.evals.classifier_path = args.classifier
  run_dir = os.path.join(args.workdir, side, f"seed={seed}")
  load0 = os.getloadavg()[0]
  count = lambda tree: int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))
  ev = evaluation.Evaluator(c, run_dir, args.metrics, progress=False)
  n = max(ev.num_samples(m) for m in ev.metrics)
  if side == "jgan":
    train_s = train_jgan(c, seed, run_dir)
    state, _ = resume.load_state(run_dir)
    sources = {g: evaluation.state_sampler(state, ema=g == "ema") for g in ("live", "ema")}
    params = (count(state.g.params), count(state.d.params))
  else:
    out = run_dir + ".npz"
    train_s = train_torch(c, seed, torch_python, os.path.join(args.workdir, "digits.npz"), out, n)
    with np.load(out) as f:
      sources = {g: f[g] for g in ("live", "ema")}
      params = (int(f["g_params"]), int(f["d_params"]))
  facts = {"side": side, "seed": seed, "steps": c.train.steps, "train_s": round(train_s, 1)}
  facts |= {"g_params": params[0], "d_params": params[1], "load_start": round(load0, 2)}
  return [{**facts, "generator": g, **ev.evaluate(src)} for g, src in sources.items()]


def _stat(values: list[float]) -> str:
  v = np.asarray(values, np.float64)
  sd = f" ± {v.std(ddof=1):.3g}" if v.size > 1 else ""
  return f"{v.mean():.4g}{sd} ({', '.join(f'{x:.4g}' for x in v)})"


def table(rows: list[dict]) -> str:
  """Markdown: a row per (side, generator) with each metric's mean ± sd (per seed), then the parity lines."""
  skip = {"side", "seed", "steps", "train_s", "g_params", "d_params", "load_start", "generator"}
  keys = sorted({k for r in rows for k, v in r.items() if k not in skip and isinstance(v, int | float)})
  keys.sort(key=lambda k: (not k.startswith("mnist_fid"), k))
  head = ["side", "G", "seeds", "steps"] + keys + ["train s per seed"]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  groups: dict[tuple[str, str], list[dict]] = {}
  for r in sorted(rows, key=lambda r: r["seed"]):
    groups.setdefault((r["side"], r["generator"]), []).append(r)
  for (side, g), rs in sorted(groups.items()):
    cells = [_stat([r[k] for r in rs]) for k in keys]
    train = ", ".join(f"{r['train_s']:.0f}" for r in rs)
    seeds = ",".join(str(r["seed"]) for r in rs)
    lines.append(f"| {side} | {g} | {seeds} | {rs[0]['steps']:,} | " + " | ".join(cells) + f" | {train} |")
  fid = next((k for k in keys if k.startswith("mnist_fid")), None)
  for g in ("live", "ema"):
    j, t = groups.get(("jgan", g)), groups.get(("torch", g))
    if not (fid and j and t and len(t) > 1):
      continue
    jm, tv = float(np.mean([r[fid] for r in j])), np.asarray([r[fid] for r in t], np.float64)
    tm, sd = float(tv.mean()), float(tv.std(ddof=1))
    verdict = "within" if abs(jm - tm) <= sd else "NOT within"
    lines.append(
      f"\n{g} G: jgan mean {fid} {jm:.4g}, PyTorch {tm:.4g} ± {sd:.3g} (sd over {len(t)} seeds): "
      f"difference {jm - tm:+.3g}, {verdict} one seed sd"
    )
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  add_arguments(ap, workdir="runs/parity", steps_help="G updates (default: the config's 3,000; 20 with --quick)")
  ap.add_argument("--metrics", default="mnist_fid5k,mnist_prdc5k")
  ap.add_argument("--sides", default="jgan,torch")
  ap.add_argument("--torch-python", default="", help="interpreter with torch for the torch side")
  args, seeds = parse(ap, argv)
  sides = args.sides.split(",")
  bad = sorted(set(sides) - {"jgan", "torch"})
  if bad:
    ap.error(f"unknown sides {bad}; valid choices: jgan, torch")
  path = os.path.join(args.workdir, "results.jsonl")
  if not args.table:
    torch_python = find_torch_python(args.torch_python) if "torch" in sides else ""
    if "torch" in sides and not torch_python:
      print("# no interpreter with torch (--torch-python, or .venv-ref): the torch side is skipped", flush=True)
      sides.remove("torch")
    import jgan  # noqa: F401  (the XLA:CPU work-around before any JAX work)

    config = recipe(args.steps)
    os.makedirs(args.workdir, exist_ok=True)
    n = export_digits(config, os.path.join(args.workdir, "digits.npz"))
    print(f"# {n} training digits; torch side: {torch_python or 'none'}; load {os.getloadavg()[0]:.2f}", flush=True)
    done = {(r["side"], r["seed"]) for r in load_rows(path)}
    for seed in seeds:
      for side in sides:
        if (side, seed) in done:
          continue
        rows = run_side(side, seed, config, args, torch_python)
        append_rows(path, rows)
  rows = [r for r in load_rows(path) if r["seed"] in seeds]
  counts = {(r["g_params"], r["d_params"]) for r in rows}
  if len(counts) > 1:
    raise AssertionError(f"parameter counts (G, D) differ between the sides: {sorted(counts)}")
  print(table(rows))
  write_json(args.json, rows)
  return 0


if __name__ == "__main__":
  sys.exit(main())
