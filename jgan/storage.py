"""Where a run's files live: local (or mounted) directories and Google Cloud Storage, behind one set of functions.

Everything jgan writes into or reads from a workdir goes through this module: ``metrics.jsonl`` and
``evals.jsonl`` (:func:`append_text`), ``run_info.json`` / ``config.json``, sample grids and plots
(:func:`open`), TensorBoard event files (:func:`register_tensorboard`), the checkpoint directory's
listings and clean-ups (:func:`listdir`, :func:`rmtree`, :func:`move`). Checkpoint arrays are written by
Orbax / TensorStore themselves, which take the same paths (``gs://`` natively).

* A **local path** is handled with the same ``os`` / ``shutil`` calls as before this module existed
  (append mode, ``os.replace`` for atomic rewrites), so local runs write exactly what they wrote.
* A **URL** (``gs://BUCKET/PATH``) goes through ``etils.epath`` (fsspec's ``gcsfs`` without TensorFlow).
  Object storage has no directories, no appends and no renames: :func:`makedirs` does nothing (and so
  never creates a bucket), :func:`append_text` rewrites the object with the new line added, :func:`move`
  copies and deletes. Each object write is atomic (readers see the old object or the new one). fsspec's
  listing cache is off for ``gcs``: TensorStore writes behind gcsfs's back, and a cached listing would
  hide a checkpoint saved since.

Only ``gs://`` is a valid URL: Orbax 0.12 writes checkpoints natively to ``gs://`` alone (any other URL it
would treat as a local path); :func:`check` refuses the others in one line. The workdir's lock on a bucket
is :mod:`jgan.object_lock` (a generation-conditional lease; no path abstraction offers preconditions).
"""

from __future__ import annotations

import builtins
import importlib.util
import io
import os
import re
import shutil
from typing import IO, Any

SCHEMES = ("gs",)
VALID = "a local or mounted directory path, or gs://BUCKET/PATH (Google Cloud Storage)"
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def scheme(path: str) -> str | None:
  """The URL scheme of ``path`` (``"gs"`` for ``gs://b/x``), or None for a local path."""
  m = _URL.match(str(path))
  return m.group(1).lower() if m else None


def is_url(path: str) -> bool:
  return scheme(path) is not None


def check(path: str, what: str = "workdir") -> None:
  """Raises ValueError, in one line naming ``path`` (as ``what=path``; ``what=""``: the path alone) and the
  valid choices, for a URL jgan cannot write."""
  s = scheme(path)
  if s is None:
    return
  name = f"{what}={path!r}" if what else repr(path)
  if s not in SCHEMES:
    why = "Orbax writes checkpoints natively to gs:// only"
    raise ValueError(f"{name}: {s}:// is not supported ({why}); valid: {VALID}")
  if not str(path)[len(s) + 3 :].split("/", 1)[0]:
    raise ValueError(f"{name}: no bucket named; valid: {VALID}")
  missing = [m for m in ("gcsfs", "google.cloud.storage") if not _installed(m)]
  if missing:
    raise ValueError(f"{name}: gs:// needs {', '.join(missing)}: pip install 'jgan[cloud]'")


def _installed(module: str) -> bool:
  try:
    return importlib.util.find_spec(module) is not None
  except ModuleNotFoundError:  # a parent package is missing
    return False


def _p(path: str):
  """``etils.epath.Path`` of a URL (fsspec's listing cache off for gcs first; see the module docstring)."""
  from etils import epath
  from fsspec.config import conf as fsspec_conf

  fsspec_conf.setdefault("gcs", {}).setdefault("use_listings_cache", False)
  return epath.Path(path)


def join(base: str, *names: str) -> str:
  if is_url(base):
    return "/".join([str(base).rstrip("/"), *(n.strip("/") for n in names)])
  return os.path.join(base, *names)


def abspath(path: str) -> str:
  """An absolute local path, or the URL without a trailing slash."""
  return str(path).rstrip("/") if is_url(path) else os.path.abspath(path)


def basename(path: str) -> str:
  return abspath(path).rsplit("/", 1)[-1] if is_url(path) else os.path.basename(path)


def dirname(path: str) -> str:
  return abspath(path).rsplit("/", 1)[0] if is_url(path) else os.path.dirname(path)


def relpath(path: str, start: str) -> str:
  if is_url(path):
    return abspath(path)[len(abspath(start)) + 1 :]
  return os.path.relpath(path, start)


def exists(path: str) -> bool:
  return _p(path).exists() if is_url(path) else os.path.exists(path)


def isdir(path: str) -> bool:
  """A local directory, or a URL prefix that holds objects."""
  return _p(path).is_dir() if is_url(path) else os.path.isdir(path)


def isfile(path: str) -> bool:
  return _p(path).is_file() if is_url(path) else os.path.isfile(path)


def listdir(path: str) -> list[str]:
  """The names in a directory (FileNotFoundError if there is none: for a URL, no object under it)."""
  if is_url(path):
    return [p.name for p in _p(path).iterdir()]
  return os.listdir(path)


def makedirs(path: str) -> None:
  """Creates a local directory and its parents; nothing for a URL (object storage has no directories)."""
  if not is_url(path):
    os.makedirs(path, exist_ok=True)


def open(path: str, mode: str = "r") -> IO[Any]:
  """A file of ``path`` to read or write whole (``r``, ``rb``, ``w``, ``wb``); a URL object is uploaded when
  the file is closed. Appends go through :func:`append_text`."""
  if is_url(path):
    if "a" in mode or "+" in mode:
      raise ValueError(f"{path}: object storage cannot append (mode {mode!r}); use jgan.storage.append_text")
    return _p(path).open(mode)
  return builtins.open(path, mode)


def read_text(path: str) -> str:
  with open(path) as f:
    return f.read()


def read_bytes(path: str) -> bytes:
  with open(path, "rb") as f:
    return f.read()


def write_text(path: str, text: str) -> None:
  with open(path, "w") as f:
    f.write(text)


def write_bytes(path: str, data: bytes) -> None:
  with open(path, "wb") as f:
    f.write(data)


def append_text(path: str, text: str) -> None:
  """Appends ``text`` to ``path`` (a local file in append mode; an object rewritten with it added)."""
  if not is_url(path):
    with builtins.open(path, "a") as f:
      f.write(text)
    return
  old = read_text(path) if exists(path) else ""
  write_text(path, old + text)


def replace_text(path: str, text: str) -> None:
  """:func:`replace_bytes` of ``text`` (UTF-8) through ``path + ".tmp"``."""
  replace_bytes(path, text.encode(), ".tmp")


def replace_bytes(path: str, data: bytes, tmp_suffix: str | None = None) -> None:
  """Writes ``path`` atomically: readers see the old or the new content (a local file through the
  temporary file ``path + tmp_suffix`` (default ``.tmp<pid>``) and ``os.replace``, the original left
  unchanged if the write fails; an object in one upload)."""
  if is_url(path):
    write_bytes(path, data)
    return
  tmp = path + (tmp_suffix if tmp_suffix is not None else f".tmp{os.getpid()}")
  try:
    with builtins.open(tmp, "wb") as f:
      f.write(data)
    os.replace(tmp, path)
  except OSError:
    if os.path.exists(tmp):  # e.g. a full disk: the original stays as it was
      os.remove(tmp)
    raise


def remove(path: str) -> None:
  if is_url(path):
    _p(path).unlink()
  else:
    os.remove(path)


def rmtree(path: str) -> None:
  """Deletes a directory tree (every object under a URL prefix); nothing if it is missing."""
  if is_url(path):
    p = _p(path)
    if p.exists():
      p.rmtree(missing_ok=True)
  else:
    shutil.rmtree(path, ignore_errors=True)


def copyfile(src: str, dst: str) -> None:
  if is_url(src) or is_url(dst):
    write_bytes(dst, read_bytes(src))
  else:
    shutil.copyfile(src, dst)


def files_under(path: str) -> list[str]:
  """The paths of every file under directory ``path``, recursively (sorted)."""
  out = []
  for name in listdir(path):
    p = join(path, name)
    out += files_under(p) if isdir(p) else [p]
  return sorted(out)


def move(src: str, dst: str) -> None:
  """Moves directory ``src`` to ``dst`` (an object store: each object copied, then ``src`` deleted)."""
  if not is_url(src):
    shutil.move(src, dst)
    return
  for f in files_under(src):
    copyfile(f, join(dst, relpath(f, src)))
  rmtree(src)


def probe(directory: str, name: str) -> None:
  """Writes and deletes the object ``directory/name``: the bucket exists and takes writes (OSError if not)."""
  p = join(directory, name)
  write_bytes(p, b"x" * 4096)
  remove(p)


class ObjectRecordWriter:
  """A TensorBoard event file in object storage for tensorboardX: records are kept in memory and the
  whole object is uploaded again at every flush (object storage cannot append)."""

  def __init__(self, path: str):
    self.path, self.buffer, self.closed = path, io.BytesIO(), False

  def write(self, data: bytes) -> None:
    self.buffer.write(data)

  def flush(self) -> None:
    write_bytes(self.path, self.buffer.getvalue())

  def close(self) -> None:
    if not self.closed:
      self.flush()
      self.closed = True


class _ObjectRecordWriterFactory:
  def open(self, path: str) -> ObjectRecordWriter:
    return ObjectRecordWriter(path)

  def directory_check(self, path: str) -> None:
    pass  # object storage has no directories


def register_tensorboard() -> None:
  """Makes tensorboardX write ``gs://`` event files through this module (instead of its own client)."""
  from tensorboardX import record_writer

  for s in SCHEMES:
    record_writer.register_writer_factory(s, _ObjectRecordWriterFactory())
