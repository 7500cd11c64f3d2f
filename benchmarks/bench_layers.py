"""Layer A/B: jgan's two layer sets (``model.layers = fast | native``) and PyTorch, per model, one run.

For each model (``dcgan``: jgan's DCGAN at 32/64 px, width 64; ``sngan``: the SNGAN ResNet of Miyato et
al. 2018 at 32 px with the published widths) the script times one train step (one D update and one G
update, batch ``--batch``) of three sides measured side by side in this one invocation:

* ``fast``: jgan's step with ``model.layers=fast`` (jgan.models.layers' rewrites: stride-1 2x2
  convolutions through ``conv_valid``, matmul BatchNorm);
* ``native``: the same step with ``model.layers=native`` (Flax's ``nnx.ConvTranspose`` / ``nnx.Conv`` /
  ``nnx.BatchNorm``): the same parameters and function (tests/test_models_layers.py);
* ``torch``: the same architecture in PyTorch (``benchmarks/torch_dcgan.py``, ``benchmarks/torch_sngan.py``,
  parameter counts asserted equal), the PyTorch examples' step.

Each side lives in its own worker process (built and compiled once), and the parent interleaves timed
blocks across the workers (fast, native, torch, fast, ...), so load from other processes hits every side
alike and only one side runs at a time. The table gives median images/s, the ratios fast/native and
fast/torch, median process CPU seconds per step, compile time and parameter counts. ``auto`` picks
``fast`` on CPU and ``native`` elsewhere (jgan.models.layers.resolve_layers): this script's device
numbers are what should change that choice.

    .venv/bin/python benchmarks/bench_layers.py                      # the device run (<= 8 min on a GPU)
    .venv/bin/python benchmarks/bench_layers.py --quick              # reduced CPU mode (tests run it)

PyTorch: the worker runs with ``--torch-python`` (default: this interpreter if it has torch, else the
reference environment ``.venv-ref/bin/python`` that ``make test`` builds, else the torch side is skipped
and the table says so). It imports torch and numpy only, never jgan or JAX.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from seeded_runs import find_torch_python  # noqa: E402

# model -> {size -> jgan config overrides}; the torch side builds the same architecture from the spec.
FULL = {
  "dcgan": [{"size": 32, "width": 64, "latent": 100}, {"size": 64, "width": 64, "latent": 100}],
  "sngan": [{"size": 32, "g_width": 256, "d_width": 128, "latent": 128}],
}
QUICK = {
  "dcgan": [{"size": 32, "width": 8, "latent": 16}],
  "sngan": [{"size": 32, "g_width": 16, "d_width": 16, "latent": 16}],
}


# --------------------------------------------------------------------------------------------- workers


def jgan_config(model: str, spec: dict, batch: int, layers: str):
  """The jgan config of one benchmark row: ``model`` at ``spec`` with ``model.layers = layers``."""
  from jgan import config as config_lib

  c = config_lib.defaults()
  c.data.name = "cifar10"  # only the shape matters: 3 channels; the batch is random
  c.data.image_size = spec["size"]
  c.train.batch_size = batch
  if model == "dcgan":
    c.model.latent_dim, c.model.g_width, c.model.d_width = spec["latent"], spec["width"], spec["width"]
  else:
    from jgan import recipes

    c = config_lib.set_model(c, "resnet", latent_dim=spec["latent"], g_width=spec["g_width"], d_width=spec["d_width"])
    c = recipes.set_objective(c, "hinge")
    c.train.n_critic = 1  # one D and one G update per timed step on every side
  c.model.layers = layers
  return config_lib.resolve(c)


class JganWorker:
  """jgan's jitted train step for one (model, spec, batch, layers); ``run(k)`` runs k steps."""

  def __init__(self, model: str, spec: dict, batch: int, layers: str):
    import jax
    import numpy as np

    import jgan  # noqa: F401  (XLA:CPU work-around before JAX starts)
    from jgan import components
    from jgan import state as state_lib
    from jgan import step as step_lib

    self.jax = jax
    c = jgan_config(model, spec, batch, layers)
    size = spec["size"]
    parts = components.build(c, (size, size, 3))
    self.state = state_lib.create_state(parts, jax.random.key(0))
    count = lambda t: int(sum(np.prod(x.shape) for x in jax.tree.leaves(t)))
    self.info = {"g_params": count(self.state.g.params), "d_params": count(self.state.d.params)}
    rng = np.random.default_rng(0)
    shape = (c.train.n_critic, batch, size, size, 3)
    self.batch = {"x": jax.device_put(rng.uniform(-1, 1, shape).astype(np.float32))}
    t0 = time.perf_counter()
    self.step = step_lib.make_train_step(parts).lower(self.state, self.batch).compile()
    self.info["compile_s"] = time.perf_counter() - t0
    self.info["platform"] = jax.devices()[0].platform

  def run(self, k: int) -> None:
    for _ in range(k):
      self.state, metrics = self.step(self.state, self.batch)
    self.jax.block_until_ready(metrics)


class TorchWorker:
  """The PyTorch reference step for one (model, spec, batch); ``run(k)`` runs k steps."""

  def __init__(self, model: str, spec: dict, batch: int, device: str):
    import torch

    sys.path.insert(0, HERE)
    torch.manual_seed(0)
    if device == "cpu":
      torch.set_num_threads(os.cpu_count() or 1)
    if model == "dcgan":
      import torch_dcgan

      self.step = torch_dcgan.TrainStep(
        spec["size"], batch, device=device, latent_dim=spec["latent"], width=spec["width"]
      )
      g, d = self.step.netG, self.step.netD
      count = torch_dcgan.param_count
    else:
      import torch_sngan

      self.step = torch_sngan.TrainStep(
        spec["size"], batch, device=device, latent_dim=spec["latent"], g_width=spec["g_width"], d_width=spec["d_width"]
      )
      g, d = self.step.netG, self.step.netD
      count = torch_sngan.param_count
    self.real = torch.rand(batch, 3, spec["size"], spec["size"], device=device) * 2 - 1
    t0 = time.perf_counter()
    self.run(1)  # warm-up: cuDNN autotuning, allocator
    self.info = {
      "g_params": count(g),
      "d_params": count(d),
      "compile_s": time.perf_counter() - t0,
      "platform": device,
      "torch": torch.__version__,
    }

  def run(self, k: int) -> None:
    for _ in range(k):
      self.step(self.real)
    self.step.sync()


def worker_main(arg: str) -> None:
  """A worker process: builds its side, prints ``{"info": ...}``, then answers each ``k`` line on stdin
  with ``{"wall": s, "cpu": s}`` for k steps; exits on ``quit`` or end of input."""
  job = json.loads(arg)
  if job["side"] == "torch":
    w: JganWorker | TorchWorker = TorchWorker(job["model"], job["spec"], job["batch"], job["device"])
  else:
    w = JganWorker(job["model"], job["spec"], job["batch"], job["side"])
  print(json.dumps({"info": w.info}), flush=True)
  for line in sys.stdin:
    if line.strip() == "quit":
      break
    k = int(line)
    w0, c0 = time.perf_counter(), time.process_time()
    w.run(k)
    print(json.dumps({"wall": time.perf_counter() - w0, "cpu": time.process_time() - c0}), flush=True)


# ---------------------------------------------------------------------------------------------- parent


class Side:
  """A running worker process and its answers."""

  def __init__(self, python: str, job: dict, timeout: float):
    self.name, self.timeout = job["side"], timeout
    env = dict(os.environ)
    if job["side"] != "torch":
      env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [python, os.path.abspath(__file__), "--_worker", json.dumps(job)]
    self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    self.info = self._answer()["info"]

  def _answer(self) -> dict:
    assert self.proc.stdout is not None
    line = self.proc.stdout.readline()
    if not line:
      raise RuntimeError(f"the {self.name} worker exited with {self.proc.wait()} (its stderr is above)")
    return json.loads(line)

  def block(self, k: int) -> dict:
    assert self.proc.stdin is not None
    self.proc.stdin.write(f"{k}\n")
    self.proc.stdin.flush()
    return self._answer()

  def close(self) -> None:
    if self.proc.poll() is None:
      assert self.proc.stdin is not None
      self.proc.stdin.write("quit\n")
      self.proc.stdin.close()
      self.proc.wait(timeout=self.timeout)


def median(xs: list[float]) -> float:
  s = sorted(xs)
  n = len(s)
  return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def bench_row(model: str, spec: dict, batch: int, args, torch_python: str, device: str) -> dict:
  """Times the sides of one row, interleaved; returns the row (medians, ratios, per-block times)."""
  base = {"model": model, "spec": spec, "batch": batch}
  sides = [Side(sys.executable, {**base, "side": s}, 120) for s in ("fast", "native")]
  if torch_python:
    sides.append(Side(torch_python, {**base, "side": "torch", "device": device}, 120))
  try:
    counts = {s.name: (s.info["g_params"], s.info["d_params"]) for s in sides}
    if len(set(counts.values())) != 1:
      raise AssertionError(f"parameter counts (G, D) differ between sides: {counts}")
    for _ in range(args.warmup):
      for s in sides:
        s.block(args.k)
    wall: dict[str, list[float]] = {s.name: [] for s in sides}
    cpu: dict[str, list[float]] = {s.name: [] for s in sides}
    for _ in range(args.reps):
      for s in sides:
        t = s.block(args.k)
        wall[s.name].append(t["wall"] / args.k)
        cpu[s.name].append(t["cpu"] / args.k)
  finally:
    for s in sides:
      s.close()
  row = {"model": model, **spec, "batch": batch, "g_params": counts["fast"][0], "d_params": counts["fast"][1]}
  for s in sides:
    row[f"{s.name}_img_s"] = batch / median(wall[s.name])
    row[f"{s.name}_cpu_s"] = median(cpu[s.name])
    row[f"{s.name}_compile_s"] = s.info["compile_s"]
    row[f"{s.name}_wall_all"] = [round(x, 5) for x in wall[s.name]]
  row["fast_vs_native"] = row["fast_img_s"] / row["native_img_s"]
  if torch_python:
    row["fast_vs_torch"] = row["fast_img_s"] / row["torch_img_s"]
    row["native_vs_torch"] = row["native_img_s"] / row["torch_img_s"]
  return row


def format_table(rows: list[dict], with_torch: bool) -> str:
  cols = ["model", "size", "batch", "params G/D", "fast img/s", "native img/s", "fast/native"]
  if with_torch:
    cols += ["torch img/s", "fast/torch", "native/torch"]
  cols += ["CPU s/step fast, native" + (", torch" if with_torch else ""), "compile s fast, native"]
  lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
  for r in rows:
    vals = [
      r["model"],
      str(r["size"]),
      str(r["batch"]),
      f"{r['g_params']:,} / {r['d_params']:,}",
      f"{r['fast_img_s']:.1f}",
      f"{r['native_img_s']:.1f}",
      f"**{r['fast_vs_native']:.2f}x**",
    ]
    if with_torch:
      vals += [f"{r['torch_img_s']:.1f}", f"{r['fast_vs_torch']:.2f}x", f"{r['native_vs_torch']:.2f}x"]
    cpus = [r["fast_cpu_s"], r["native_cpu_s"]] + ([r["torch_cpu_s"]] if with_torch else [])
    vals += [", ".join(f"{x:.3f}" for x in cpus), f"{r['fast_compile_s']:.1f}, {r['native_compile_s']:.1f}"]
    lines.append("| " + " | ".join(vals) + " |")
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--models", default="dcgan,sngan", help="comma list of: " + ", ".join(FULL))
  ap.add_argument("--batch", type=int, default=0, help="batch size (default 64; 8 with --quick)")
  ap.add_argument("--reps", type=int, default=0, help="timed blocks per side (default 7; 2 with --quick)")
  ap.add_argument("--warmup", type=int, default=1, help="untimed blocks per side first")
  ap.add_argument("--steps-per-rep", type=int, default=0, help="steps per block (0: 1 on CPU, 20 on a device)")
  ap.add_argument("--quick", action="store_true", help="reduced CPU mode: tiny widths, batch 8, 2 blocks")
  ap.add_argument("--torch-python", default="", help="interpreter with torch for the torch side")
  ap.add_argument("--no-torch", action="store_true", help="time the two jgan sides only")
  ap.add_argument("--json", default="", help="also write the rows to this JSON file")
  ap.add_argument("--_worker", default="", help=argparse.SUPPRESS)
  args = ap.parse_args(argv)
  if args._worker:
    worker_main(args._worker)
    return 0
  table = QUICK if args.quick else FULL
  models = args.models.split(",")
  bad = [m for m in models if m not in table]
  if bad:
    ap.error(f"unknown models {bad}; valid choices: {', '.join(table)}")
  args.batch = args.batch or (8 if args.quick else 64)
  args.reps = args.reps or (2 if args.quick else 7)
  import jax  # the parent asks JAX only which backend the workers will get

  backend = jax.default_backend()
  args.k = args.steps_per_rep or (1 if backend == "cpu" else 20)
  torch_python = "" if args.no_torch else find_torch_python(args.torch_python)
  device = "cuda" if backend == "gpu" else "cpu"
  print(
    f"# layer A/B, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} "
    f"on {backend}; torch worker: {torch_python or 'none (no interpreter with torch: torch side skipped)'}"
  )
  print(
    f"# {args.reps} interleaved blocks of {args.k} step(s) per side after {args.warmup} warm-up; batch "
    f"{args.batch}; load average at start {os.getloadavg()[0]:.2f}"
  )
  rows = []
  for model in models:
    for spec in table[model]:
      rows.append(bench_row(model, spec, args.batch, args, torch_python, device))
      print(json.dumps({k: v for k, v in rows[-1].items() if not k.endswith("_all")}), flush=True)
  print()
  print(format_table(rows, bool(torch_python)))
  print(f"# load average at end {os.getloadavg()[0]:.2f}")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(rows, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
