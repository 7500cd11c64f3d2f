"""Preemption: SIGTERM / SIGINT become "save a checkpoint and stop", agreed by every process.

The training loop (:func:`jgan.train.train_and_evaluate`) installs a :class:`PreemptionGuard` before
it restores or compiles anything, and asks :func:`stop_signal` after every jitted call whether to stop;
then it saves a checkpoint at the step reached and returns.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import jax

from jgan import multihost

# Exit status of `jgan train` when a signal stopped it after saving a checkpoint: "preempted, resume
# me", distinct from 0 (finished) and 2 (an error). 75 is sysexits' EX_TEMPFAIL ("try again later");
# a SLURM script requeues on it (docs/multihost.md).
EXIT_PREEMPTED = 75


class PreemptionGuard:
  """Context manager turning SIGTERM / SIGINT into a request: ``.signal`` becomes the signal's name.

  The training loop polls ``.signal`` between steps, saves a checkpoint and exits cleanly. The first
  signal restores the previous handlers, so a second one acts as usual (e.g. Ctrl-C twice aborts).
  Handlers can only be installed from the main thread; elsewhere the guard does nothing.
  """

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.signal: str | None = None
    self._previous: dict[int, Any] = {}

  def _handle(self, signum, frame) -> None:
    del frame
    self.signal = signal.Signals(signum).name
    self._restore()

  def _restore(self) -> None:
    for s, h in self._previous.items():
      signal.signal(s, h)
    self._previous = {}

  def __enter__(self) -> PreemptionGuard:
    if threading.current_thread() is threading.main_thread():
      for s in self.SIGNALS:
        self._previous[s] = signal.signal(s, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    self._restore()


def stop_signal(guard: PreemptionGuard, calls: int, every: int) -> str | None:
  """The signal after which training stops now (None: go on), checked after each jitted call.

  One process: its own. Several: any process's, looked at only every ``every`` calls (the logging
  interval, a host sync anyway) and agreed on by all of them, so all stop after the same step and save
  the same checkpoint together even if the signal reached them at different steps, or reached one only.
  """
  if jax.process_count() == 1:
    return guard.signal
  return multihost.any_signal(guard.signal) if calls % every == 0 else None
