"""Train-step throughput of the mnist5k demos: the ResNet (SNGAN) and BigGAN-style models next to DCGAN.

Each config's real jitted step (:func:`jgan.step.make_train_step` on the state of
:func:`jgan.state.create_state`, the config as shipped: batch 64, its n_critic, conditional labels) runs on
a fixed random batch (no data loading), in blocks of ``--steps`` steps interleaved across the configs
(A/B/C, repeated ``--reps`` times) so other processes' load hits all alike. The table gives the median
steps/s, the median process CPU seconds per step (all threads; less sensitive to load than wall time),
XLA's GFLOP per step, the compile time, and the load average before and after.

  .venv/bin/python benchmarks/bench_zoo.py [--configs resnet_mnist5k,biggan_mnist5k,dcgan_mnist5k]
      [--reps 5] [--steps 10] [--set model.g_width=16 ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jgan  # noqa: E402,F401  (XLA:CPU work-around before JAX starts)
from jgan import components, data  # noqa: E402
from jgan import config as config_lib  # noqa: E402
from jgan import state as state_lib  # noqa: E402
from jgan import step as step_lib  # noqa: E402


def _prepare(name: str, overrides: list[str]):
  c = config_lib.load_file(os.path.join(ROOT, "configs", f"{name}.py"))
  for item in overrides:
    key, _, value = item.partition("=")
    section, field = key.rsplit(".", 1)
    node = c
    for part in section.split("."):
      node = node[part]
    node[field] = type(node[field])(value) if not isinstance(node[field], bool) else value == "True"
  c = config_lib.resolve(c)
  shape = data.sample_shape(c.data)
  parts = components.build(c, shape)
  state = state_lib.create_state(parts, jax.random.key(0))
  nc, b = c.train.n_critic, c.train.batch_size
  rng = np.random.default_rng(0)
  batch = {
    "x": jnp.asarray(rng.uniform(-1, 1, (nc, b) + shape), jnp.float32),
    "label": jnp.asarray(rng.integers(0, 10, (nc, b)), jnp.int32),
  }
  t = time.time()
  step = step_lib.make_train_step(parts).lower(state, batch).compile()
  compile_s = time.time() - t
  cost = step.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  state, m = step(state, batch)
  jax.block_until_ready(m)
  return {"step": step, "state": state, "batch": batch, "compile_s": compile_s, "gflop": cost["flops"] / 1e9}


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--configs", default="resnet_mnist5k,biggan_mnist5k,dcgan_mnist5k")
  p.add_argument("--reps", type=int, default=5)
  p.add_argument("--steps", type=int, default=10)
  p.add_argument("--set", action="append", default=[], help="config override KEY=VALUE for the zoo configs")
  a = p.parse_args(argv)
  print(f"load average before: {os.getloadavg()}")
  names = a.configs.split(",")
  runs = {n: _prepare(n, a.set if n != "dcgan_mnist5k" else []) for n in names}
  wall: dict[str, list[float]] = {n: [] for n in names}
  cpu: dict[str, list[float]] = {n: [] for n in names}
  for _ in range(a.reps):
    for n, r in runs.items():
      t, c0 = time.time(), time.process_time()
      for _ in range(a.steps):
        r["state"], m = r["step"](r["state"], r["batch"])
      jax.block_until_ready(m)
      wall[n].append((time.time() - t) / a.steps)
      cpu[n].append((time.process_time() - c0) / a.steps)
  print(f"load average after: {os.getloadavg()}  overrides: {a.set or 'none'}")
  print("| config | steps/s (median) | CPU s/step | GFLOP/step | compile s |")
  print("|---|---|---|---|---|")
  for n, r in runs.items():
    med = statistics.median(wall[n])
    print(f"| {n} | {1 / med:.2f} | {statistics.median(cpu[n]):.3f} | {r['gflop']:.2f} | {r['compile_s']:.0f} |")


if __name__ == "__main__":
  main()
