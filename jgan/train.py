"""``train_and_evaluate(config, workdir)``: the library entry point that runs a whole experiment.

It builds the run (mesh, components, checkpointer, data iterator, outputs) and hands a :class:`RunTrainer`
to the training loop (:func:`jgan.loop.train_loop`, shared with ensembles), which steps it: batches are
placed on the mesh, metrics logged every ``train.log_every`` steps (the only regular host sync; NaN/Inf
are caught there with the step range they appeared in), a checkpoint saved every
``checkpoint.every_steps`` steps and at the end, sample grids of a fixed z written, and at the end a
loss plot and, for 2-D data, a scatter plot.

Resume and failures (see :mod:`jgan.checkpoint`, :mod:`jgan.workdir`, docs/reliability.md):

* one run per workdir: ``<workdir>/jgan.lock`` names the owner; a second run fails at once
  (:class:`jgan.workdir.WorkdirLocked`), a lock left by a killed run is replaced;
* a workdir that holds checkpoints resumes from the latest one that restores (checksums verified): the
  whole state, the data iterator and the open logging window continue exactly, so the resumed run is
  bit-identical to an uninterrupted one, ``metrics.jsonl`` included (rows after the checkpoint, and
  all rows when no checkpoint was finished, are rewritten; TensorBoard hides the old ones);
* SIGTERM / SIGINT: a checkpoint is saved at the current step (nothing, before the first step) and the
  function returns normally, logging the command that resumes;
* NaN/Inf: FloatingPointError naming the metric, the step range and the last good checkpoint. A
  checkpoint is only written after every metric up to its step was checked finite (and its float
  leaves too), so a bad state is never saved;
* a read-only, full or vanished workdir: :class:`jgan.fs_errors.WorkdirError` (one line) naming the
  file and the last good checkpoint; unfinished checkpoint files are deleted.

Progress: :class:`jgan.progress.Progress` (``train.progress``). Messages (resumed, stopped, final
files) go to the ``jgan`` logger; the command line prints them.
"""

from __future__ import annotations

import functools
import logging
import sys

import jax
import numpy as np

from jgan import checkpoint as ckpt_lib
from jgan import components as components_lib
from jgan import config as config_lib
from jgan import data as data_lib
from jgan import filesystem_errors as fs_errors
from jgan import multihost, preemption, resume, rng, run_info, sharding, storage
from jgan import state as state_lib
from jgan import step as step_lib
from jgan import workdir as workdir_lib
from jgan.data import on_device
from jgan.loop import train_loop
from jgan.outputs import RunOutputs
from jgan.progress import Progress

log = logging.getLogger(__name__)


def stack_batch(
  host_batch: dict[str, np.ndarray], n_critic: int, steps_per_call: int, keys: tuple[str, ...] = ("x",)
) -> dict[str, np.ndarray]:
  """[steps_per_call * n_critic * B, ...] host arrays -> [n_critic, B, ...] (or [steps_per_call, n_critic,
  B, ...] if steps_per_call > 1).

  Only ``keys`` are kept: ``("x",)``, or ``("x", "label")`` for class-conditional runs.
  """
  lead = (steps_per_call, n_critic) if steps_per_call > 1 else (n_critic,)
  return {name: v.reshape(lead + (-1,) + v.shape[1:]) for name, v in host_batch.items() if name in keys}


def resume_hint(workdir: str, resume_command: str | None) -> str:
  """How to resume the run in ``workdir``: the shell command (``resume_command``), else the library call."""
  if resume_command:
    return f"resume with: {resume_command}"
  return f"resume by calling jgan.train.train_and_evaluate(config, {workdir!r}) again with the same config"


def make_evaluator(config, workdir: str, *, show_progress: bool = False):
  """The periodic evaluator of a run (:func:`jgan.evaluation.make_evaluator`), or None when
  ``evals.metrics`` or ``evals.every_steps`` is unset.

  Built before the first step: a bad metric name or missing weights fail before any compilation, and so
  does a ``checkpoint.best_metric`` that no evaluation reports (no checkpoint would ever be ranked).
  """
  evaluator = None
  if config.evals.metrics and config.evals.every_steps:
    from jgan import evaluation

    evaluator = evaluation.make_evaluator(config, workdir, progress=show_progress and sys.stderr.isatty())
  best = config.checkpoint.best_metric
  if best and config.checkpoint.keep_best > 0:
    reported = evaluator.result_keys() if evaluator is not None else []
    if best not in reported:
      raise ValueError(
        f"checkpoint.best_metric={best!r} is not among the evaluation results "
        f"({', '.join(reported) or 'none: set evals.metrics and evals.every_steps'})"
      )
  return evaluator


class RunTrainer:
  """One run for :func:`jgan.loop.train_loop`: its jitted step, data iterator, outputs and evaluator."""

  def __init__(self, config, workdir, components, shardings, ckpt, restored, *, resume_command=None):
    t = config.train
    self.config, self.workdir, self.ckpt, self.resume_command = config, workdir, ckpt, resume_command
    # Real batches per step: one per critic update (+ G's own, Objective.g_own_batch).
    self.real_batches, self.steps_per_call = components.real_batches(t.n_critic), t.steps_per_call
    self.batch_sharding = shardings.batch
    self.batch_keys = ("x", "label") if components.num_classes else ("x",)
    is_writer = jax.process_index() == 0
    per_process = t.batch_size * self.real_batches * t.steps_per_call // jax.process_count()
    self.device_data = None
    batch_fn = None
    if on_device.use_on_device(config.data, lambda: data_lib.training_source(config.data)):
      # The dataset goes on every device once as uint8; each call gathers and converts its batch inside
      # the jitted step from a two-scalar cursor (jgan.data.on_device): the same batches, bit for bit.
      host, n = on_device.load(config.data, data_lib.training_source(config.data))
      self.device_data = sharding.put_replicated(host, shardings.replicated)
      lead = ((t.steps_per_call,) if t.steps_per_call > 1 else ()) + (self.real_batches, t.batch_size)
      batch_fn = functools.partial(
        on_device.batch,
        offs=on_device.offsets(lead, jax.process_count()),
        n=n,
        seed=config.seed,
        stacked=data_lib.image_spec(config.data).stacked,
        with_labels="label" in self.batch_keys,
      )
      self.it = on_device.make_iterator(config.data, lead, n, jax.process_count())
    else:
      # Every process consumes the same number of batches, so process 0's iterator state (the one saved)
      # is every process's state.
      self.it = data_lib.make_iterator(
        config.data,
        per_process,
        seed=config.seed,
        shard_index=jax.process_index(),
        shard_count=jax.process_count(),
      )
    if restored is not None:
      self.it.set_state(restored.data_state)
    self.out = RunOutputs(workdir, config, ckpt, restored, write=is_writer)
    self.train_step = step_lib.make_train_step(
      components, t.steps_per_call, shardings.replicated, shardings.batch, shardings.data, batch_fn=batch_fn
    )
    self.evaluator = make_evaluator(config, workdir, show_progress=bool(t.progress and is_writer))

  def step(self, state):
    if self.device_data is not None:  # the host sends two scalars; the batch is made on the device
      state, metrics = self.train_step(state, self.device_data, *next(self.it))
    else:
      host = stack_batch(next(self.it), self.real_batches, self.steps_per_call, self.batch_keys)
      state, metrics = self.train_step(state, sharding.put_batch(host, self.batch_sharding))  # this process's rows
    self.out.log.add(metrics)
    return state

  def log(self, step):
    return self.out.log.flush(step)

  def evaluate(self, state, step):
    if self.evaluator is None:
      return None
    results = self.evaluator(state, step)
    if results:
      self.out.writer.scalars(step, {f"eval/{name}": v for name, v in results.items()})
    return results

  def save(self, step, state, results=None):
    self.out.save(step, state, self.it.get_state(), metrics=results)

  def samples(self, state, step):
    self.out.samples(state, step)

  def finish(self, state, step):
    self.out.finish(state, step)
    if self.out.write:
      log.info(f"final samples: {storage.join(self.workdir, 'samples_final.png')}")
    self.ckpt.wait()  # the final checkpoint is on disk before train_and_evaluate returns

  def wait(self):
    self.ckpt.wait()

  def saved(self, step):
    return f"saved checkpoint {self.ckpt.path(step)}"

  def last_good(self):
    self.ckpt.wait()
    last = self.ckpt.latest_step()
    if last is None:
      return "no checkpoint had been saved yet"
    path = self.ckpt.path(last)
    return f"the last good checkpoint {path} (step {last}) is intact; rerunning on this workdir resumes from it"


def train_and_evaluate(config, workdir: str, *, resume_command: str | None = None) -> state_lib.GANState:
  """Trains the GAN described by ``config``, writing everything into ``workdir``; returns the final state.

  If ``workdir`` holds checkpoints, training resumes from the latest one (see the module docstring).
  ``resume_command`` is the shell command logged after a SIGTERM/SIGINT (launch.py passes its own).
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
  if storage.exists(workdir) and not storage.isdir(workdir):
    raise ValueError(f"workdir={workdir!r} exists and is not a directory")
  # One run per workdir, taken before anything touches it (a second run's checkpoint manager would
  # delete this run's unfinished save) and before the slow set-up, so a second run is refused at once;
  # read-only / full directories fail here too.
  lock = workdir_lib.lock_run(workdir)
  ckpt, trainer = None, None
  # Installed before restoring and compiling, so a signal at any point ends in a checkpoint.
  guard = preemption.PreemptionGuard().__enter__()
  try:
    mesh = sharding.make_mesh(config.parallel.num_devices)
    sharding.check_batch_size(config.train.batch_size, mesh)
    shardings = sharding.make_shardings(mesh, config.train.steps_per_call)
    components = components_lib.build(config, data_lib.sample_shape(config.data))  # validates every component
    ckpt = ckpt_lib.Checkpointer(
      ckpt_lib.checkpoint_dir(workdir), config.checkpoint, config=config, versions=run_info.library_versions()
    )
    restored = resume.restore(
      ckpt,
      ckpt_lib.abstract_state(components, shardings.replicated),
      config=config,
      allow_config_change=config.checkpoint.allow_config_change,
      quarantine=True,
    )
    if restored is None:
      state = state_lib.create_state(components, rng.run_keys(config.seed).train)
      state = sharding.put_replicated(state, shardings.replicated)
    else:
      state = restored.state
      log.info(f"resumed from {ckpt.path(restored.step)} (step {restored.step})")
      if (warning := resume.version_warning(restored)) is not None:
        log.warning(warning)
    trainer = RunTrainer(config, workdir, components, shardings, ckpt, restored, resume_command=resume_command)
    start = int(state.step)
    show = bool(config.train.progress and jax.process_index() == 0)
    progress = Progress(config.train.steps, start, storage.basename(storage.abspath(workdir)), show)
    hint = resume_hint(workdir, resume_command)
    return train_loop(trainer, state, start, config=config, lock=lock, guard=guard, progress=progress, resume_hint=hint)
  except OSError as e:
    if not fs_errors.is_filesystem_error(e, under=workdir):
      raise
    raise _workdir_error(e, ckpt, workdir, resume_command) from e
  finally:
    if trainer is not None:
      try:
        trainer.out.close()
      except OSError:
        if sys.exc_info()[0] is None:
          raise
    if ckpt is not None:
      ckpt.close(quiet=sys.exc_info()[0] is not None)  # waits (bounded) for the pending asynchronous save
    guard.__exit__(None, None, None)  # after the last wait, so a signal during it cannot interrupt it
    lock.release()


def _workdir_error(e: OSError, ckpt, workdir: str, resume_command: str | None) -> fs_errors.WorkdirError:
  """A filesystem error as one line: what failed, what survives, how to go on. Deletes unfinished saves."""
  if isinstance(e, fs_errors.WorkdirError) and "last good checkpoint" in str(e):
    return e
  last = None
  if ckpt is not None:
    ckpt.abandon()
    done = ckpt.finished_steps_on_disk()
    last = done[-1] if done else None
  good = (
    f"the last good checkpoint {ckpt.path(last)} (step {last}) is intact; fix the directory and "
    f"{resume_hint(workdir, resume_command)}"
    if last is not None and ckpt is not None
    else "no finished checkpoint is left"
  )
  what = e.message if isinstance(e, fs_errors.WorkdirError) else f"cannot write the run: {fs_errors.describe(e)}"
  return fs_errors.WorkdirError(f"{what}; {good}", e.errno)
