"""The workdir lock on a bucket (``gs://``): a lease object written with generation preconditions.

Google Cloud Storage gives every write of an object a new *generation* number, and a write or a delete
may name the generation it expects (``ifGenerationMatch``; 0: the object must not exist). The server
checks it atomically with the write; a write whose precondition fails changes nothing (HTTP 412). The
lock ``<workdir>/jgan.lock`` (the same JSON as :class:`jgan.workdir_lock.WorkdirLock`'s file) is used so:

* **take**: created with ``ifGenerationMatch=0``: of two runs starting on one workdir at the same
  instant, on any hosts, exactly one creates it; the other reads the holder and stops with
  :class:`jgan.workdir_lock.WorkdirLocked`, as on a file system;
* **a stale lock** (the same rules as a file's: on this host, no process with its PID and start time; from
  another host, no heartbeat for :data:`jgan.workdir_lock.STALE_AFTER_S` seconds by the object's ``updated``
  time) is taken over with ``ifGenerationMatch=<the generation read>``: if its owner renewed it meanwhile,
  or another run took it over first, the takeover fails and the lock is read again;
* **heartbeat**: rewritten every :data:`jgan.workdir_lock.HEARTBEAT_S` seconds with ``ifGenerationMatch=<ours>``;
  a failed precondition means the lock was taken over or deleted, and :meth:`check` stops the run;
* **release**: deleted with ``ifGenerationMatch=<ours>``, so a run never deletes another run's lock.

Staleness compares the storage server's clock (``updated``) with this host's (NTP keeps them within a
second). The requests go to the JSON API through ``google-cloud-storage`` (which Orbax also needs for
``gs://``): path abstractions such as etils.epath / fsspec offer no preconditions. The client honours
``STORAGE_EMULATOR_HOST`` (tests/test_storage.py runs against fake-gcs-server on 127.0.0.1).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from jgan import storage
from jgan import workdir_lock as workdir_lib
from jgan.filesystem_errors import WorkdirError

log = logging.getLogger(__name__)


def _client_errors() -> tuple[type[BaseException], ...]:
  """What the storage client raises for an unreachable, missing or forbidden bucket (all but 412)."""
  import google.auth.exceptions
  import requests
  from google.api_core import exceptions

  return (exceptions.GoogleAPIError, google.auth.exceptions.GoogleAuthError, requests.RequestException, OSError)


class ObjectLock(workdir_lib.WorkdirLock):
  """``<workdir>/jgan.lock`` as a lease object in a bucket (see the module docstring)."""

  def __init__(self, workdir: str):
    super().__init__(workdir)
    self.workdir = storage.abspath(workdir)
    self.path = storage.join(self.workdir, workdir_lib.LOCK_NAME)
    self.bucket_name, _, self.key = self.path[len("gs://") :].partition("/")
    self.generation: int | None = None  # of the lock this run wrote last
    self._seen: tuple[int, float] | None = None  # (generation, updated) of the lock read last
    self._bucket_obj: Any = None

  def _bucket(self):
    if self._bucket_obj is None:
      from google.cloud import storage as gcs

      self._bucket_obj = gcs.Client().bucket(self.bucket_name)
    return self._bucket_obj

  def _read(self) -> dict | None:
    """The lock's content (None if there is none; ``{}`` if it is no JSON object), remembering its
    generation and time."""
    from google.api_core import exceptions

    for _ in range(5):
      blob = self._bucket().get_blob(self.key)
      if blob is None:
        self._seen = None
        return None
      try:
        text = blob.download_as_bytes(if_generation_match=blob.generation)
      except (exceptions.PreconditionFailed, exceptions.NotFound):
        continue  # rewritten or deleted between the two requests: read again
      self._seen = (int(blob.generation), blob.updated.timestamp())
      try:
        d = json.loads(text)
        return d if isinstance(d, dict) else {}
      except ValueError:
        return {}
    raise WorkdirError(f"cannot read the lock {self.path}: it changes faster than it can be read")

  def _age(self) -> float:
    if self._seen is None:
      raise FileNotFoundError(self.path)
    return time.time() - self._seen[1]

  def _write(self, expect: int) -> int | None:
    """Writes this run's lock if the object's generation is ``expect`` (0: absent); its new generation,
    or None if the precondition failed."""
    from google.api_core import exceptions

    blob = self._bucket().blob(self.key)
    try:
      blob.upload_from_string(json.dumps(self.info), content_type="application/json", if_generation_match=expect)
    except exceptions.PreconditionFailed:
      return None
    return int(blob.generation)

  def live_holder(self) -> str | None:
    try:
      return super().live_holder()
    except _client_errors() + (WorkdirError,):
      return None  # acquire() reports what is wrong with the bucket

  def acquire(self) -> None:
    """Takes the lease, taking over a stale one (with a warning).

    Raises:
      WorkdirLocked: a live run holds it.
      WorkdirError: the bucket is missing, unreachable or not writable.
    """
    try:
      for _ in range(20):
        holder = self._read()
        if holder is None:
          self.generation = self._write(0)
        else:
          reason = self._stale_reason(holder)
          if reason is None:
            if not holder:  # not JSON: stale once it is older than a torn write could be
              time.sleep(0.5)
              continue
            raise workdir_lib.WorkdirLocked(self._holder_message(holder))
          assert self._seen is not None
          self.generation = self._write(self._seen[0])
          if self.generation is not None:
            log.warning(
              f"replaced the stale lock {self.path} of PID {holder.get('pid', '?')} on host "
              f"{holder.get('host', '?')} ({reason}): that run ended without releasing it"
            )
        if self.generation is not None:
          self._start_heartbeat()
          return
    except _client_errors() as e:
      from google.api_core import exceptions

      why = f"the bucket {self.bucket_name!r} does not exist" if isinstance(e, exceptions.NotFound) else _one_line(e)
      raise WorkdirError(f"cannot write the lock {self.path}: {why}") from None
    raise workdir_lib.WorkdirLocked(f"could not take the lock {self.path}: other processes keep replacing it")

  def _touch(self) -> None:
    """The heartbeat: the lease rewritten if it is still ours (else :meth:`_verify` says what happened)."""
    try:
      gen = self._write(self.generation or 0)
    except _client_errors() as e:
      raise OSError(_one_line(e)) from None  # unreachable for a moment: the next beat tries again
    if gen is None:
      self._verify()
    else:
      self.generation = gen

  def _verify(self) -> None:
    try:
      blob = self._bucket().get_blob(self.key)
      if blob is not None and blob.generation == self.generation:
        return
      super()._verify()  # rewritten since (by our heartbeat, or taken over) or deleted: read the token
    except _client_errors() as e:
      log.warning(f"could not check the lock {self.path}: {_one_line(e)}")

  def release(self) -> None:
    """Stops the heartbeat and deletes the lease if it is still ours."""
    from google.api_core import exceptions

    self._stop.set()
    if self._thread is not None:
      self._thread.join(60)
    if self.generation is None or self.lost:
      return
    for _ in range(3):
      try:
        self._bucket().blob(self.key).delete(if_generation_match=self.generation)
        return
      except exceptions.NotFound:
        return
      except exceptions.PreconditionFailed:
        holder = self._read()  # rewritten by a heartbeat in flight: delete it if it is still ours
        if not holder or holder.get("token") != self.info["token"] or self._seen is None:
          return
        self.generation = self._seen[0]
      except _client_errors() as e:
        log.warning(f"could not delete the lock {self.path}: {_one_line(e)}; the next run replaces it")
        return


def _one_line(e: BaseException) -> str:
  return " ".join(f"{type(e).__name__}: {e}".split())[:300]
