"""Golden numbers of three short runs, so a refactor can prove it changed no result.

``python -m tests.golden`` (from the repository root, in the venv) trains smoke, ring8 and the demo
config (``dcgan_mnist5k``), and variants covering every path of the step, for 50 G updates on one CPU
device through the library entry point (``train_and_evaluate``) and writes this machine's record into
``tests/golden.json``: for every part of the final state a SHA-256 of its leaves' bytes (and, for
machines whose floating point differs, the float64 sum of absolute values), plus every logged metrics
row. The file keeps one record per machine environment (:func:`environment`: library versions and CPU
flags), because XLA:CPU rounds differently on different CPUs; recording on a new machine kind adds its
record and keeps the others (``--replace`` overwrites this machine's record: only for a change that
moves numbers on purpose, and then every record must be re-recorded or dropped).
``tests/test_golden.py`` recomputes them and compares.

Parts are named by what they hold, not by where the state keeps them, so a change of the state's
layout only has to update :func:`state_parts`.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import tempfile

import numpy as np

GOLDEN_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.json")
STEPS = 50
_RING = {"train.log_every": 50, "train.sample_every": 0}  # ring8 fuses 50 steps per call
# run name -> (config file, its argument, overrides). The three the issue names, then one run per
# path of the step that they do not take (other update rules, Unrolled GAN, PacGAN, n_critic > 1 with
# an objective penalty, objective state, a lazy regulariser), each on the cheapest config that has it.
RUNS = {
  "smoke": ("smoke", None, {"train.log_every": 10}),
  "ring8": ("ring8", None, _RING),
  "dcgan_mnist5k": ("dcgan_mnist5k", None, {"train.log_every": 10, "train.sample_every": 0}),
  "ring8_simultaneous": ("ring8", None, {**_RING, "train.update_rule": "simultaneous"}),
  "ring8_extragradient": ("ring8", None, {**_RING, "train.update_rule": "extragradient"}),
  "ring8_optimistic": ("ring8", None, {**_RING, "train.update_rule": "optimistic"}),
  "ring8_unrolled_pack2": ("ring8", None, {**_RING, "train.unrolled_steps": 2, "model.pack": 2}),
  "smoke_wgan_gp": ("smoke", "wgan_gp", {"train.log_every": 10}),
  "smoke_began": ("smoke", "began", {"train.log_every": 10}),
  "smoke_r1_lazy": (
    "smoke",
    None,
    {"train.log_every": 10, "penalty.name": "r1", "penalty.every": 4, "model.d_norm": "none"},
  ),
}


# Added before the training-loop refactor (issue "One training loop"): a K = 4 seed ensemble of ring8
# (jgan.ensemble) and a smoke run stopped by SIGINT at its 27th step (checkpoint with the open logging
# window), then resumed to the end.
RUNS["ring8_ensemble4"] = ("ring8", None, {**_RING, "train.num_seeds": 4})
RUNS["smoke_resumed"] = ("smoke", None, {"train.log_every": 10, "checkpoint.every_steps": 20})
STOP_AT = {"smoke_resumed": 27}  # run name -> the data call during which SIGINT arrives (then resume)


def state_parts(state) -> dict:
  """The final state's parts by meaning: ``{name: pytree}``."""
  import jax

  return {
    "step": state.step,
    "rng": jax.random.key_data(state.rng),
    "g_params": state.g.params,
    "g_stats": state.g.stats,
    "g_opt": state.g.opt,
    "g_ema": state.g_ema,
    "d_params": state.d.params,
    "d_stats": state.d.stats,
    "d_opt": state.d.opt,
    "obj_state": state.obj_state,
    "rule_state": state.rule_state,
  }


def digest(tree) -> dict:
  """``{"sha256": hex of the leaves' dtypes, shapes and bytes in order, "abs_sum": float64, "leaves": n}``."""
  import jax

  h = hashlib.sha256()
  total = 0.0
  leaves = jax.tree.leaves(tree)
  for leaf in leaves:
    a = np.ascontiguousarray(np.asarray(leaf))
    h.update(f"{a.dtype}{a.shape}".encode())
    h.update(a.tobytes())
    if a.size and np.issubdtype(a.dtype, np.number):
      total += float(np.sum(np.abs(a.astype(np.float64))))
  return {"sha256": h.hexdigest(), "abs_sum": total, "leaves": len(leaves)}


def config_for(name: str):
  from tests.helpers import load_config

  file, arg, overrides = RUNS[name]
  c = load_config(file, arg)
  c.train.steps = STEPS
  c.train.progress = False
  c.parallel.num_devices = 1
  c.checkpoint.every_steps = 0
  for dotted, value in overrides.items():
    section, key = dotted.split(".")
    c[section][key] = value
  return c


def _rows(workdir: str, **extra) -> list[dict]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [{**json.loads(line), **extra} for line in f]
  for r in rows:
    r.pop("steps_per_sec", None)
  return rows


def _train_stopped_at(config, workdir: str, call: int):
  """Trains until SIGINT arrives during data call ``call`` (a preemption: checkpoint, return), then resumes."""
  import signal

  from jgan import data, train
  from jgan.data import on_device

  make, make_cursor = data.make_iterator, on_device.make_iterator

  class Interrupting:
    def __init__(self, it):
      self.it, self.n = it, 0

    def __next__(self):
      self.n += 1
      if self.n == call:
        signal.raise_signal(signal.SIGINT)
      return next(self.it)

    def get_state(self):
      return self.it.get_state()

    def set_state(self, s):
      self.it.set_state(s)

  data.make_iterator = lambda *a, **k: Interrupting(make(*a, **k))
  on_device.make_iterator = lambda *a, **k: Interrupting(make_cursor(*a, **k))  # the on-device path's cursor
  try:
    stopped = train.train_and_evaluate(config, workdir)
  finally:
    data.make_iterator, on_device.make_iterator = make, make_cursor
  assert int(stopped.step) == call * config.train.steps_per_call, int(stopped.step)
  return train.train_and_evaluate(config, workdir)


def compute(name: str) -> dict:
  """The golden record of run ``name``: state digests and metrics rows (without the timing column).

  An ensemble's state parts hold every member (leaves ``[K, ...]``) and its rows carry ``member``.
  """
  import jax

  from jgan import ensemble, train

  config = config_for(name)
  with tempfile.TemporaryDirectory() as workdir:
    if config.train.get("num_seeds", 1) > 1:
      result = ensemble.train_ensemble(config, workdir)
      state = jax.device_get(result.state)
      rows = [r for i, d in enumerate(result.workdirs) for r in _rows(d, member=i)]
    else:
      if name in STOP_AT:
        state = _train_stopped_at(config, workdir, STOP_AT[name])
      else:
        state = train.train_and_evaluate(config, workdir)
      state, rows = jax.device_get(state), _rows(workdir)
  return {"state": {part: digest(tree) for part, tree in state_parts(state).items()}, "metrics": rows}


def environment() -> dict:
  """What decides the bits: library versions and the CPU (a different CPU may round differently)."""
  from importlib import metadata

  flags = ""
  if os.path.exists("/proc/cpuinfo"):
    with open("/proc/cpuinfo") as f:
      flags = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("flags")), "")
  return {
    "python": platform.python_version(),
    "jax": metadata.version("jax"),
    "jaxlib": metadata.version("jaxlib"),
    "machine": platform.machine(),
    "cpu_flags_sha256": hashlib.sha256(flags.encode()).hexdigest()[:16],
  }


def load_records(path: str = GOLDEN_PATH) -> list[dict]:
  """The records in ``path``: a list of ``{"environment", "steps", "runs"}``, the first the oldest."""
  if not os.path.exists(path):
    return []
  with open(path) as f:
    data = json.load(f)
  return data["records"] if "records" in data else [data]  # the single-record format of before 2026-12-04


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
  import jgan  # noqa: F401  (the XLA:CPU work-around, as the tests apply it)

  env = environment()
  records = load_records()
  if any(r["environment"] == env for r in records) and "--replace" not in argv:
    print(f"this machine already has a record ({env}); pass --replace to overwrite it", file=sys.stderr)
    return 2
  record = {"environment": env, "steps": STEPS, "runs": {n: compute(n) for n in RUNS}}
  records = [r for r in records if r["environment"] != env] + [record]
  with open(GOLDEN_PATH, "w") as f:
    json.dump({"records": records}, f, indent=1, sort_keys=True)
    f.write("\n")
  for n, r in record["runs"].items():
    print(n, r["state"]["g_params"]["sha256"][:16], r["metrics"][-1])
  return 0


if __name__ == "__main__":
  sys.exit(main())
