"""Filesystem errors of a run directory as one line, and the writability check that runs first.

* :func:`check_writable` creates, writes, syncs and deletes a probe file, so a read-only or full
  directory fails before anything compiles.
* :class:`WorkdirError` (an ``OSError``) carries a one-line message naming the path, the error
  (``ENOSPC``, ``EROFS``, ...) and what survives; :func:`describe` writes an OSError (or the OS error
  inside a TensorStore error) on one line; :func:`is_filesystem_error` tells a full / read-only /
  vanished directory from other errors (a missing dataset stays a FileNotFoundError).
"""

from __future__ import annotations

import errno
import os
import re
import uuid

# Errors of writing to a directory (as opposed to, e.g., a missing dataset).
FILESYSTEM_ERRNOS = frozenset(
  getattr(errno, n)
  for n in ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EIO", "ENOENT", "ENOTDIR", "EFBIG", "ESTALE", "EEXIST")
  if hasattr(errno, n)
)


class WorkdirError(OSError):
  """A file of the run could not be written or read (read-only, full, vanished); the message is one line."""

  def __init__(self, message: str, errno_: int | None = None):
    super().__init__(message)
    self.message = message
    if errno_ is not None:
      self.errno = errno_

  def __str__(self) -> str:
    return self.message


def _tensorstore_os_error(e: BaseException) -> OSError | None:
  """The OSError inside a TensorStore error message (``... local file "PATH" ...: Read-only file system
  [os_error_code='30']``), which TensorStore raises as a ValueError."""
  m = re.search(r"os_error_code='(\d+)'", str(e))
  if not m:
    return None
  code = int(m.group(1))
  path = re.search(r'(?:local file|directory:?) "([^"]+)"', str(e))
  return OSError(code, os.strerror(code), path.group(1).split("\x00")[0] if path else None)


def root_cause(e: BaseException) -> BaseException:
  """The innermost OSError with an errno among ``e``'s causes and contexts (TensorStore's ValueErrors
  are read for the OS error they carry), else the innermost cause."""
  seen: set[int] = set()
  found: BaseException | None = None
  cur: BaseException | None = e
  while cur is not None and id(cur) not in seen:
    seen.add(id(cur))
    if isinstance(cur, OSError) and cur.errno is not None and not isinstance(cur, WorkdirError):
      found = cur
    elif not isinstance(cur, OSError):
      found = _tensorstore_os_error(cur) or found
    cur = cur.__cause__ or cur.__context__
  if found is not None:
    return found
  last = e
  while last.__cause__ is not None:
    last = last.__cause__
  return last


def describe(e: BaseException) -> str:
  """``"No space left on device (ENOSPC): /path/file"``: an OSError (or its root cause) on one line."""
  c = root_cause(e)
  if isinstance(c, OSError) and c.errno is not None:
    name = errno.errorcode.get(c.errno, str(c.errno))
    what = f"{c.strerror or os.strerror(c.errno)} ({name})"
    return f"{what}: {c.filename}" if c.filename else what
  return " ".join(f"{type(c).__name__}: {c}".split())[:300]


# Errors that are about the file system wherever they happen (not, e.g., a dataset file that is missing).
STORAGE_ERRNOS = frozenset(
  getattr(errno, n) for n in ("ENOSPC", "EDQUOT", "EROFS", "EIO", "EFBIG", "ESTALE") if hasattr(errno, n)
)


def is_filesystem_error(e: BaseException, under: str | None = None) -> bool:
  """Whether ``e`` (or its root cause) is an OSError of the kinds a full / read-only / vanished directory
  gives: always for ENOSPC, EROFS, EIO, ...; for the others (EACCES, ENOENT, ...) only if the file is
  ``under`` that directory (so a missing dataset stays a FileNotFoundError)."""
  if isinstance(e, WorkdirError):
    return True
  c = root_cause(e)
  if not isinstance(c, OSError) or c.errno not in FILESYSTEM_ERRNOS:
    return False
  if c.errno in STORAGE_ERRNOS or under is None:
    return True
  name = c.filename if isinstance(c.filename, str) else ""
  root = os.path.abspath(under)
  return bool(name) and (os.path.abspath(name) + os.sep).startswith(root + os.sep)


def check_writable(directory: str) -> None:
  """Creates ``directory`` if needed and writes, syncs and deletes a probe file in it.

  Raises:
    WorkdirError: the directory cannot be created or written (read-only, full, no permission).
  """
  name = f".jgan-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
  from jgan import storage

  if storage.is_url(directory):  # an object written and deleted: the bucket exists and takes writes
    try:
      storage.probe(directory, name)
    except OSError as e:
      raise WorkdirError(f"cannot write to {directory}: {describe(e)}", e.errno) from None
    return
  probe = os.path.join(directory, name)
  try:
    os.makedirs(directory, exist_ok=True)
    fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    try:
      os.write(fd, b"x" * 4096)
      os.fsync(fd)
    finally:
      os.close(fd)
  except OSError as e:
    what = describe(e).rsplit(": " + probe, 1)[0]  # the probe's name says nothing
    raise WorkdirError(f"cannot write to {directory}: {what}", e.errno) from None
  finally:
    try:
      os.remove(probe)
    except OSError:
      pass
