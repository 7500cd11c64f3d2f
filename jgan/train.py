"""``train_and_evaluate(config, workdir)``: the library entry point that runs a whole experiment.

The loop is host code around the jitted step (:mod:`jgan.step`): it places batches on the mesh, logs
metrics every ``train.log_every`` steps (the only host sync; NaN/Inf are caught there with the step
range they appeared in), writes sample grids of a fixed z, and at the end a loss plot and, for 2-D data,
a scatter plot over the mixture's modes.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from importlib import metadata

import jax
import numpy as np

from jgan import config as config_lib
from jgan import data as data_lib
from jgan import parallel, plots, state as state_lib, step as step_lib, writers

FIXED_Z_TAG = 0xF1C5ED  # fold_in tag of the fixed z used for sample grids


def library_versions() -> dict[str, str]:
  """Versions of Python and the packages that decide a run's numbers."""
  out = {"python": platform.python_version()}
  for pkg in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "tensorflow-datasets", "numpy",
              "jgan"):
    try:
      out[pkg] = metadata.version(pkg)
    except metadata.PackageNotFoundError:
      out[pkg] = "not installed"
  return out


def write_run_info(config, workdir: str) -> None:
  """Writes the resolved config (``config.json``) and versions / seed / devices (``run_info.json``)."""
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True))
  info = {"versions": library_versions(), "seed": config.seed, "argv": sys.argv,
          "devices": [str(d) for d in jax.devices()], "process_count": jax.process_count(),
          "xla_flags": os.environ.get("XLA_FLAGS", "")}
  with open(os.path.join(workdir, "run_info.json"), "w") as f:
    json.dump(info, f, indent=2)


def stack_batch(host_batch: dict[str, np.ndarray], n_critic: int, k: int) -> dict[str, np.ndarray]:
  """[k * n_critic * B, ...] host arrays -> [n_critic, B, ...] (or [k, n_critic, B, ...] if k > 1)."""
  lead = (k, n_critic) if k > 1 else (n_critic,)
  return {name: v.reshape(lead + (-1,) + v.shape[1:]) for name, v in host_batch.items() if name in ("image", "x")}


def check_finite(rows: list[dict[str, np.ndarray]], first_step: int) -> None:
  """Raises FloatingPointError naming the first non-finite metric and the step range it appeared in."""
  for name in rows[0]:
    vals = np.concatenate([np.ravel(r[name]) for r in rows])
    bad = np.flatnonzero(~np.isfinite(vals))
    if bad.size:
      last = first_step + len(vals) - 1
      raise FloatingPointError(
          f"metric {name!r} became {vals[bad[0]]} at step {first_step + bad[0]} (checked steps "
          f"{first_step}..{last}); lower the learning rates or check the data")


def save_samples(state, sample_fn, fixed_z, workdir: str, step: int, writer, config) -> str:
  """Writes the fixed-z sample grid (images) or scatter plot (2-D) for ``step``; returns its path."""
  x = np.asarray(jax.device_get(sample_fn(state, fixed_z)))
  os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
  path = os.path.join(workdir, "samples", f"step_{step:07d}.png")
  if x.ndim == 4:
    grid = writers.image_grid(x)
    writer.image(step, "samples", grid)
    return writers.save_png(path, grid, scale=2 if x.shape[1] <= 32 else 1)
  from jgan.data import mixtures

  from jgan.metrics import modes

  centres, sigma = mixtures.mixture(config.data.name)
  real = mixtures.sample(config.data.name, len(x), np.random.default_rng(0))
  m = modes.mode_metrics(x, centres, sigma)
  title = (f"{config.data.name}, step {step}: {m['modes']}/{len(centres)} modes, "
           f"{100 * m['high_quality']:.0f}% high quality")
  return plots.scatter_2d(x, centres, path, title=title, real=real)


def train_and_evaluate(config, workdir: str) -> state_lib.GANState:
  """Trains the GAN described by ``config``, writing everything into ``workdir``; returns the final state.

  Raises ValueError for an invalid config before anything is compiled, FileNotFoundError for a dataset
  that is not prepared, FloatingPointError when a metric becomes NaN/Inf.
  """
  config = config_lib.resolve(config)
  mesh = parallel.make_mesh(config.parallel.num_devices)
  parallel.check_batch_size(config.train.batch_size, mesh)
  t = config.train
  k, n_critic = t.steps_per_call, t.n_critic
  sh = parallel.make_shardings(mesh, k)
  is_writer = jax.process_index() == 0
  writer = writers.RunWriter(workdir, enabled=is_writer)
  if is_writer:
    write_run_info(config, workdir)

  data_shape = data_lib.sample_shape(config.data)
  rng = jax.random.key(config.seed)
  state = jax.device_put(state_lib.create_state(config, data_shape, rng), sh.replicated)
  per_call = t.batch_size * n_critic * k
  it = data_lib.make_iterator(config.data, per_call // jax.process_count(), seed=config.seed,
                              shard_index=jax.process_index(), shard_count=jax.process_count())
  train_step = step_lib.make_train_step(config, sh.replicated, sh.batch, sh.data)
  fixed_z = jax.random.normal(jax.random.fold_in(rng, FIXED_Z_TAG), (t.num_samples, config.model.latent_dim))
  sample_fn = jax.jit(lambda s, z: state_lib.generator_fn(s)(z))

  try:
    step = int(state.step)
    pending, first_pending = [], step + 1
    bar = None
    if t.progress and is_writer:
      from tqdm import tqdm

      bar = tqdm(total=t.steps, initial=step, unit="step", dynamic_ncols=True, desc=os.path.basename(workdir))
    t0, last_log_step = time.perf_counter(), step
    while step < t.steps:
      batch = jax.device_put(stack_batch(next(it), n_critic, k), sh.batch)
      state, metrics = train_step(state, batch)
      step += k
      pending.append(metrics)
      if bar is not None:
        bar.update(k)
      if step % t.log_every == 0 or step == t.steps:
        rows = jax.device_get(pending)
        check_finite(rows, first_pending)
        means = {name: float(np.mean([np.mean(r[name]) for r in rows])) for name in rows[0]}
        now = time.perf_counter()
        means["steps_per_sec"] = (step - last_log_step) / max(now - t0, 1e-9)
        t0, last_log_step = now, step
        writer.scalars(step, means)
        if bar is not None:
          bar.set_postfix(d_loss=f"{means['d_loss']:.3f}", g_loss=f"{means['g_loss']:.3f}")
        pending, first_pending = [], step + 1
      if is_writer and t.sample_every and step % t.sample_every == 0 and step != t.steps:
        save_samples(state, sample_fn, fixed_z, workdir, step, writer, config)
    if bar is not None:
      bar.close()
    if is_writer:
      final = save_samples(state, sample_fn, fixed_z, workdir, step, writer, config)
      shutil.copyfile(final, os.path.join(workdir, "samples_final.png"))
      plots.plot_losses(writers.read_jsonl(os.path.join(workdir, "metrics.jsonl")), os.path.join(workdir, "losses.png"))
      writer.flush()
      print(f"final samples: {os.path.join(workdir, 'samples_final.png')}")
  finally:
    writer.close()
  return state
