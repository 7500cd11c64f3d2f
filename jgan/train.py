"""``train_and_evaluate(config, workdir)``: the library entry point that runs a whole experiment.

The loop is host code around the jitted step (:mod:`jgan.step`): it places batches on the mesh, logs
metrics every ``train.log_every`` steps (the only regular host sync; NaN/Inf are caught there with the
step range they appeared in), saves a checkpoint every ``checkpoint.every_steps`` steps and at the end,
writes sample grids of a fixed z, and at the end a loss plot and, for 2-D data, a scatter plot.

Resume and failures (see :mod:`jgan.checkpoint`, :mod:`jgan.workdir`, docs/reliability.md):

* one run per workdir: ``<workdir>/jgan.lock`` names the owner; a second run fails at once
  (:class:`jgan.workdir.WorkdirLocked`), a lock left by a killed run is replaced;
* a workdir that holds checkpoints resumes from the latest one that restores (checksums verified): the
  whole state, the data iterator and the open logging window continue exactly, so the resumed run is
  bit-identical to an uninterrupted one, ``metrics.jsonl`` included (rows after the checkpoint, and
  all rows when no checkpoint was finished, are rewritten; TensorBoard hides the old ones);
* SIGTERM / SIGINT: a checkpoint is saved at the current step and the function returns normally,
  printing the command that resumes;
* NaN/Inf: FloatingPointError naming the metric, the step range and the last good checkpoint. A
  checkpoint is only written after every metric up to its step was checked finite (and its float
  leaves too), so a bad state is never saved;
* a read-only, full or vanished workdir: :class:`jgan.workdir.WorkdirError` (one line) naming the
  file and the last good checkpoint; unfinished checkpoint files are deleted.

Progress: a tqdm bar on a terminal; without one (a SLURM log, a pipe) plain lines at the first logging
step, then at most every :data:`PLAIN_PROGRESS_EVERY_S` seconds, and at the end (``train.progress``).
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
from jgan import workdir as workdir_lib

PLAIN_PROGRESS_EVERY_S = 30.0  # at most one plain progress line this often (not on a terminal)


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

  def window(self) -> dict:
    """The open window (checked rows not yet written) as JSON, saved with a checkpoint.

    ``{"first": step, "names": [...], "rows": [[{"dtype", "shape", "values"} per name] per call]}``.
    The values are float32 numbers written exactly (as float64), so :meth:`load` restores them bit
    for bit and the resumed run's next row is the mean an uninterrupted run writes.
    """
    if not self.rows:
      return {"first": self.first, "names": [], "rows": []}
    names = list(self.rows[0])

    def cell(v):
      return {"dtype": np.asarray(v).dtype.str, "shape": list(np.shape(v)), "values": np.ravel(v).tolist()}

    rows = [[cell(r[n]) for n in names] for r in self.rows]
    return {"first": self.first, "names": names, "rows": rows}

  def load(self, window: dict | None) -> None:
    """Reopens a window saved by :meth:`window` (a resumed run; no-op for None or an empty window)."""
    if not window or not window.get("rows"):
      return
    names = window["names"]
    self.rows = [
      {n: np.asarray(v["values"], np.dtype(v["dtype"])).reshape(v["shape"]) for n, v in zip(names, row)}
      for row in window["rows"]
    ]
    self.first = int(window["first"])


class Progress:
  """Training progress on stderr: a tqdm bar on a terminal, plain lines otherwise (module docstring)."""

  def __init__(self, total: int, initial: int, desc: str, enabled: bool):
    self.total, self.desc, self.initial = total, desc, initial
    self.bar = None
    self.plain = enabled and not sys.stderr.isatty()
    self.t0 = time.perf_counter()
    self.last_line: float | None = None
    self.last_step = initial
    self.means: dict[str, float] | None = None
    if enabled and not self.plain:
      from tqdm import tqdm

      self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, desc=desc)

  def step(self, k: int) -> None:
    if self.bar is not None:
      self.bar.update(k)

  def logged(self, step: int, means: dict[str, float] | None) -> None:
    """Called at each logging step with the window's means."""
    if not means:
      return
    self.means = means
    if self.bar is not None:
      self.bar.set_postfix(d_loss=f"{means['d_loss']:.3f}", g_loss=f"{means['g_loss']:.3f}")
    elif self.plain:
      now = time.perf_counter()
      if self.last_line is None or now - self.last_line >= PLAIN_PROGRESS_EVERY_S:
        self._line(step, now)

  def _line(self, step: int, now: float) -> None:
    self.last_line, self.last_step = now, step
    rate = (step - self.initial) / max(now - self.t0, 1e-9)
    eta = (self.total - step) / rate if rate > 0 else float("nan")
    losses = "".join(f", {k} {self.means[k]:.4f}" for k in ("d_loss", "g_loss") if self.means and k in self.means)
    eta_text = time.strftime("%H:%M:%S", time.gmtime(eta)) if np.isfinite(eta) and eta < 86400 * 365 else "?"
    print(
      f"{self.desc}: step {step}/{self.total} ({100 * step / max(self.total, 1):.0f}%){losses}, "
      f"{rate:.2f} steps/s, eta {eta_text}",
      file=sys.stderr,
      flush=True,
    )

  def close(self, step: int) -> None:
    if self.bar is not None:
      self.bar.close()
      self.bar = None
    elif self.plain and step != self.last_step:
      self._line(step, time.perf_counter())


def drop_metrics_after(workdir: str, step: int) -> None:
  """Removes rows with ``step > step`` (and torn lines) from ``metrics.jsonl``: the resumed run rewrites
  them (``step = 0`` when no checkpoint was finished: a run killed before its first checkpoint)."""
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
  try:
    with open(path + ".tmp", "w") as f:
      f.writelines(keep)
    os.replace(path + ".tmp", path)
  except OSError:
    if os.path.exists(path + ".tmp"):  # e.g. a full disk: the original stays as it was
      os.remove(path + ".tmp")
    raise


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


def resume_hint(workdir: str, resume_command: str | None) -> str:
  """How to resume the run in ``workdir``: the shell command (``resume_command``), else the library call."""
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
  checkpoints exist but none restores, WorkdirLocked when another run holds the workdir, WorkdirError
  (one line) when the workdir cannot be written (read-only, full, vanished).
  """
  config = config_lib.resolve(config)
  if config.train.num_seeds > 1:
    raise ValueError(
      f"train.num_seeds={config.train.num_seeds} trains an ensemble: call "
      f"jgan.ensemble.train_ensemble(config, workdir) (jgan train dispatches to it)"
    )
  multihost.check_same_config(config, workdir)  # multi-process: one program everywhere (else a no-op)
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ValueError(f"workdir={workdir!r} exists and is not a directory")
  # One run per workdir, taken before anything touches it (a second run's checkpoint manager would
  # delete this run's unfinished save) and before the slow set-up, so a second run is refused at once;
  # read-only / full directories fail here too.
  lock = workdir_lib.lock_run(workdir)
  ckpt = None
  # Installed before restoring and compiling, so a signal at any point ends in a checkpoint.
  guard = preemption.PreemptionGuard().__enter__()
  try:
    mesh = sharding.make_mesh(config.parallel.num_devices)
    sharding.check_batch_size(config.train.batch_size, mesh)
    sh = sharding.make_shardings(mesh, config.train.steps_per_call)
    data_shape = data_lib.sample_shape(config.data)
    keys = rng.run_keys(config.seed)  # one key per purpose: init, train, samples, eval
    parts = components.build(config, data_shape)  # validates every component before anything compiles
    ckpt = ckpt_lib.Checkpointer(
      ckpt_lib.checkpoint_dir(workdir), config.checkpoint, config=config, versions=run_info.library_versions()
    )
    return _train(config, workdir, ckpt, lock, guard, parts, keys, sh, resume_command)
  except OSError as e:
    if not workdir_lib.is_filesystem_error(e, under=workdir):
      raise
    raise _workdir_error(e, ckpt, workdir, resume_command) from e
  finally:
    if ckpt is not None:
      ckpt.close(quiet=sys.exc_info()[0] is not None)  # waits (bounded) for the pending asynchronous save
    guard.__exit__(None, None, None)  # after the last wait, so a signal during it cannot interrupt it
    lock.release()


def _workdir_error(e: OSError, ckpt, workdir: str, resume_command: str | None) -> workdir_lib.WorkdirError:
  """A filesystem error as one line: what failed, what survives, how to go on. Deletes unfinished saves."""
  if isinstance(e, workdir_lib.WorkdirError) and "last good checkpoint" in str(e):
    return e
  last = None
  if ckpt is not None:
    ckpt.abandon()
    done = ckpt._finished_on_disk()
    last = done[-1] if done else None
  good = (
    f"the last good checkpoint {ckpt.path(last)} (step {last}) is intact; fix the directory and "
    f"{resume_hint(workdir, resume_command)}"
    if last is not None and ckpt is not None
    else "no finished checkpoint is left"
  )
  what = e.message if isinstance(e, workdir_lib.WorkdirError) else f"cannot write the run: {workdir_lib.describe(e)}"
  return workdir_lib.WorkdirError(f"{what}; {good}", e.errno)


def _train(config, workdir, ckpt, lock, guard, parts, keys, sh, resume_command) -> state_lib.GANState:
  """The body of :func:`train_and_evaluate` once the workdir is locked and the checkpointer open."""
  t = config.train
  k, n_critic = t.steps_per_call, t.n_critic
  is_writer = jax.process_index() == 0
  writer = None
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
    start = 0 if restored is None else restored.step
    purge = None
    if is_writer:
      # Rows after the resumed step (all rows when no checkpoint was finished) are written again.
      drop_metrics_after(workdir, start)
      run_info.write_run_info(config, workdir, None if restored is None else restored.step)
      tb = os.path.join(workdir, "tb")
      purge = start + 1 if os.path.isdir(tb) and os.listdir(tb) else None
    writer = writers.RunWriter(workdir, enabled=is_writer, purge_step=purge)
    train_step = step_lib.make_train_step(parts, k, sh.replicated, sh.batch, sh.data)
    sample_key = keys.samples  # the same z for every grid of the run
    batch_keys = ("x", "label") if parts.num_classes else ("x",)

    step = int(state.step)
    log = MetricsLog(writer, step)
    if restored is not None:
      log.load(restored.log_window)  # the logging window open at the checkpoint

    def save(step: int, state, metrics: dict[str, float] | None = None) -> None:
      # Never save a state whose metrics (or leaves) were not yet checked finite. The iterator has
      # produced exactly the batches of steps 1..step, so its state is the one that resumes at step + 1.
      # ``metrics`` (eval results) let checkpoint.best_metric rank the checkpoint. TensorBoard is
      # flushed first, so its events up to ``step`` are on disk whenever the checkpoint is.
      log.check()
      check_state_finite(state, step)
      lock.check()  # never re-create a deleted workdir (Orbax would make the checkpoint's parents)
      writer.flush()
      ckpt.save(step, state, it.get_state(), metrics=metrics, log_window=log.window())

    every = config.checkpoint.every_steps
    evaluator = None
    if config.evals.metrics and config.evals.every_steps:
      from jgan import evaluation

      # Built before the first step: a bad metric name or missing weights fail before any compilation.
      evaluator = evaluation.make_evaluator(
        config, workdir, progress=bool(t.progress and is_writer and sys.stderr.isatty())
      )
    best = config.checkpoint.best_metric
    if best and config.checkpoint.keep_best > 0:
      reported = evaluator.result_keys() if evaluator is not None else []
      if best not in reported:  # else no checkpoint would ever be ranked, silently
        raise ValueError(
          f"checkpoint.best_metric={best!r} is not among the evaluation results "
          f"({', '.join(reported) or 'none: set evals.metrics and evals.every_steps'})"
        )
    progress = Progress(t.steps, step, os.path.basename(os.path.abspath(workdir)), bool(t.progress and is_writer))
    try:
      calls = 0
      stop = preemption.stop_signal(guard, calls, 1)  # the signal that ends training early, if any
      if stop is not None and step < t.steps:  # during start-up: no step trained, nothing new to save
        progress.close(step)
        print(preemption.startup_message(stop, resume_hint(workdir, resume_command)), file=sys.stderr)
        return state
      while step < t.steps and stop is None:
        batch = sharding.put_batch(stack_batch(next(it), n_critic, k, batch_keys), sh.batch)  # this process's rows
        state, metrics = train_step(state, batch)
        step += k
        log.add(metrics)
        progress.step(k)
        save_now = step == t.steps or (every and step % every == 0)
        # A save also closes the logging window, so a run resumed from it writes the same rows.
        if step % t.log_every == 0 or save_now:
          progress.logged(step, log.flush(step))
          lock.check()  # the workdir was deleted, or another run took it over
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
        # The open logging window goes into the checkpoint, not into metrics.jsonl: the resumed run
        # completes it, so its rows are those of an uninterrupted run.
        save(step, state)
        ckpt.wait()
        progress.close(step)
        print(
          f"\n{stop} received: saved checkpoint {ckpt.path(step)} at step {step} of {t.steps}; "
          f"{resume_hint(workdir, resume_command)}",
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
    progress.close(step)
    final = save_samples(state, sample_key, workdir, step, writer, config, write=is_writer)
    if final is not None:  # the writing process
      shutil.copyfile(final, os.path.join(workdir, "samples_final.png"))
      plots.plot_losses(writers.read_jsonl(os.path.join(workdir, "metrics.jsonl")), os.path.join(workdir, "losses.png"))
      writer.flush()
      print(f"final samples: {os.path.join(workdir, 'samples_final.png')}")
    ckpt.wait()  # the final checkpoint is on disk before the function returns
    return state
  finally:
    if writer is not None:
      try:
        writer.close()
      except OSError:
        if sys.exc_info()[0] is None:
          raise
