"""The lock file of a run directory, and the rules every workdir lock follows (:mod:`jgan.workdir` takes it).

:class:`WorkdirLock` creates ``<workdir>/jgan.lock`` (``O_CREAT | O_EXCL``, atomic on local file systems
and NFS) holding the owner's PID, host, process start time and command line. A second run on the same
workdir fails at once with :class:`WorkdirLocked` naming them. A lock is *stale*, and is replaced with a
warning, when its process is gone: on the same host, no live process with that PID and start time (so a
kill -9 never blocks the rerun); on another host (a shared file system), no heartbeat for
:data:`STALE_AFTER_S` seconds (the owner touches the file every :data:`HEARTBEAT_S` seconds from a daemon
thread). The lease object of a bucket (:class:`jgan.object_lock.ObjectLock`) follows the same rules with
other primitives (``_read``, ``_age``, ``_touch``, ``acquire``, ``release``).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import sys
import threading
import time
import uuid

from jgan.filesystem_errors import WorkdirError, describe

log = logging.getLogger(__name__)

LOCK_NAME = "jgan.lock"
HEARTBEAT_S = 15.0  # the owner touches its lock this often
STALE_AFTER_S = 120.0  # a lock from another host without a heartbeat for this long is stale


class WorkdirLocked(RuntimeError):
  """Another live run holds the workdir's lock (the message names its PID and host)."""


def _process_start(pid: int) -> str | None:
  """The start time of process ``pid`` in clock ticks since boot (Linux ``/proc``), or None."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[19]
  except (OSError, IndexError):
    return None


def _pid_alive(pid: int, start: str | None) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    pass  # exists, another user's
  now = _process_start(pid)
  return start is None or now is None or now == start  # another start time: the PID was reused


class WorkdirLock:
  """``<workdir>/jgan.lock`` (see the module docstring): :meth:`acquire`, :meth:`check`, :meth:`release`."""

  def __init__(self, workdir: str):
    self.workdir = os.path.abspath(workdir)
    self.path = os.path.join(self.workdir, LOCK_NAME)
    self.created = False  # acquire() created the workdir
    self.info = {
      "pid": os.getpid(),
      "host": socket.gethostname(),
      "start": _process_start(os.getpid()),
      "started_at": time.strftime("%Y-%m-%d %H:%M:%S %z"),
      "argv": sys.argv,
      "token": uuid.uuid4().hex,
    }
    self._stop = threading.Event()
    self._thread: threading.Thread | None = None
    self.lost: str | None = None  # why the lock is no longer ours (set by the heartbeat)

  def _age(self) -> float:
    """Seconds since the lock was written or last touched by its owner's heartbeat."""
    return time.time() - os.stat(self.path).st_mtime

  def _touch(self) -> None:
    """The heartbeat: the lock's modification time is now."""
    os.utime(self.path)

  def _read(self) -> dict | None:
    """The lock's content, or None if there is no lock; ``{}`` if it is unreadable (torn)."""
    try:
      with open(self.path) as f:
        text = f.read()
    except FileNotFoundError:
      return None
    try:
      d = json.loads(text)
      return d if isinstance(d, dict) else {}
    except ValueError:
      return {}

  def _stale_reason(self, holder: dict) -> str | None:
    """Why ``holder``'s lock is stale, or None if its owner may be alive."""
    try:
      age = self._age()
    except FileNotFoundError:
      return "it vanished"
    if not holder:
      # A lock is written in one call right after its creation: unreadable for long means a torn write.
      return f"unreadable for {age:.0f} s" if age > 10 else None
    if holder.get("host") == self.info["host"]:
      pid = holder.get("pid")
      if isinstance(pid, int) and not _pid_alive(pid, holder.get("start")):
        return f"no process {pid} is running on this host"
      return None
    if age > STALE_AFTER_S:
      return f"no heartbeat from host {holder.get('host')} for {age:.0f} s (stale after {STALE_AFTER_S:g} s)"
    return None

  def _holder_message(self, holder: dict) -> str:
    try:
      age = self._age()
    except OSError:
      age = float("nan")
    cmd = " ".join(holder.get("argv") or [])[:200]
    beat = "less than a minute ago" if age < 60 else f"{age / 60:.0f} min ago"
    return (
      f"workdir {self.workdir} is in use by another jgan run: PID {holder.get('pid', '?')} on host "
      f"{holder.get('host', '?')} (started {holder.get('started_at', '?')}, last heartbeat {beat}"
      f"{'; ' + cmd if cmd else ''}). Wait for it to finish or use another --workdir; if that run is gone "
      f"(a lock from another host goes stale after {STALE_AFTER_S:g} s without heartbeat), delete {self.path}"
    )

  def live_holder(self) -> str | None:
    """The refusal message if a live run holds the lock now (a cheap early check; :meth:`acquire` is
    the one that counts), else None."""
    holder = self._read()
    if not holder or self._stale_reason(holder) is not None:
      return None
    return self._holder_message(holder)

  def acquire(self) -> None:
    """Takes the lock, replacing a stale one (with a warning).

    Raises:
      WorkdirLocked: a live run holds it.
      WorkdirError: the workdir cannot be created or written.
    """
    try:
      self.created = not os.path.isdir(self.workdir)
      os.makedirs(self.workdir, exist_ok=True)
    except OSError as e:
      raise WorkdirError(f"cannot create the workdir {self.workdir}: {describe(e)}", e.errno) from None
    data = json.dumps(self.info).encode()
    for _ in range(20):
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        holder = self._read()
        if holder is None:
          continue  # released meanwhile: try again
        reason = self._stale_reason(holder)
        if reason is None:
          if not holder:  # being written right now
            time.sleep(0.1)
            continue
          raise WorkdirLocked(self._holder_message(holder)) from None
        self._break(holder, reason)
        continue
      except OSError as e:
        raise WorkdirError(f"cannot write the lock {self.path}: {describe(e)}", e.errno) from None
      try:
        os.write(fd, data)
        os.fsync(fd)
      except OSError as e:
        os.close(fd)
        _remove_quietly(self.path)
        raise WorkdirError(f"cannot write the lock {self.path}: {describe(e)}", e.errno) from None
      os.close(fd)
      self._start_heartbeat()
      return
    raise WorkdirLocked(f"could not take the lock {self.path}: other processes keep replacing it")

  def _break(self, holder: dict, reason: str) -> None:
    """Moves a stale lock aside, unless another process replaced it meanwhile (then puts that one back)."""
    aside = f"{self.path}.stale-{self.info['token']}"
    try:
      os.rename(self.path, aside)
    except FileNotFoundError:
      return  # someone else broke it
    try:
      with open(aside) as f:
        moved = json.loads(f.read() or "{}")
    except (OSError, ValueError):
      moved = {}
    if moved.get("token") != holder.get("token"):  # a fresh lock, taken after we read the stale one
      try:
        os.link(aside, self.path)
      except OSError:
        pass
      _remove_quietly(aside)
      return
    _remove_quietly(aside)
    log.warning(
      f"removed the stale lock {self.path} of PID {holder.get('pid', '?')} on host "
      f"{holder.get('host', '?')} ({reason}): that run ended without releasing it"
    )

  def _start_heartbeat(self) -> None:
    def beat():
      while not self._stop.wait(HEARTBEAT_S):
        self._verify()
        if self.lost:
          return
        try:
          self._touch()
        except OSError:
          pass

    self._thread = threading.Thread(target=beat, name="jgan-lock-heartbeat", daemon=True)
    self._thread.start()

  def _verify(self) -> None:
    holder = self._read()
    if holder is None:
      self.lost = f"the lock {self.path} vanished (was the workdir deleted?)"
    elif holder and holder.get("token") != self.info["token"]:
      self.lost = f"the lock {self.path} was taken by PID {holder.get('pid')} on host {holder.get('host')}"

  def check(self) -> None:
    """Raises WorkdirError if the lock is gone or someone else's now (the workdir was deleted or taken over)."""
    self._verify()
    if self.lost:
      raise WorkdirError(f"{self.lost}; stopping so that two runs never write one workdir", errno.ENOENT)

  def release(self) -> None:
    """Stops the heartbeat and deletes the lock if it is still ours; a workdir that acquire() created and
    that stayed empty (a run that failed early, e.g. on a bad config) is removed too."""
    self._stop.set()
    holder = self._read()
    if holder and holder.get("token") == self.info["token"]:
      _remove_quietly(self.path)
    if self.created:
      for d in (os.path.join(self.workdir, "checkpoints"), self.workdir):
        try:
          os.rmdir(d)  # only if empty
        except OSError:
          break


def _remove_quietly(path: str) -> None:
  try:
    os.remove(path)
  except OSError:
    pass
