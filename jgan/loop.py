"""The training loop: the one loop that trains a single run (:mod:`jgan.train`) and an ensemble
(:mod:`jgan.ensemble`).

What is stepped and written differs between the two and comes from a :class:`Trainer`; *when* things
happen is decided here only, by one cadence rule per periodic action (big_vision's ``itstime``):

* log (``train.log_every``, and before every save: a save closes the logging window), then check the
  workdir lock (deleted workdir, another run);
* evaluate (``evals.every_steps``);
* save a checkpoint (``checkpoint.every_steps``, the last step, and every evaluated step so that
  ``checkpoint.best_metric`` can keep it);
* sample grids (``train.sample_every``, not at the last step: the final grid is written at the end);
* the stop signal (SIGTERM / SIGINT, :mod:`jgan.preemption`) after every call, agreed by all processes
  every ``train.log_every`` steps in multi-process runs.

A signal before the first step stops the run with nothing saved; a later one saves a checkpoint at the
step reached. NaN/Inf (a :class:`FloatingPointError` from the trainer) is re-raised naming what survives.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from jgan import preemption
from jgan.progress import Progress

log = logging.getLogger(__name__)


def itstime(step: int, every: int, total: int | None = None) -> bool:
  """Whether work done every ``every`` steps (0: never) is due after ``step``; also after the last step
  ``total`` when it is given."""
  return (every > 0 and step % every == 0) or step == total


class Trainer(Protocol):
  """What the loop steps and writes: one run, or the members of an ensemble.

  ``step`` runs one jitted call (``train.steps_per_call`` steps) on the next batch and keeps its metrics
  pending; ``log`` checks and writes them (the window's means for the progress line, or None);
  ``evaluate`` returns eval results or None (nothing due or configured); ``save`` saves checkpoint
  ``step`` (with ``results`` for ranking); ``samples`` writes the sample grids; ``finish`` the final
  files; ``wait`` waits for the asynchronous saves; ``saved`` says what a save at ``step`` wrote and
  ``last_good`` what survives a failure (both for messages).
  """

  def step(self, state: Any) -> Any: ...
  def log(self, step: int) -> dict[str, float] | None: ...
  def evaluate(self, state: Any, step: int) -> dict[str, float] | None: ...
  def save(self, step: int, state: Any, results: dict[str, float] | None = None) -> None: ...
  def samples(self, state: Any, step: int) -> None: ...
  def finish(self, state: Any, step: int) -> None: ...
  def wait(self) -> None: ...
  def saved(self, step: int) -> str: ...
  def last_good(self) -> str: ...


def train_loop(trainer: Trainer, state, start: int, *, config, lock, guard, progress: Progress, resume_hint: str):
  """Trains from step ``start`` to ``config.train.steps``; returns the final state.

  Args:
    trainer: what is stepped and written (:class:`Trainer`).
    state: the state at ``start`` (restored or initial).
    start: the step ``state`` is at.
    config: the (resolved) config: ``train.steps``, ``train.steps_per_call``, ``train.log_every``,
      ``train.sample_every``, ``checkpoint.every_steps`` and ``evals.every_steps`` set the cadences.
    lock: the workdir's :class:`jgan.workdir.WorkdirLock` (checked at every logging step).
    guard: the :class:`jgan.preemption.PreemptionGuard` installed before the set-up.
    progress: the progress display (closed here).
    resume_hint: how to resume, for the messages after a signal.

  Returns the state at the step reached: ``config.train.steps``, or earlier after a signal (the
  checkpoint of that step is saved, or nothing if no step was trained).

  Raises:
    FloatingPointError: NaN/Inf, naming the metric or leaf, the steps and the last good checkpoint.
  """
  t = config.train
  per_call, total = t.steps_per_call, t.steps
  step, calls = start, 0
  stop = preemption.stop_signal(guard, calls, 1)
  if stop is not None and step < total:  # during start-up: no step trained, nothing new to save
    progress.close(step)
    log.info(preemption.startup_message(stop, resume_hint))
    return state
  try:
    while step < total and stop is None:
      state = trainer.step(state)
      step, calls = step + per_call, calls + 1
      progress.step(per_call)
      save_now = itstime(step, config.checkpoint.every_steps, total)
      if itstime(step, t.log_every, total) or save_now:  # a save also closes the logging window
        progress.logged(step, trainer.log(step))
        lock.check()  # the workdir was deleted, or another run took it over
      results = trainer.evaluate(state, step) if itstime(step, config.evals.every_steps) else None
      if save_now or results:  # an evaluated state is saved too, so checkpoint.best_metric can keep it
        trainer.save(step, state, results)
      if itstime(step, t.sample_every) and step != total:
        trainer.samples(state, step)
      stop = preemption.stop_signal(guard, calls, max(1, t.log_every // per_call))
    if stop is not None:
      # The open logging window goes into the checkpoint, not into metrics.jsonl: the resumed run
      # completes it, so its rows are those of an uninterrupted run.
      trainer.save(step, state)
      trainer.wait()
      progress.close(step)
      log.info(f"\n{stop} received: {trainer.saved(step)} at step {step} of {total}; {resume_hint}")
      return state
  except FloatingPointError as e:
    raise FloatingPointError(f"{e}; {trainer.last_good()}") from None
  progress.close(step)
  trainer.finish(state, step)
  return state
