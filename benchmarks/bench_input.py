"""The input path, side by side in one run: yesterday's per-example host iterator, the batch-level host
pipeline (0 / 1 / 2 Grain workers) and the on-device path; the loop's host time per step; the DCGAN step.

(a) images/s of each input path alone (no training) for three datasets: mnist5k 28 px (the real digits),
    a CIFAR-shaped set (10,000 random 32 px RGB images, decoded in memory as jgan keeps CIFAR-10) and a
    CelebA-shaped set (512 distinct JPEGs of 178x218, decoded on every read as TFDS does, centre crop
    108, resized to 64 px); ``per-example`` is the pipeline as it was before (a Grain map per example
    through ``preprocess_image``, Grain's batch), rebuilt here from its parts. On-device images/s time
    the jitted gather + conversion of a call's batch (blocked on).
(b) the training loop's host time per step (us) with a trivial jitted step: the host path's ``next`` +
    stack + ``put_batch`` + dispatch, against the on-device path's cursor + dispatch, at each batch size.
(c) the DCGAN train step's own images/s at 28 / 32 / 64 px (a batch already on the device).
(d) ``--demo``: the demo (``configs/dcgan_mnist5k.py``) trained by the code before this change (``git
    archive`` of ``--before``) and by this tree, alternating, steps/s from metrics.jsonl.

Timings on a shared machine move with the load: every table is measured in one process, interleaved
where it matters, with the load average printed; compare ratios within a table.

  .venv/bin/python benchmarks/bench_input.py [--batches 64,256] [--calls 30] [--demo] [--json rows.json]
  .venv/bin/python benchmarks/bench_input.py --tables c,d --reps 3   # some tables only (d: the demo)
  .venv/bin/python benchmarks/bench_input.py --quick      # the reduced mode tests/test_benchmarks.py runs
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jgan  # noqa: E402,F401  (XLA:CPU work-around before JAX starts)
from jgan import data as data_lib  # noqa: E402
from jgan import sharding, train  # noqa: E402
from jgan.data import on_device, pipeline  # noqa: E402
from tests.helpers import load_config  # noqa: E402


class ArraySource:
  """A random-access source of in-memory uint8 images (a decoded dataset, as DecodedSource holds one)."""

  def __init__(self, images: np.ndarray):
    self.images, self.labels = images, np.zeros(len(images), np.int32)
    self.decoded = np.ones(len(images), bool)

  def __len__(self):
    return len(self.images)

  def __getitem__(self, i):
    return {"image": self.images[i], "label": self.labels[i]}


class JpegSource:
  """Random-access JPEG bytes decoded on every read (as ``tfds.data_source`` serves CelebA)."""

  def __init__(self, blobs: list[bytes]):
    self.blobs = blobs

  def __len__(self):
    return len(self.blobs)

  def __getitem__(self, i):
    from PIL import Image

    return {"image": np.asarray(Image.open(io.BytesIO(self.blobs[int(i)]))), "label": -1}


def datasets(quick: bool) -> dict:
  """name -> (data config, source). Synthetic sets are seeded (the same bytes every run)."""
  from PIL import Image

  rng = np.random.default_rng(0)
  out = {}
  c = load_config("dcgan_mnist5k").data
  out["mnist5k 28px"] = (c, data_lib.training_source(c))
  c = load_config("dcgan_mnist5k").data
  c.name, c.image_size = "cifar10", 32
  out["CIFAR-shaped 32px"] = (c, ArraySource(rng.integers(0, 256, (2000 if quick else 10_000, 32, 32, 3), np.uint8)))
  c = load_config("dcgan_mnist5k").data
  c.name, c.image_size = "celeb_a", 64
  blobs = []
  for _ in range(64 if quick else 512):
    smooth = np.kron(rng.integers(0, 256, (28, 23, 3)), np.ones((8, 8, 1)))[:218, :178].astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(smooth).save(buf, format="JPEG", quality=90)
    blobs.append(buf.getvalue())
  out["CelebA-shaped 64px"] = (c, JpegSource(blobs))
  return out


def per_example_iterator(src, data_cfg, batch, seed, workers):
  """The host iterator as it was before the batch-level pipeline: one Grain map per example."""
  import grain

  crop = data_lib.IMAGE_DATASETS[data_cfg.name].crop
  size = data_cfg.image_size

  def prep(ex):
    return {"x": data_lib.preprocess_image(np.asarray(ex["image"]), size, crop), "label": np.int32(ex["label"])}

  ds = grain.MapDataset.source(src).shuffle(seed=seed).repeat().map(prep).batch(batch, drop_remainder=True)
  it = ds.to_iter_dataset()
  if workers:
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
  return iter(it)


def host_iterator(src, data_cfg, batch, seed, workers):
  c = data_cfg.copy_and_resolve_references()
  c.worker_count = workers
  return pipeline.make_iterator(src, c, batch, seed)


def device_input(src, data_cfg, lead, seed):
  """``(cursor, jitted batch fn, placed arrays)`` of the on-device path for calls of ``lead`` examples."""
  arrays, n = on_device.load(data_cfg, src)
  stacked = data_lib.IMAGE_DATASETS[data_cfg.name].stacked
  fn = functools.partial(
    on_device.batch, offs=on_device.offsets(lead), n=n, seed=seed, stacked=stacked, with_labels=True
  )
  return on_device.Cursor(n, int(np.prod(lead))), fn, jax.device_put(arrays)


def time_iterator(it, calls: int, batch: int) -> float:
  """Sustained images/s: ``calls`` batches timed after as many untimed ones (workers started, the prefetch
  threads' head start consumed: with nothing else to do the consumer then waits on production)."""
  for _ in range(calls):
    next(it)
  t = time.perf_counter()
  for _ in range(calls):
    next(it)
  return calls * batch / (time.perf_counter() - t)


def table_a(sets, batches, calls, quick) -> list[dict]:
  rows = []
  workers = (0, 1) if quick else (0, 1, 2)
  for name, (cfg, src) in sets.items():
    for b in batches:
      row = {"dataset": name, "batch": b}
      it = per_example_iterator(src, cfg, b, 0, 0)
      row["per_example_w0"] = time_iterator(it, calls, b)
      for w in workers:
        it = host_iterator(src, cfg, b, 0, w)
        row[f"pipeline_w{w}"] = time_iterator(it, calls, b)
        if w:
          it.close()
      t = time.perf_counter()
      cursor, fn, arrays = device_input(src, cfg, (1, b), 0)
      row["device_load_s"] = time.perf_counter() - t
      jfn = jax.jit(fn)
      jax.block_until_ready(jfn(arrays, *next(cursor)))
      t = time.perf_counter()
      for _ in range(calls):
        out = jfn(arrays, *next(cursor))
        jax.block_until_ready(out)
      row["on_device"] = calls * b / (time.perf_counter() - t)
      rows.append(row)
      print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
  return rows


def table_b(batches, calls) -> list[dict]:
  """Host time per step of the loop around a trivial jitted step (mnist5k 28 px)."""
  cfg = load_config("dcgan_mnist5k").data
  src = data_lib.training_source(cfg)
  mesh = sharding.make_mesh(1)
  sh = sharding.make_shardings(mesh)
  rows = []
  for b in batches:
    trivial = jax.jit(lambda s, batch: s + jnp.mean(batch["x"]), donate_argnums=(0,))
    it = host_iterator(src, cfg, b, 0, 0)
    state = jnp.zeros(())
    host_us = []
    for k in range(calls + 3):
      t = time.perf_counter()
      hb = train.stack_batch(next(it), 1, 1)
      state = trivial(state, sharding.put_batch(hb, sh.batch))
      if k >= 3:
        host_us.append((time.perf_counter() - t) * 1e6)
    jax.block_until_ready(state)
    cursor, fn, arrays = device_input(src, cfg, (1, b), 0)
    dev_step = jax.jit(lambda s, a, e, w, fn=fn: s + jnp.mean(fn(a, e, w)["x"]), donate_argnums=(0,))
    state = jnp.zeros(())
    dev_us = []
    for k in range(calls + 3):
      t = time.perf_counter()
      state = dev_step(state, arrays, *next(cursor))
      if k >= 3:
        dev_us.append((time.perf_counter() - t) * 1e6)
      if k % 8 == 7:  # keep the queue short: the host cost, not the queue, is measured
        jax.block_until_ready(state)
    jax.block_until_ready(state)
    row = {"batch": b, "host_path_us": statistics.median(host_us), "on_device_us": statistics.median(dev_us)}
    rows.append(row)
    print(json.dumps({k: round(v, 1) for k, v in row.items()}), flush=True)
  return rows


def table_c(batches, reps) -> list[dict]:
  """The DCGAN step's images/s (a random batch already on the device)."""
  from jgan import components
  from jgan import config as config_lib
  from jgan import state as state_lib
  from jgan import step as step_lib

  rows = []
  for size, ch in ((28, 1), (32, 3), (64, 3)):
    for b in batches:
      c = load_config("dcgan_mnist5k")
      c.data.image_size, c.train.batch_size = size, b
      if ch == 3:
        c.data.name = "cifar10" if size == 32 else "celeb_a"
      c = config_lib.resolve(c)
      shape = data_lib.sample_shape(c.data)
      parts = components.build(c, shape)
      state = state_lib.create_state(parts, jax.random.key(0))
      batch = {"x": jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (1, b) + shape), jnp.float32)}
      step = step_lib.make_train_step(parts)
      state, m = step(state, batch)
      jax.block_until_ready(m)
      times = []
      for _ in range(reps):
        t = time.perf_counter()
        state, m = step(state, batch)
        jax.block_until_ready(m)
        times.append(time.perf_counter() - t)
      row = {"size": size, "channels": ch, "batch": b, "img_s": b / statistics.median(times)}
      rows.append(row)
      print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
  return rows


def demo(before: str, steps: int, reps: int) -> dict:
  """The demo's steps/s with the code of commit ``before`` and with this tree, alternating."""
  old = tempfile.mkdtemp(prefix="jgan_before_")
  subprocess.run(f"git -C {ROOT} archive {before} | tar -x -C {old}", shell=True, check=True)
  args = ["--config", "configs/dcgan_mnist5k.py", f"--config.train.steps={steps}", "--config.train.log_every=50"]
  args += ["--config.train.sample_every=0", "--config.checkpoint.every_steps=0", "--config.train.progress=False"]
  out: dict = {"before": [], "after": []}
  for r in range(reps):
    for side, tree in (("before", old), ("after", ROOT)):
      wd = tempfile.mkdtemp(prefix=f"jgan_demo_{side}_")
      env = {**os.environ, "PYTHONPATH": tree}
      subprocess.run(
        [sys.executable, "launch.py", *args, "--workdir", wd], cwd=tree, env=env, check=True, capture_output=True
      )
      with open(os.path.join(wd, "metrics.jsonl")) as f:
        rates = [json.loads(line)["steps_per_sec"] for line in f][1:]  # the first window holds the compile
      out[side].append(statistics.median(rates))
      print(json.dumps({"demo": side, "rep": r, "steps_per_sec": round(out[side][-1], 2)}), flush=True)
  return {k: statistics.median(v) for k, v in out.items()}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--batches", default="64,256")
  p.add_argument("--calls", type=int, default=30)
  p.add_argument("--reps", type=int, default=3, help="timed DCGAN steps per size (c) and demo runs per side (d)")
  p.add_argument("--demo", action="store_true", help="(d): the demo's steps/s before and after")
  p.add_argument("--before", default="679ca31", help="the commit whose code is 'before' in (d)")
  p.add_argument("--demo-steps", type=int, default=300)
  p.add_argument("--quick", action="store_true", help="reduced sizes (the tests' mode)")
  p.add_argument("--tables", default="a,b,c", help="which tables to measure, of a,b,c,d (--demo adds d)")
  p.add_argument("--json")
  a = p.parse_args(argv)
  batches = [int(b) for b in a.batches.split(",")]
  tables = set(a.tables.split(",")) | ({"d"} if a.demo else set())
  if not tables <= {"a", "b", "c", "d"}:
    p.error(f"--tables {a.tables!r}: each of a, b, c, d")
  if a.quick:
    batches, a.calls, a.reps = [16], 3, 1
  print(f"load average before: {os.getloadavg()}; devices: {jax.devices()}", flush=True)
  result: dict = {"a": [], "b": [], "c": []}
  if "a" in tables:
    result["a"] = table_a(datasets(a.quick), batches, a.calls, a.quick)
  if "b" in tables:
    result["b"] = table_b(batches, a.calls)
  if "c" in tables:
    result["c"] = table_c(batches[:1] if a.quick else [64], a.reps)
  if "d" in tables:
    result["d"] = demo(a.before, a.demo_steps, a.reps)
  print(f"load average after: {os.getloadavg()}", flush=True)
  print("\n| dataset | batch | per-example img/s | pipeline w=0 | w=1 | w=2 | on-device img/s | on-device load s |")
  print("|---|---|---|---|---|---|---|---|")
  for r in result["a"]:
    w2 = f"{r['pipeline_w2']:.0f}" if "pipeline_w2" in r else "-"
    print(
      f"| {r['dataset']} | {r['batch']} | {r['per_example_w0']:.0f} | {r['pipeline_w0']:.0f} | "
      f"{r['pipeline_w1']:.0f} | {w2} | {r['on_device']:.0f} | {r['device_load_s']:.1f} |"
    )
  print("\n| batch | host path us/step | on-device us/step |\n|---|---|---|")
  for r in result["b"]:
    print(f"| {r['batch']} | {r['host_path_us']:.0f} | {r['on_device_us']:.0f} |")
  print("\n| DCGAN step | batch | img/s |\n|---|---|---|")
  for r in result["c"]:
    print(f"| {r['size']} px x {r['channels']} | {r['batch']} | {r['img_s']:.0f} |")
  if "d" in result:
    d = result["d"]
    print(f"\ndemo steps/s: before {d['before']:.2f}, after {d['after']:.2f}: {d['after'] / d['before']:.2f}x")
  if a.json:
    with open(a.json, "w") as f:
      json.dump(result, f)
  return 0


if __name__ == "__main__":
  sys.exit(main())
