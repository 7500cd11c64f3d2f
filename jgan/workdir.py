"""One run per workdir: the workdir's lock, taken before anything else touches the workdir.

* :func:`check_path` refuses, in one line, a workdir that cannot be one (a file, a URL of a storage jgan
  cannot write) before anything is created.
* :func:`lock_run` takes the lock of the workdir's storage (:func:`make_lock`): the lock file of a
  directory (:class:`jgan.workdir_lock.WorkdirLock`: ``O_CREAT | O_EXCL``), or the lease object of a
  bucket (:class:`jgan.object_lock.ObjectLock`: generation preconditions); both name the holder's PID,
  host and command line, and replace a stale lock under the same rules (docs/reliability.md). Before
  this lock, a second run's checkpoint manager deleted the first run's in-flight temporary checkpoint.
  In a multi-process run only process 0 (the writer) takes the lock, and all processes agree on the
  outcome, so they all stop with the same line.
* Writability and one-line filesystem errors (:class:`WorkdirError`) are :mod:`jgan.filesystem_errors`'.
"""

from __future__ import annotations

import errno
import os

from jgan import storage
from jgan.filesystem_errors import WorkdirError, check_writable
from jgan.object_lock import ObjectLock
from jgan.workdir_lock import HEARTBEAT_S, LOCK_NAME, STALE_AFTER_S, WorkdirLock, WorkdirLocked

__all__ = [
  "HEARTBEAT_S",
  "LOCK_NAME",
  "STALE_AFTER_S",
  "RunLock",
  "WorkdirError",
  "WorkdirLock",
  "WorkdirLocked",
  "check_path",
  "lock_run",
  "make_lock",
]


class RunLock:
  """The lock of a (possibly multi-process) run: process 0's :class:`WorkdirLock` (None elsewhere)."""

  def __init__(self, lock: WorkdirLock | None, process_count: int = 1):
    self.lock, self.process_count = lock, process_count

  def check(self) -> None:
    """Raises WorkdirError if the lock was lost (see :meth:`WorkdirLock.check`). With several processes
    it is a collective (all must call it at the same step): all raise together, none is left waiting."""
    if self.process_count == 1:
      if self.lock is not None:
        self.lock.check()
      return
    lost = ""
    if self.lock is not None:
      try:
        self.lock.check()
      except WorkdirError as e:
        lost = str(e)
    lost = _process_0_text(lost)
    if lost:
      raise WorkdirError(lost, errno.ENOENT)

  def release(self) -> None:
    if self.lock is not None:
      self.lock.release()


def check_path(workdir: str) -> None:
  """Refuses, in one line and creating nothing, a ``workdir`` that cannot be one.

  Raises:
    ValueError: ``workdir`` is a URL of a storage jgan cannot write (:func:`jgan.storage.check`; ``gs://``
      is valid). A URL used to become a local directory named ``gs:`` in the current directory.
    WorkdirError: ``workdir``, or the nearest existing directory above it, is a file.
  """
  storage.check(workdir)
  if storage.is_url(workdir):
    return
  path = os.path.abspath(workdir)
  if os.path.exists(path) and not os.path.isdir(path):
    raise WorkdirError(f"workdir {workdir} exists and is not a directory", errno.ENOTDIR)
  parent = os.path.dirname(path)
  while parent and not os.path.exists(parent):
    parent, above = os.path.dirname(parent), parent
    if parent == above:
      break
  if parent and os.path.exists(parent) and not os.path.isdir(parent):
    raise WorkdirError(f"workdir {workdir} cannot be created: {parent} is a file, not a directory", errno.ENOTDIR)


def make_lock(workdir: str) -> WorkdirLock:
  """The lock of ``workdir``: a file (:class:`WorkdirLock`), or a lease object in a bucket
  (:class:`jgan.object_lock.ObjectLock`, for ``gs://``)."""
  if storage.is_url(workdir):
    return ObjectLock(workdir)
  return WorkdirLock(workdir)


def lock_run(workdir: str) -> RunLock:
  """Takes ``workdir``'s lock for this run and checks that the workdir and its checkpoints are writable.

  One process: it takes the lock. Several (``jax.distributed``): process 0 does, and all processes learn
  the outcome (one small collective), so each raises the same error. Call it on every process, before
  anything else touches the workdir.

  Raises:
    ValueError: ``workdir`` is a URL of an unsupported storage (:func:`check_path`).
    WorkdirLocked: another live run holds the lock (its PID and host are named).
    WorkdirError: the workdir (or its ``checkpoints/``) cannot be written, or a file is in its place.
  """
  import jax

  check_path(workdir)
  lock, error = None, None
  if jax.process_index() == 0:
    try:
      lock = make_lock(workdir)
      lock.acquire()
      check_writable(storage.join(storage.abspath(workdir), "checkpoints"))
    except (WorkdirLocked, WorkdirError) as e:
      if lock is not None and not isinstance(e, WorkdirLocked):
        lock.release()
      lock, error = None, e
  if jax.process_count() > 1:
    kind = "" if error is None else ("locked:" if isinstance(error, WorkdirLocked) else "error:")
    first = _process_0_text(kind + ("" if error is None else str(error)))
    if first:
      kind, _, msg = first.partition(":")
      if error is None:
        error = WorkdirLocked(msg) if kind == "locked" else WorkdirError(msg)
  if error is not None:
    raise error
  return RunLock(lock, jax.process_count())


def _process_0_text(text: str) -> str:
  """Process 0's ``text``, on every process (a collective; jgan.multihost is not imported here because
  it imports jgan.checkpoint, which imports this module)."""
  import numpy as np
  from jax.experimental import multihost_utils

  raw = np.frombuffer(text.encode(), np.uint8)
  sizes = np.asarray(multihost_utils.process_allgather(np.int32(raw.size)))
  padded = np.zeros(max(int(sizes.max()), 1), np.uint8)
  padded[: raw.size] = raw
  rows = np.asarray(multihost_utils.process_allgather(padded))
  return bytes(rows[0][: int(sizes[0])]).decode()
