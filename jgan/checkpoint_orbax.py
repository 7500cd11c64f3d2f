"""Work-arounds for Orbax's behaviour under faults, beside the storage (:mod:`jgan.checkpoint`) they serve.

Measured with orbax-checkpoint 0.12.8 / tensorstore 0.1.86 (docs/design.md, docs/reliability.md):

* :func:`manager_options`: the temporary directory of an asynchronous save is created inside ``save``
  (in a background thread, a read-only directory left Orbax's other threads waiting 300 s at exit), and
  Orbax's own clean-up of unfinished saves is off (it ran in a background thread and raced the deletion
  of the same directory; :class:`jgan.checkpoint.Checkpointer` deletes them synchronously instead);
* :func:`bounded`: waits on Orbax run in a daemon thread with a deadline, so a wait cannot hang;
* for the command line (:func:`install_process_hooks`, :func:`exit_now_if_threads_linger`): after a
  failed save, background threads' filesystem errors, callbacks into a closed event loop and Orbax's
  ERROR records with tracebacks become one line each (the failure itself is reported in one line), and
  the process ends with its status even when Orbax's threads still wait.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import orbax.checkpoint as ocp

log = logging.getLogger(__name__)


def manager_options(*, read_only: bool, async_save: bool, preservation_policy=None) -> ocp.CheckpointManagerOptions:
  """``CheckpointManagerOptions`` with jgan's work-arounds (module docstring) for a checkpoint directory."""
  return ocp.CheckpointManagerOptions(
    read_only=read_only,
    create=not read_only,
    cleanup_tmp_directories=False,  # jgan deletes unfinished saves itself, synchronously
    enable_async_checkpointing=async_save,
    preservation_policy=preservation_policy,
    # The temporary directory is created inside save(): a read-only or vanished directory raises
    # there instead of leaving Orbax's background threads waiting for it (300 s at exit).
    async_options=ocp.AsyncOptions(create_directories_asynchronously=False),
  )


def bounded(fn: Callable[[], Any], timeout_s: float) -> BaseException | None:
  """Runs ``fn()`` in a daemon thread for at most ``timeout_s`` seconds; returns its exception (a
  TimeoutError if it did not finish), or None."""
  box: list[BaseException] = []

  def run():
    try:
      fn()
    except BaseException as e:  # noqa: BLE001
      box.append(e)

  t = threading.Thread(target=run, name="jgan-checkpoint-wait", daemon=True)
  t.start()
  t.join(timeout_s)
  if t.is_alive():
    return TimeoutError(f"the asynchronous checkpoint save did not finish within {timeout_s:g} s")
  return box[0] if box else None


def install_process_hooks() -> None:
  """The command line's hooks: :func:`quiet_thread_errors` and :func:`quiet_orbax_tracebacks`."""
  quiet_orbax_tracebacks()
  quiet_thread_errors()


def one_line(e: BaseException) -> str:
  """An exception's message on one line (multi-line messages joined with spaces)."""
  return " ".join(line.strip() for line in str(e).splitlines() if line.strip())


def quiet_thread_errors() -> None:
  """Filesystem errors in background threads (TensorBoard's writer on a full disk) as one line each, and
  no traceback for callbacks into a closed event loop after a failed save; the main thread reports the
  failure itself. Other exceptions keep Python's traceback."""
  default = threading.excepthook

  def hook(args):
    if isinstance(args.exc_value, OSError):
      name = args.thread.name if args.thread is not None else "a thread"
      log.warning(f"{name}: {one_line(args.exc_value)}")
      return
    default(args)

  threading.excepthook = hook

  # TensorStore callbacks of a failed save may still fire after Orbax closed their asyncio loop; the
  # RuntimeError reaches sys.excepthook from C++ (a bare traceback each). The failure is reported anyway.
  default_sys = sys.excepthook

  def sys_hook(kind, value, tb):
    if isinstance(value, RuntimeError) and str(value) == "Event loop is closed":
      return
    default_sys(kind, value, tb)

  sys.excepthook = sys_hook
  default_unraisable = sys.unraisablehook

  def unraisable_hook(u):
    if isinstance(u.exc_value, RuntimeError) and str(u.exc_value) == "Event loop is closed":
      return
    code = getattr(u.object, "cr_code", None)  # Orbax's read coroutines of a damaged checkpoint, closed
    if code is not None and f"{os.sep}orbax{os.sep}" in code.co_filename:
      return
    default_unraisable(u)

  sys.unraisablehook = unraisable_hook


def quiet_orbax_tracebacks() -> None:
  """Orbax logs a failed background save with ERROR records carrying tracebacks and TensorStore specs;
  jgan reports the failure in one line, so those records keep the first 300 characters of their message."""
  py_logging = logging

  class StripTraceback(py_logging.Filter):
    def filter(self, record):
      if "orbax" in (record.pathname or "") and record.levelno >= py_logging.ERROR:
        record.msg, record.args = one_line(Exception(record.getMessage()))[:300], ()
        record.exc_info, record.exc_text = None, None
      return True

  py_logging.getLogger("absl").addFilter(StripTraceback())

  class DropUnretrieved(py_logging.Filter):
    def filter(self, record):  # the failed reads of a damaged checkpoint, already reported as a warning
      return "exception was never retrieved" not in record.getMessage()

  py_logging.getLogger("asyncio").addFilter(DropUnretrieved())


def exit_now_if_threads_linger(code: int, grace_s: float = 5.0) -> int:
  """Returns ``code``, or ends the process with it when Orbax's background threads outlive ``grace_s``.

  After a failed checkpoint save Orbax may leave background threads waiting for signals that never
  come (up to its 300 s coordination timeout); the interpreter would wait for them at exit. The error
  is reported by then, so the process ends at once with its status.
  """
  deadline = time.monotonic() + grace_s
  while True:
    alive = [t for t in threading.enumerate() if type(t).__module__.startswith("orbax") and t.is_alive()]
    if not alive:
      return code
    if time.monotonic() >= deadline:
      sys.stdout.flush()
      sys.stderr.flush()
      os._exit(code)
    # The base class's join: Orbax's threads override join() to re-raise their error (the failed save,
    # already reported) or a TimeoutError when still alive, which would end the process with a traceback.
    threading.Thread.join(alive[0], 0.1)
