"""DCGAN train-step throughput: jgan vs a PyTorch reference with the identical architecture.

Both sides run in this one process on the same machine, A/B interleaved (one jgan block, one PyTorch
block, repeated), so load from other processes hits both alike. For each image size and batch size the
table gives the median images/s of each side and their ratio, the median *CPU* seconds per step (process
CPU time, all threads: less sensitive to other processes' load than wall time), the jgan compile time
and PyTorch's first (warm-up) step. Peak memory is measured per side in a child process (peak RSS on
CPU, the framework's peak device bytes on an accelerator). A second table gives the work per step
(GFLOP: XLA's cost analysis of jgan's compiled step; PyTorch's ``FlopCounterMode`` for its step) and the
rate each side achieves, next to the rate of a 2048x2048 float32 matmul in each framework (the header):
on an accelerator, achieved over peak rate is the model FLOP utilisation.

jgan side: the real jitted step of :func:`jgan.step.make_train_step` on a state from
:func:`jgan.state.create_state` (jgan.config.defaults(): DCGAN, width 64, latent 100, non-saturating loss,
Adam 2e-4 / b1 0.5; the step also updates the EMA of G). PyTorch side: ``benchmarks/torch_dcgan.py``,
the PyTorch DCGAN example's step (D on real, D on ``fake.detach()``, G step reusing ``fake``). The
parameter counts of both sides are asserted equal. Data loading is excluded on both sides (a fixed
random batch already on the device).

Device-agnostic: JAX uses its default backend; PyTorch uses CUDA when available (and JAX is on a GPU),
else the CPU with ``torch.set_num_threads(os.cpu_count())``.

  .venv/bin/python benchmarks/bench_dcgan.py [--sizes 32,64] [--batches 64,128] [--reps 7]
      [--no-torch] [--no-memory] [--compute-dtype float32|bfloat16] [--steps-per-rep K] [--plain]

``--plain`` adds a third interleaved side: the same jgan step with the layers jgan had before the
performance work (G's up-sampling as one 3x3 phase convolution to 4*Cout channels, D's stride-2
``lax.conv_general_dilated``, ``nnx.BatchNorm``), to measure what the fast layers bring.

PyTorch is the optional ``bench`` dependency (``pip install -e '.[bench]'``); without it the jgan side
still runs and the table says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jgan  # noqa: E402,F401  (XLA:CPU work-around before JAX starts)
from jgan import components  # noqa: E402
from jgan import config as config_lib  # noqa: E402
from jgan import state as state_lib  # noqa: E402
from jgan import step as step_lib  # noqa: E402
from jgan.models import layers  # noqa: E402

try:
  if "--_memory-child" in sys.argv and "jgan" in sys.argv:
    raise ImportError  # the jgan memory child must not pay for PyTorch's libraries
  import torch  # noqa: E402
  import torch_dcgan  # noqa: E402
except ImportError:  # the optional `bench` dependency
  torch = None

TORCH_MISSING = "PyTorch is not installed (pip install -e '.[bench]'): running the jgan side only."


def jgan_config(size: int, batch: int, compute_dtype: str = "float32"):
  c = config_lib.defaults()
  c.data.image_size = size
  c.train.batch_size = batch
  c.model.compute_dtype = compute_dtype
  return c


def count_params(tree) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


def _plain_upconv2x(x, w):
  """The pre-optimisation UpConv: one 3x3 stride-1 conv to 4*Cout channels (zero taps) + depth-to-space."""
  b, h, wd, cin = x.shape
  cout = w.shape[-1]
  z = jnp.zeros_like(w[:1])
  rows = [jnp.concatenate([w[0:1], w[2:3], z], 0), jnp.concatenate([z, w[1:2], w[3:4]], 0)]
  blocks = []
  for r in rows:
    zc = jnp.zeros_like(r[:, :1])
    blocks += [jnp.concatenate([r[:, 0:1], r[:, 2:3], zc], 1), jnp.concatenate([zc, r[:, 1:2], r[:, 3:4]], 1)]
  k = jnp.concatenate(blocks, axis=-1)
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  y = jax.lax.conv_general_dilated(xp, k, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return y.reshape(b, h, wd, 2, 2, cout).transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * wd, cout)


def _plain_downconv2x(x, w):
  """The pre-optimisation DownConv: XLA's stride-2 convolution (what ``nnx.Conv`` runs)."""
  return jax.lax.conv_general_dilated(x, w, (2, 2), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))


class _plain_layers:
  """Context manager: trace with the pre-optimisation layer implementations (see ``--plain``)."""

  def __enter__(self):
    self.saved = layers.upconv2x, layers.downconv2x, layers.BatchNorm.__call__
    layers.upconv2x, layers.downconv2x = _plain_upconv2x, _plain_downconv2x
    layers.BatchNorm.__call__ = nnx_batchnorm_call

  def __exit__(self, *exc):
    layers.upconv2x, layers.downconv2x, layers.BatchNorm.__call__ = self.saved


def nnx_batchnorm_call(self, x, use_running_average=None, *, mask=None):
  from flax import nnx

  return nnx.BatchNorm.__call__(self, x, use_running_average, mask=mask)


class JganSide:
  """The jitted jgan step on a live state; ``run(k)`` runs k steps and waits for the result.

  ``plain=True`` compiles the step with the pre-optimisation layers (see ``--plain``).
  """

  def __init__(self, size: int, batch: int, compute_dtype: str, plain: bool = False):
    if plain:
      with _plain_layers():
        self.__init__(size, batch, compute_dtype)  # tracing and compiling happen inside
      return
    c = jgan_config(size, batch, compute_dtype)
    parts = components.build(config_lib.resolve(c), (size, size, 3))
    self.state = state_lib.create_state(parts, jax.random.key(0))
    self.g_params, self.d_params = count_params(self.state.g.params), count_params(self.state.d.params)
    self.params = self.g_params + self.d_params
    rng = np.random.default_rng(0)
    self.batch = {"x": jax.device_put(rng.uniform(-1, 1, (1, batch, size, size, 3)).astype(np.float32))}
    fn = step_lib.make_train_step(parts)
    t0 = time.perf_counter()
    self.step = fn.lower(self.state, self.batch).compile()
    self.compile_s = time.perf_counter() - t0
    cost = self.step.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost  # a list of one dict in older jaxlibs
    self.gflop = float(cost.get("flops", float("nan"))) / 1e9  # XLA's count: every op, per step

  def run(self, k: int = 1):
    for _ in range(k):
      self.state, metrics = self.step(self.state, self.batch)
    jax.block_until_ready(metrics)
    return metrics


class TorchSide:
  """The PyTorch example's step; ``run(k)`` runs k steps and waits for the device."""

  def __init__(self, size: int, batch: int, device: str):
    torch.manual_seed(0)
    self.step = torch_dcgan.TrainStep(size, batch, device=device)
    self.g_params = torch_dcgan.param_count(self.step.netG)
    self.d_params = torch_dcgan.param_count(self.step.netD)
    self.params = self.g_params + self.d_params
    self.real = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    self.gflop = float("nan")

  def count_flops(self) -> float:
    """GFLOP of one step by PyTorch's FlopCounterMode (convolutions and matmuls, forward + backward);
    the step it runs counts as a warm-up step."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
      self.run(1)
    self.gflop = counter.get_total_flops() / 1e9
    return self.gflop

  def run(self, k: int = 1):
    for _ in range(k):
      out = self.step(self.real)
    self.step.sync()
    return out


def matmul_rate(n: int = 2048, reps: int = 5) -> dict[str, float]:
  """GFLOP/s of an ``n x n`` float32 matmul (median of ``reps``) in JAX (jitted) and PyTorch: the rate a
  convolution-bound step can at best approach on this machine."""
  rng = np.random.default_rng(0)
  a = rng.standard_normal((n, n), dtype=np.float32)
  flop = 2 * n**3
  out = {}
  x = jax.device_put(a)
  f = jax.jit(lambda x: x @ x)
  f(x).block_until_ready()
  ts = []
  for _ in range(reps):
    t0 = time.perf_counter()
    f(x).block_until_ready()
    ts.append(time.perf_counter() - t0)
  out["jax"] = flop / float(np.median(ts)) / 1e9
  if torch is not None:
    dev = torch_device()
    xt = torch.from_numpy(a).to(dev)
    (xt @ xt).sum().item()
    ts = []
    for _ in range(reps):
      t0 = time.perf_counter()
      xt @ xt  # CPU matmuls are synchronous; CUDA is synchronised below
      if dev == "cuda":
        torch.cuda.synchronize()
      ts.append(time.perf_counter() - t0)
    out["torch"] = flop / float(np.median(ts)) / 1e9
  return out


def torch_device() -> str:
  if torch is not None and torch.cuda.is_available() and jax.default_backend() == "gpu":
    return "cuda"
  return "cpu"


def timed(fn, k: int) -> tuple[float, float]:
  """(wall seconds, process CPU seconds) of ``fn(k)``."""
  w0, c0 = time.perf_counter(), time.process_time()
  fn(k)
  return time.perf_counter() - w0, time.process_time() - c0


def peak_memory_child(side: str, size: int, batch: int, compute_dtype: str, steps: int = 3) -> str:
  """Runs ``steps`` steps of one side in a fresh process; returns its peak memory as text."""
  cmd = [
    sys.executable,
    os.path.abspath(__file__),
    "--_memory-child",
    side,
    "--sizes",
    str(size),
    "--batches",
    str(batch),
    "--compute-dtype",
    compute_dtype,
    "--reps",
    str(steps),
  ]
  try:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=True).stdout
  except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
    return f"failed ({type(e).__name__})"
  return json.loads(out.strip().splitlines()[-1])["memory"]


def _maxrss_mb() -> float:
  """Peak RSS of this process. VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over fork+exec,
  so a child would report at least its parent's size."""
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) / 1024.0  # kB
  except OSError:
    pass
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _rss_mb() -> float:
  """Current resident set size (Linux /proc), to subtract what the imports hold."""
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_child(side: str, size: int, batch: int, compute_dtype: str, steps: int) -> None:
  base = _rss_mb()
  if side == "jgan":
    s = JganSide(size, batch, compute_dtype)
    s.run(steps)
    dev = jax.devices()[0]
    stats = dev.memory_stats() if hasattr(dev, "memory_stats") else None
    if stats and "peak_bytes_in_use" in stats:
      mem = f"{stats['peak_bytes_in_use'] / 2**20:.0f} MiB device peak"
    else:
      mem = f"{_maxrss_mb():.0f} MiB peak RSS ({_maxrss_mb() - base:.0f} over imports)"
  else:  # this process imported JAX too (the module does), so "over imports" is the fairer number
    dev = torch_device()
    s = TorchSide(size, batch, dev)
    s.run(steps)
    if dev == "cuda":
      mem = f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB device peak"
    else:
      mem = f"{_maxrss_mb():.0f} MiB peak RSS ({_maxrss_mb() - base:.0f} over imports)"
  print(json.dumps({"memory": mem}))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", default="32,64", help="image sizes (32 and/or 64)")
  parser.add_argument("--batches", default="64,128", help="batch sizes")
  parser.add_argument("--reps", type=int, default=7, help="interleaved timed blocks per side")
  parser.add_argument("--warmup", type=int, default=2, help="untimed blocks per side first")
  parser.add_argument(
    "--steps-per-rep", type=int, default=0, help="steps per timed block (0: 1 on CPU, 20 on an accelerator)"
  )
  parser.add_argument(
    "--compute-dtype",
    default="float32",
    choices=["float32", "bfloat16"],
    help="jgan's model.compute_dtype (PyTorch stays float32)",
  )
  parser.add_argument("--no-torch", action="store_true", help="jgan side only")
  parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
  parser.add_argument(
    "--plain", action="store_true", help="also time jgan with the pre-optimisation layers (third interleaved side)"
  )
  parser.add_argument("--json", default="", help="also write the rows to this JSON file")
  parser.add_argument("--_memory-child", default="", help=argparse.SUPPRESS)
  args = parser.parse_args()
  sizes = [int(s) for s in args.sizes.split(",")]
  batches = [int(b) for b in args.batches.split(",")]
  if args._memory_child:
    memory_child(args._memory_child, sizes[0], batches[0], args.compute_dtype, args.reps)
    return

  use_torch = torch is not None and not args.no_torch
  dev = torch_device()
  if use_torch and dev == "cpu":
    torch.set_num_threads(os.cpu_count())
  k = args.steps_per_rep or (1 if jax.default_backend() == "cpu" else 20)
  print(
    f"# jgan DCGAN step vs PyTorch, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
    f"jax {jax.__version__} on {jax.devices()[0].platform}"
    + (f", torch {torch.__version__} on {dev} ({torch.get_num_threads()} threads)" if use_torch else "")
  )
  print(
    f"# XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; jgan compute dtype {args.compute_dtype}; "
    f"{args.reps} interleaved blocks of {k} step(s) per side after {args.warmup} warm-up"
  )
  if torch is None:
    print("# " + TORCH_MISSING)
  print(f"# load average at start: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
  peak = matmul_rate()
  print("# float32 2048x2048 matmul: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peak.items()))

  rows = []
  for size in sizes:
    for batch in batches:
      la0 = os.getloadavg()[0]
      j = JganSide(size, batch, args.compute_dtype)
      t = None
      if use_torch:
        t = TorchSide(size, batch, dev)
        assert (j.g_params, j.d_params) == (t.g_params, t.d_params), (
          f"parameter counts differ: jgan G/D {j.g_params}/{j.d_params}, torch {t.g_params}/{t.d_params}"
        )
        t0 = time.perf_counter()
        t.run(1)
        t_first = time.perf_counter() - t0
        t.count_flops()
      sides = {"jgan": j, "torch": t} if t is not None else {"jgan": j}
      if args.plain:
        sides["plain"] = JganSide(size, batch, args.compute_dtype, plain=True)
      for _ in range(args.warmup):
        for s in sides.values():
          s.run(k)
      wall = {n: [] for n in sides}
      cpu = {n: [] for n in sides}
      for _ in range(args.reps):
        for n, s in sides.items():
          w, c = timed(s.run, k)
          wall[n].append(w / k)
          cpu[n].append(c / k)
      row = {
        "size": size,
        "batch": batch,
        "params": j.params,
        "jgan_compile_s": j.compile_s,
        "load_avg": [la0, os.getloadavg()[0]],
      }
      for n in sides:
        row[f"{n}_img_s"] = batch / float(np.median(wall[n]))
        row[f"{n}_cpu_s"] = float(np.median(cpu[n]))
        row[f"{n}_gflop"] = sides[n].gflop
        row[f"{n}_gflop_s"] = sides[n].gflop * row[f"{n}_img_s"] / batch  # achieved, wall clock
        row[f"{n}_wall_all"] = [round(x, 4) for x in wall[n]]
      if args.plain:
        row["plain_compile_s"] = sides["plain"].compile_s
        row["fast_vs_plain"] = row["jgan_img_s"] / row["plain_img_s"]
      if t is not None:
        row["torch_first_step_s"] = t_first
        row["ratio"] = row["jgan_img_s"] / row["torch_img_s"]
        row["cpu_ratio"] = row["torch_cpu_s"] / row["jgan_cpu_s"]
      del j, t, sides
      if not args.no_memory:
        row["jgan_memory"] = peak_memory_child("jgan", size, batch, args.compute_dtype)
        if use_torch:
          row["torch_memory"] = peak_memory_child("torch", size, batch, args.compute_dtype)
      rows.append(row)
      print_row(row, use_torch, header=len(rows) == 1)

  if args.plain:
    print("\njgan's fast layers vs the pre-optimisation layers (same interleaved runs):\n")
    print(
      "| size | batch | fast img/s | plain img/s | speed-up | fast CPU s/step | plain CPU s/step | "
      "fast compile s | plain compile s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
      print(
        f"| {r['size']} | {r['batch']} | {r['jgan_img_s']:.1f} | {r['plain_img_s']:.1f} | "
        f"**{r['fast_vs_plain']:.2f}x** | {r['jgan_cpu_s']:.3f} | {r['plain_cpu_s']:.3f} | "
        f"{r['jgan_compile_s']:.1f} | {r['plain_compile_s']:.1f} |"
      )
  print(
    "\nWork per step (GFLOP: jgan = XLA's cost analysis of the compiled step, every op; torch = "
    "FlopCounterMode, convolutions and matmuls) and the rate achieved (GFLOP/s, wall clock):\n"
  )
  print(
    "| size | batch | jgan GFLOP/step | jgan GFLOP/s |" + (" torch GFLOP/step | torch GFLOP/s |" if use_torch else "")
  )
  print("|---|---|---|---|" + ("---|---|" if use_torch else ""))
  for r in rows:
    print(
      f"| {r['size']} | {r['batch']} | {r['jgan_gflop']:.1f} | {r['jgan_gflop_s']:.0f} |"
      + (f" {r['torch_gflop']:.1f} | {r['torch_gflop_s']:.0f} |" if use_torch else "")
    )
  print(f"# load average at end: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(rows, f, indent=1)


def print_row(row, use_torch: bool, header: bool) -> None:
  if header:
    cols = ["size", "batch", "jgan img/s"]
    if use_torch:
      cols += ["torch img/s", "ratio", "jgan CPU s/step", "torch CPU s/step", "CPU ratio"]
    else:
      cols += ["jgan CPU s/step"]
    cols += ["jgan compile s"] + (["torch 1st step s"] if use_torch else [])
    cols += ["jgan peak mem", "torch peak mem"] if use_torch else ["jgan peak mem"]
    cols += ["load (start, end)"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
  vals = [str(row["size"]), str(row["batch"]), f"{row['jgan_img_s']:.1f}"]
  if use_torch:
    vals += [
      f"{row['torch_img_s']:.1f}",
      f"**{row['ratio']:.2f}x**",
      f"{row['jgan_cpu_s']:.3f}",
      f"{row['torch_cpu_s']:.3f}",
      f"{row['cpu_ratio']:.2f}x",
    ]
  else:
    vals += [f"{row['jgan_cpu_s']:.3f}"]
  vals += [f"{row['jgan_compile_s']:.1f}"] + ([f"{row['torch_first_step_s']:.2f}"] if use_torch else [])
  vals += [row.get("jgan_memory", "-")] + ([row.get("torch_memory", "-")] if use_torch else [])
  vals += [f"{row['load_avg'][0]:.1f}, {row['load_avg'][1]:.1f}"]
  print("| " + " | ".join(vals) + " |", flush=True)


if __name__ == "__main__":
  main()
