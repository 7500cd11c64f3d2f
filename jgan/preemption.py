"""Preemption: SIGTERM / SIGINT become "save a checkpoint and stop", agreed by every process.

``jgan train`` installs a :class:`PreemptionGuard` as the first thing it does, before its slow imports,
and the training loop (:func:`jgan.train.train_and_evaluate`) installs its own before it restores or
compiles anything; the loop's guard takes over a signal the outer one already caught. The loop asks
:func:`stop_signal` after every jitted call whether to stop; then it saves a checkpoint at the step
reached and returns. A signal that arrives before the first step (imports, restore, set-up) stops the
run with nothing saved (:func:`startup_message`). Either way ``jgan train`` exits with
:data:`EXIT_PREEMPTED`.

Repeated signals are absorbed: schedulers send several SIGTERMs, and a second one must not kill the run
while it writes its emergency checkpoint. Each repeat prints one line; SIGKILL still ends the process
at once (the run then resumes from its last finished checkpoint, bit-identically).

This module imports no JAX at import time, so the command line can install a guard before anything slow.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

# Exit status of `jgan train` when a signal stopped it (after saving a checkpoint, or before the first
# step with nothing to save): "preempted, resume me", distinct from 0 (finished) and 2 (an error). 75 is
# sysexits' EX_TEMPFAIL ("try again later"); a SLURM script requeues on it (docs/multihost.md).
EXIT_PREEMPTED = 75


class PreemptionGuard:
  """Context manager turning SIGTERM / SIGINT into a request: ``.signal`` becomes the first signal's name.

  The training loop polls ``.signal`` between steps, saves a checkpoint and exits cleanly. Every further
  signal is counted in ``.repeats`` and absorbed (one line on stderr), so the checkpoint being written
  is never cut short. Guards nest: a guard entered while another one handles the signals starts with
  the signal the outer one caught, and leaving it hands the signals back to the outer one. Handlers can
  only be installed from the main thread; elsewhere the guard does nothing.
  """

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.signal: str | None = None
    self.repeats = 0
    self._previous: dict[int, Any] = {}

  def _handle(self, signum, frame) -> None:
    del frame
    name = signal.Signals(signum).name
    if self.signal is None:
      self.signal = name
      return
    self.repeats += 1
    # os.write: safe in a signal handler (print could re-enter a buffered stream being written).
    os.write(2, f"\n{name} received again: still stopping; SIGKILL ends the run at once\n".encode())

  def _restore(self) -> None:
    for s, h in self._previous.items():
      signal.signal(s, h)
    self._previous = {}

  def __enter__(self) -> PreemptionGuard:
    if threading.current_thread() is threading.main_thread():
      for s in self.SIGNALS:
        previous = signal.signal(s, self._handle)
        self._previous[s] = previous
        outer = getattr(previous, "__self__", None)
        if isinstance(outer, PreemptionGuard) and self.signal is None:
          self.signal = outer.signal
    return self

  def __exit__(self, *exc) -> None:
    self._restore()


def startup_message(name: str, resume_hint: str) -> str:
  """The line printed when signal ``name`` stopped a run before its first step (nothing saved by it)."""
  return f"{name} received during start-up, before the first step: nothing was saved by this run; {resume_hint}"


def stop_signal(guard: PreemptionGuard, calls: int, every: int) -> str | None:
  """The signal after which training stops now (None: go on), checked after each jitted call.

  One process: its own. Several: any process's, looked at only every ``every`` calls (the logging
  interval, a host sync anyway) and agreed on by all of them, so all stop after the same step and save
  the same checkpoint together even if the signal reached them at different steps, or reached one only.
  """
  import jax

  if jax.process_count() == 1:
    return guard.signal
  from jgan import multihost

  return multihost.any_signal(guard.signal) if calls % every == 0 else None
