"""Step-loop and device-count scaling of the jitted jgan step.

Two tables:

1. **Fused vs unfused** (``--section fused``): the toy MLP GAN of ``configs/ring8.py`` (batch 256) as
   steps/s with ``train.steps_per_call=K`` (K steps in one ``lax.scan`` per Python call, default 50)
   against one Python call per step, A/B interleaved in one process (one fused call of K steps, then K
   single calls, repeated). Batches are already on the device on both sides, so the difference is the
   per-call dispatch cost the fused loop removes.
2. **Device scaling** (``--section devices``): the same step on 1/2/4/8 (fake) CPU devices, each count in
   its own subprocess with ``--xla_force_host_platform_device_count=N`` (a data-parallel ``('data',)``
   mesh over N devices, batch sharded, state replicated, exactly as ``train_and_evaluate`` sets it up).
   Workloads: DCGAN 32x32 batch 64 and the fused ring8 MLP. Fake CPU devices share the machine's cores,
   so this measures the overhead of the sharded program, not a speed-up; on a multi-GPU host pass
   ``--real-devices`` to use the real devices instead.

  .venv/bin/python benchmarks/bench_scaling.py [--section fused,devices] [--devices 1,2,4,8] [--reps 5]

The header and every table print the 1-minute load average: compare only runs with similar load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

if "--_child" in sys.argv and "--real-devices" not in sys.argv:
  # The device count must be set before JAX initialises its backend.
  n = sys.argv[sys.argv.index("--_child") + 1].split(":")[1]
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n}").strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402

import jgan  # noqa: E402,F401  (XLA:CPU work-around before JAX starts)
from configs import ring8  # noqa: E402
from jgan import components, sharding  # noqa: E402
from jgan import config as config_lib  # noqa: E402
from jgan import state as state_lib  # noqa: E402
from jgan import step as step_lib  # noqa: E402
from jgan.data import mixtures  # noqa: E402


def ring8_config(k: int):
  c = ring8.get_config()
  c.train.steps_per_call = k
  return c


def ring8_batches(c, k: int, rng) -> dict:
  """Host batch ``{"x": [k?, 1, B, 2]}`` for ``k`` fused steps (no leading axis when k == 1)."""
  b = c.train.batch_size
  x = mixtures.sample(c.data.name, k * b, rng).reshape(((k,) if k > 1 else ()) + (1, b, 2))
  return {"x": x}


def load() -> str:
  return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def section_fused(k: int, reps: int) -> None:
  rng = np.random.default_rng(0)
  sides = {}
  for name, kk in (("fused", k), ("unfused", 1)):
    c = ring8_config(kk)
    parts = components.build(config_lib.resolve(c), (2,))
    state = state_lib.create_state(parts, jax.random.key(0))
    fn = step_lib.make_train_step(parts, c.train.steps_per_call)
    batch = jax.device_put(ring8_batches(c, kk, rng))
    t0 = time.perf_counter()
    fn = fn.lower(state, batch).compile()
    sides[name] = {"fn": fn, "state": state, "batch": batch, "k": kk, "compile": time.perf_counter() - t0, "t": []}

  def run(s):
    calls = k // s["k"]
    t0 = time.perf_counter()
    for _ in range(calls):
      s["state"], m = s["fn"](s["state"], s["batch"])
    jax.block_until_ready(m)
    return time.perf_counter() - t0

  la = os.getloadavg()[0]
  for s in sides.values():
    run(s)  # warm-up
  for _ in range(reps):
    for s in sides.values():
      s["t"].append(run(s))
  print(
    f"\n## ring8 MLP GAN (batch 256): fused lax.scan of {k} steps vs one call per step "
    f"({reps} interleaved blocks of {k} steps; load {la:.2f} -> {os.getloadavg()[0]:.2f})\n"
  )
  print("| loop | steps/s (median) | ms/step | compile s |")
  print("|---|---|---|---|")
  for name, s in sides.items():
    med = float(np.median(s["t"])) / k
    print(f"| {name} ({'steps_per_call=' + str(s['k'])}) | {1 / med:.0f} | {med * 1e3:.2f} | {s['compile']:.1f} |")
  f, u = (float(np.median(sides[n]["t"])) for n in ("fused", "unfused"))
  print(f"\nfused / unfused speed: {u / f:.2f}x")


def child(workload: str, n: int, reps: int, k: int) -> None:
  """Runs in a subprocess with ``n`` devices; prints one JSON line."""
  mesh = sharding.make_mesh(n)
  if workload == "dcgan32":
    c = config_lib.defaults()
    c.data.image_size, c.train.batch_size = 32, 64
    shape, kk = (32, 32, 3), 1
    rng = np.random.default_rng(0)
    host = {"x": rng.uniform(-1, 1, (1, 64, 32, 32, 3)).astype(np.float32)}
    per_call = 1
  else:
    c = ring8_config(k)
    shape, kk = (2,), k
    host = ring8_batches(c, k, np.random.default_rng(0))
    per_call = k
  sh = sharding.make_shardings(mesh, kk)
  parts = components.build(config_lib.resolve(c), shape)
  state = jax.device_put(state_lib.create_state(parts, jax.random.key(0)), sh.replicated)
  batch = jax.device_put(host, sh.batch)
  fn = step_lib.make_train_step(parts, c.train.steps_per_call, sh.replicated, sh.batch, sh.data)
  t0 = time.perf_counter()
  fn = fn.lower(state, batch).compile()
  compile_s = time.perf_counter() - t0
  ts = []
  for i in range(reps + 1):
    t0 = time.perf_counter()
    state, m = fn(state, batch)
    jax.block_until_ready(m)
    if i:  # the first call is a warm-up
      ts.append(time.perf_counter() - t0)
  med = float(np.median(ts)) / per_call
  print(
    json.dumps(
      {
        "devices": len(jax.devices()[:n]),
        "platform": jax.devices()[0].platform,
        "step_s": med,
        "compile_s": compile_s,
        "d_loss": float(np.ravel(m["d_loss"])[-1]),
      }
    )
  )


def section_devices(counts: list[int], reps: int, k: int, real: bool) -> None:
  for workload, unit in (("dcgan32", "images/s"), ("ring8", "steps/s")):
    la = os.getloadavg()[0]
    rows = []
    for n in counts:
      cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--_child",
        f"{workload}:{n}",
        "--reps",
        str(reps),
        "--steps",
        str(k),
      ] + (["--real-devices"] if real else [])
      try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=True).stdout
        rows.append((n, json.loads(out.strip().splitlines()[-1])))
      except subprocess.CalledProcessError as e:
        rows.append((n, {"error": (e.stderr or "").strip().splitlines()[-1:]}))
    what = "DCGAN 32x32, batch 64" if workload == "dcgan32" else f"ring8 MLP, batch 256, fused {k} steps/call"
    print(
      f"\n## {what}: 1..N {'real' if real else 'fake CPU'} devices, one subprocess each "
      f"(median of {reps} calls; load {la:.2f} -> {os.getloadavg()[0]:.2f})\n"
    )
    print(f"| devices | {unit} | s/step | vs 1 device | compile s | final d_loss |")
    print("|---|---|---|---|---|---|")
    base = next((r["step_s"] for _, r in rows if "step_s" in r), None)
    for n, r in rows:
      if "error" in r:
        print(f"| {n} | failed: {r['error']} | | | | |")
        continue
      rate = (64 / r["step_s"]) if workload == "dcgan32" else 1 / r["step_s"]
      print(
        f"| {r['devices']} | {rate:.1f} | {r['step_s']:.4f} | {base / r['step_s']:.2f}x | {r['compile_s']:.1f} "
        f"| {r['d_loss']:.4f} |"
      )


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--section", default="fused,devices", help="comma-separated: fused, devices")
  parser.add_argument("--devices", default="1,2,4,8", help="device counts for the scaling table")
  parser.add_argument("--reps", type=int, default=5, help="timed blocks / calls per measurement")
  parser.add_argument("--steps", type=int, default=50, help="K: steps per fused call")
  parser.add_argument("--real-devices", action="store_true", help="use the real devices (no fake CPU devices)")
  parser.add_argument("--_child", default="", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args._child:
    workload, n = args._child.split(":")
    child(workload, int(n), args.reps, args.steps)
    return
  print(
    f"# jax {jax.__version__}, {os.cpu_count()} cores, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; "
    f"load average {load()}"
  )
  sections = args.section.split(",")
  if "fused" in sections:
    section_fused(args.steps, args.reps)
  if "devices" in sections:
    section_devices([int(n) for n in args.devices.split(",")], args.reps, args.steps, args.real_devices)


if __name__ == "__main__":
  main()
