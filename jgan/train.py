"""``train_and_evaluate(config, workdir)``: the library entry point that runs a whole experiment.

The loop is host code around the jitted step (:mod:`jgan.step`): it places batches on the mesh, logs
metrics every ``train.log_every`` steps (the only regular host sync; NaN/Inf are caught there with the
step range they appeared in), saves a checkpoint every ``checkpoint.every_steps`` steps and at the end,
writes sample grids of a fixed z, and at the end a loss plot and, for 2-D data, a scatter plot.

Resume and failures (see :mod:`jgan.checkpoint`):

* a workdir that holds checkpoints resumes from the latest one that restores: the whole state and the
  data iterator continue exactly, so the resumed run is bit-identical to an uninterrupted one;
* SIGTERM / SIGINT: a checkpoint is saved at the current step and the function returns normally,
  printing the command that resumes;
* NaN/Inf: FloatingPointError naming the metric, the step range and the last good checkpoint. A
  checkpoint is only written after every metric up to its step was checked finite (and its float
  leaves too), so a bad state is never saved.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from jgan import checkpoint as ckpt_lib
from jgan import components, multihost, plots, preemption, rng, run_info, sharding, writers
from jgan import config as config_lib
from jgan import data as data_lib
from jgan import state as state_lib
from jgan import step as step_lib


def stack_batch(
  host_batch: dict[str, np.ndarray], n_critic: int, k: int, keys: tuple[str, ...] = ("x",)
) -> dict[str, np.ndarray]:
  """[k * n_critic * B, ...] host arrays -> [n_critic, B, ...] (or [k, n_critic, B, ...] if k > 1).

  Only ``keys`` are kept: ``("x",)``, or ``("x", "label")`` for class-conditional runs.
  """
  lead = (k, n_critic) if k > 1 else (n_critic,)
  return {name: v.reshape(lead + (-1,) + v.shape[1:]) for name, v in host_batch.items() if name in keys}


def check_finite(rows: list[dict[str, np.ndarray]], first_step: int) -> None:
  """Raises FloatingPointError naming the earliest non-finite metric and the step range checked.

  ``rows`` are the host metrics of consecutive steps starting at ``first_step`` (each value a scalar, or
  ``[k]`` for ``k`` fused steps). Among metrics that go bad at the same step, the first by name is named.
  """
  first_bad = {}
  for name in rows[0]:
    vals = np.concatenate([np.ravel(r[name]) for r in rows])
    bad = np.flatnonzero(~np.isfinite(vals))
    if bad.size:
      first_bad[name] = (int(bad[0]), vals[bad[0]])
  if first_bad:
    name = min(first_bad, key=lambda n: first_bad[n][0])
    i, value = first_bad[name]
    last = first_step + sum(np.size(r[name]) for r in rows) - 1
    raise FloatingPointError(
      f"metric {name!r} became {value} at step {first_step + i} (checked steps "
      f"{first_step}..{last}); lower the learning rates or check the data"
    )


@jax.jit
def _finite_flags(state: state_lib.GANState) -> jax.Array:
  """bool [n_float_leaves]: whether each floating-point leaf of ``state`` is entirely finite."""
  leaves = [x for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.floating)]
  return jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])


def check_state_finite(state: state_lib.GANState, step: int) -> None:
  """Raises FloatingPointError naming the first NaN/Inf leaf of ``state`` (e.g. ``.g_params['w']``)."""
  flags = np.asarray(_finite_flags(state))
  if not flags.all():
    paths = [
      jax.tree_util.keystr(p)
      for p, x in jax.tree_util.tree_flatten_with_path(state)[0]
      if jnp.issubdtype(x.dtype, jnp.floating)
    ]
    raise FloatingPointError(
      f"state leaf {paths[int(np.argmin(flags))]} is NaN/Inf after step {step} "
      f"(its metrics were finite); lower the learning rates or check the data"
    )


class MetricsLog:
  """Per-step metrics kept on device until a flush: then checked finite and written as window means."""

  def __init__(self, writer: writers.RunWriter, step: int):
    self.writer = writer
    self.pending: list = []  # device metrics of steps first..step
    self.rows: list[dict[str, np.ndarray]] = []  # host copies already checked finite
    self.first = step + 1
    self.t0, self.last_step = time.perf_counter(), step

  def add(self, metrics: dict[str, jax.Array]) -> None:
    self.pending.append(metrics)

  def check(self) -> None:
    """Fetches the pending metrics (a host sync) and raises FloatingPointError on NaN/Inf."""
    if self.pending:
      new = jax.device_get(self.pending)
      check_finite(new, self.first + len(self.rows) * self._per_row())
      self.rows += new
      self.pending = []

  def _per_row(self) -> int:
    rows = self.rows or self.pending
    return int(np.size(next(iter(rows[0].values())))) if rows else 1

  def flush(self, step: int) -> dict[str, float] | None:
    """Checks and writes the means since the last flush as the row of ``step``; returns them."""
    self.check()
    if not self.rows:
      return None
    means = {name: float(np.mean([np.mean(r[name]) for r in self.rows])) for name in self.rows[0]}
    now = time.perf_counter()
    means["steps_per_sec"] = (step - self.last_step) / max(now - self.t0, 1e-9)
    self.t0, self.last_step = now, step
    self.writer.scalars(step, means)
    self.rows, self.first = [], step + 1
    return means


def drop_metrics_after(workdir: str, step: int) -> None:
  """Removes rows with ``step > step`` (and torn lines) from ``metrics.jsonl``: the resumed run rewrites them."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return
  keep = []
  with open(path) as f:
    for line in f:
      try:
        if json.loads(line)["step"] <= step:
          keep.append(line if line.endswith("\n") else line + "\n")
      except (ValueError, KeyError, TypeError):
        continue  # a line torn by a kill
  with open(path + ".tmp", "w") as f:
    f.writelines(keep)
  os.replace(path + ".tmp", path)


def save_samples(state, key: jax.Array, workdir: str, step: int, writer, config, write: bool = True) -> str | None:
  """Writes the sample grid (images) or scatter plot (2-D) of the fixed noise drawn from ``key`` for
  ``step``; returns its path.

  Every process must call it (the samples are computed on the mesh); only the one with ``write`` writes.
  """
  x = np.asarray(jax.device_get(state_lib.sample(state, key, config.train.num_samples)))
  if not write:
    return None
  os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
  path = os.path.join(workdir, "samples", f"step_{step:07d}.png")
  if x.ndim == 4:
    # A conditional G draws class i % K for sample i: K columns show one class each.
    k = state.num_classes
    grid = writers.image_grid(x, ncols=k if 0 < k <= 20 and len(x) >= k else None)
    writer.image(step, "samples", grid)
    return writers.save_png(path, grid, scale=2 if x.shape[1] <= 32 else 1)
  from jgan.data import mixtures
  from jgan.metrics import modes

  centres, sigma = mixtures.get(config.data.name)
  real = mixtures.sample(config.data.name, len(x), np.random.default_rng(0))
  m = modes.mode_metrics(x, centres, sigma)
  title = (
    f"{config.data.name}, step {step}: {m['modes']}/{len(centres)} modes, {100 * m['high_quality']:.0f}% high quality"
  )
  return plots.scatter_2d(x, centres, path, title=title, real=real)


def _resume_hint(workdir: str, resume_command: str | None) -> str:
  if resume_command:
    return f"resume with: {resume_command}"
  return f"resume by calling jgan.train.train_and_evaluate(config, {workdir!r}) again with the same config"


def train_and_evaluate(config, workdir: str, *, resume_command: str | None = None) -> state_lib.GANState:
  """Trains the GAN described by ``config``, writing everything into ``workdir``; returns the final state.

  If ``workdir`` holds checkpoints, training resumes from the latest one (see the module docstring).
  ``resume_command`` is the shell command printed after a SIGTERM/SIGINT (launch.py passes its own).
  On a signal the state at the step reached is returned (``state.step < config.train.steps``).

  Raises ValueError for an invalid config (or one that differs from the checkpoint's in a field that
  changes the result) before anything is compiled, FileNotFoundError for a dataset that is not
  prepared, FloatingPointError when a metric or the state becomes NaN/Inf, CheckpointError when
  checkpoints exist but none restores.
  """
  config = config_lib.resolve(config)
  multihost.check_same_config(config, workdir)  # multi-process: one program everywhere (else a no-op)
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ValueError(f"workdir={workdir!r} exists and is not a directory")
  mesh = sharding.make_mesh(config.parallel.num_devices)
  sharding.check_batch_size(config.train.batch_size, mesh)
  t = config.train
  k, n_critic = t.steps_per_call, t.n_critic
  sh = sharding.make_shardings(mesh, k)
  is_writer = jax.process_index() == 0
  data_shape = data_lib.sample_shape(config.data)
  keys = rng.run_keys(config.seed)  # one key per purpose: init, train, samples, eval
  parts = components.build(config, data_shape)  # validates every component before anything compiles

  ckpt = ckpt_lib.Checkpointer(
    ckpt_lib.checkpoint_dir(workdir), config.checkpoint, config=config, versions=run_info.library_versions()
  )
  writer = None
  # Installed before restoring and compiling, so a signal at any point ends in a checkpoint.
  guard = preemption.PreemptionGuard().__enter__()
  try:
    restored = ckpt.restore(
      ckpt_lib.abstract_state(parts, sh.replicated),
      config=config,
      allow_config_change=config.checkpoint.allow_config_change,
      quarantine=True,
    )
    per_call = t.batch_size * n_critic * k
    # Every process consumes the same number of batches, so process 0's iterator state (the one saved)
    # is every process's state.
    it = data_lib.make_iterator(
      config.data,
      per_call // jax.process_count(),
      seed=config.seed,
      shard_index=jax.process_index(),
      shard_count=jax.process_count(),
    )
    if restored is None:
      state = sharding.put_replicated(state_lib.create_state(parts, keys.train), sh.replicated)
    else:
      state = restored.state
      it.set_state(restored.data_state)
      print(f"resumed from {ckpt.path(restored.step)} (step {restored.step})", file=sys.stderr)
      if restored.versions and restored.versions != run_info.library_versions():
        print(
          f"warning: the checkpoint was written with other library versions ({restored.versions}); "
          f"the resumed run may not be bit-identical to an uninterrupted one",
          file=sys.stderr,
        )
      if is_writer:
        drop_metrics_after(workdir, restored.step)
    if is_writer:
      run_info.write_run_info(config, workdir, None if restored is None else restored.step)
    writer = writers.RunWriter(workdir, enabled=is_writer)
    train_step = step_lib.make_train_step(parts, k, sh.replicated, sh.batch, sh.data)
    sample_key = keys.samples  # the same z for every grid of the run
    batch_keys = ("x", "label") if parts.num_classes else ("x",)

    step = int(state.step)
    log = MetricsLog(writer, step)

    def save(step: int, state, metrics: dict[str, float] | None = None) -> None:
      # Never save a state whose metrics (or leaves) were not yet checked finite. The iterator has
      # produced exactly the batches of steps 1..step, so its state is the one that resumes at step + 1.
      # ``metrics`` (eval results) let checkpoint.best_metric rank the checkpoint.
      log.check()
      check_state_finite(state, step)
      ckpt.save(step, state, it.get_state(), metrics=metrics)

    every = config.checkpoint.every_steps
    evaluator = None
    if config.evals.metrics and config.evals.every_steps:
      from jgan import evaluation

      # Built before the first step: a bad metric name or missing weights fail before any compilation.
      evaluator = evaluation.make_evaluator(config, workdir, progress=bool(t.progress and is_writer))
    best = config.checkpoint.best_metric
    if best and config.checkpoint.keep_best > 0:
      reported = evaluator.result_keys() if evaluator is not None else []
      if best not in reported:  # else no checkpoint would ever be ranked, silently
        raise ValueError(
          f"checkpoint.best_metric={best!r} is not among the evaluation results "
          f"({', '.join(reported) or 'none: set evals.metrics and evals.every_steps'})"
        )
    bar = None
    if t.progress and is_writer:
      from tqdm import tqdm

      bar = tqdm(total=t.steps, initial=step, unit="step", dynamic_ncols=True, desc=os.path.basename(workdir))
    try:
      calls = 0
      stop = preemption.stop_signal(guard, calls, 1)  # the signal that ends training early, if any
      while step < t.steps and stop is None:
        batch = sharding.put_batch(stack_batch(next(it), n_critic, k, batch_keys), sh.batch)  # this process's rows
        state, metrics = train_step(state, batch)
        step += k
        log.add(metrics)
        if bar is not None:
          bar.update(k)
        save_now = step == t.steps or (every and step % every == 0)
        # A save also closes the logging window, so a run resumed from it writes the same rows.
        if step % t.log_every == 0 or save_now:
          means = log.flush(step)
          if bar is not None and means:
            bar.set_postfix(d_loss=f"{means['d_loss']:.3f}", g_loss=f"{means['g_loss']:.3f}")
        results = evaluator(state, step) if evaluator is not None and evaluator.due(step) else None
        if results:
          writer.scalars(step, {f"eval/{name}": v for name, v in results.items()})
        if save_now or results:  # an evaluated state is also saved, so best_metric can keep it
          save(step, state, metrics=results)
        if t.sample_every and step % t.sample_every == 0 and step != t.steps:
          save_samples(state, sample_key, workdir, step, writer, config, write=is_writer)
        calls += 1
        stop = preemption.stop_signal(guard, calls, max(1, t.log_every // k))
      if stop is not None:
        log.flush(step)
        save(step, state)
        ckpt.wait()
        if bar is not None:
          bar.close()
        print(
          f"\n{stop} received: saved checkpoint {ckpt.path(step)} at step {step} of {t.steps}; "
          f"{_resume_hint(workdir, resume_command)}",
          file=sys.stderr,
        )
        return state
    except FloatingPointError as e:
      ckpt.wait()
      last = ckpt.latest_step()
      good = (
        f"the last good checkpoint {ckpt.path(last)} (step {last}) is intact; rerunning on this workdir resumes from it"
        if last is not None
        else "no checkpoint had been saved yet"
      )
      raise FloatingPointError(f"{e}; {good}") from None
    if bar is not None:
      bar.close()
    final = save_samples(state, sample_key, workdir, step, writer, config, write=is_writer)
    if final is not None:  # the writing process
      shutil.copyfile(final, os.path.join(workdir, "samples_final.png"))
      plots.plot_losses(writers.read_jsonl(os.path.join(workdir, "metrics.jsonl")), os.path.join(workdir, "losses.png"))
      writer.flush()
      print(f"final samples: {os.path.join(workdir, 'samples_final.png')}")
  finally:
    guard.__exit__(None, None, None)
    ckpt.close()  # waits for the pending asynchronous save
    if writer is not None:
      writer.close()
  return state
