"""A study's answers in SQLite: one row per (evaluator, image), written in one transaction each.

``STUDY/answers.sqlite`` (write-ahead log, ``synchronous=FULL``) has two tables::

    evaluators(id TEXT PRIMARY KEY, name TEXT, created REAL)
    answers(evaluator, image, position, kind, truth, answer, response_ms, exposure_ms, ts)

``position`` is the answer's place (0-based) in the evaluator's order (:func:`jgan.labs.judge_study.
evaluator_order`), ``kind``/``truth`` are the image's (from ``study.json``, never from the client),
``answer`` is ``real`` or ``fake``, ``response_ms`` the time from the image's display to the answer as
the page measured it, ``exposure_ms`` the HYPE-time exposure (NULL in HYPE-infinity) and ``ts`` the
server's Unix time. ``(evaluator, image)`` and ``(evaluator, position)`` are unique.

An answer is accepted only for the image the evaluator is at (the first of their order they have not
answered), checked and written in one ``BEGIN IMMEDIATE`` transaction, so concurrent requests (several
evaluators, a double key press) cannot write an answer twice or out of order; a rejected answer writes
nothing. Every call opens its own connection, so the server's threads and a report read concurrently.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from typing import Any, NamedTuple

from jgan.labs import judge_study

DB_FILE = "answers.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS evaluators (id TEXT PRIMARY KEY, name TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
  evaluator TEXT NOT NULL REFERENCES evaluators(id),
  image TEXT NOT NULL,
  position INTEGER NOT NULL,
  kind TEXT NOT NULL,
  truth TEXT NOT NULL CHECK (truth IN ('real', 'fake')),
  answer TEXT NOT NULL CHECK (answer IN ('real', 'fake')),
  response_ms REAL NOT NULL,
  exposure_ms REAL,
  ts REAL NOT NULL,
  PRIMARY KEY (evaluator, image),
  UNIQUE (evaluator, position)
);
"""
COLUMNS = ("evaluator", "image", "position", "kind", "truth", "answer", "response_ms", "exposure_ms", "ts")


class Rejected(Exception):
  """An answer or request the store refuses: ``status`` is the HTTP status to reply with (4xx)."""

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status


class Next(NamedTuple):
  """Where an evaluator stands: ``position`` answered so far of ``total``; ``image`` the id to show next
  (None when done) and its HYPE-time ``exposure_ms`` (None in HYPE-infinity or when done)."""

  position: int
  total: int
  image: str | None
  exposure_ms: int | None


class Store:
  """The answers of the study in ``study_dir`` (its record ``study``: :func:`jgan.labs.judge_study.load`)."""

  def __init__(self, study_dir: str, study: dict[str, Any]):
    self.path = os.path.join(study_dir, DB_FILE)
    self.study = study
    self.images = {r["id"]: r for r in study["images"]}
    self._orders: dict[str, list[str]] = {}
    self._lock = threading.Lock()
    with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as db:
      db.execute("PRAGMA journal_mode=WAL")
      db.executescript(SCHEMA)

  @contextlib.contextmanager
  def _connect(self):
    db = sqlite3.connect(self.path, timeout=30, isolation_level=None)  # transactions are explicit
    try:
      db.execute("PRAGMA synchronous=FULL")
      db.execute("PRAGMA foreign_keys=ON")
      yield db
    finally:
      db.close()

  def order(self, evaluator: str) -> list[str]:
    """The evaluator's image order (ids), cached."""
    with self._lock:
      if evaluator not in self._orders:
        self._orders[evaluator] = judge_study.evaluator_order(self.study, evaluator)
      return self._orders[evaluator]

  def create_evaluator(self, name: str = "") -> str:
    """Adds an evaluator with a fresh random id (16 hex digits) and an optional display ``name``; returns the id."""
    import secrets

    evaluator = secrets.token_hex(8)
    with self._connect() as db:
      db.execute("INSERT INTO evaluators VALUES (?, ?, ?)", (evaluator, name, time.time()))
    return evaluator

  def _exists(self, db, evaluator: str) -> bool:
    return db.execute("SELECT 1 FROM evaluators WHERE id = ?", (evaluator,)).fetchone() is not None

  def _next(self, db, evaluator: str) -> Next:
    if not self._exists(db, evaluator):
      raise Rejected(404, f"unknown evaluator {evaluator!r}")
    order = self.order(evaluator)
    done = db.execute("SELECT COUNT(*) FROM answers WHERE evaluator = ?", (evaluator,)).fetchone()[0]
    if done >= len(order):
      return Next(done, len(order), None, None)
    image = order[done]
    exposure = None
    if self.study["mode"] == "time":
      if self.images[image]["kind"].startswith("check_"):
        exposure = judge_study.CHECK_EXPOSURE_MS
      else:
        rows = db.execute(
          "SELECT truth = answer FROM answers WHERE evaluator = ? AND kind IN ('fake', 'real') ORDER BY position",
          (evaluator,),
        ).fetchall()
        exposure = judge_study.exposure_ms([bool(r[0]) for r in rows])
    return Next(done, len(order), image, exposure)

  def next(self, evaluator: str) -> Next:
    """Where ``evaluator`` stands (:class:`Next`). Raises Rejected(404) for an unknown evaluator."""
    with self._connect() as db:
      return self._next(db, evaluator)

  def record(self, evaluator: str, image: str, answer: str, response_ms: float) -> Next:
    """Stores one answer in its own transaction and returns where the evaluator stands afterwards.

    Args:
      evaluator: an id from :meth:`create_evaluator`.
      image: the id of the image the evaluator is at (``next(evaluator).image``).
      answer: ``real`` or ``fake``.
      response_ms: float >= 0, the page's time from display to answer.

    Raises:
      Rejected: 404 unknown evaluator or image, 409 an image already answered, not the evaluator's
      current one, or a finished study; nothing is written then.
    """
    if image not in self.images:
      raise Rejected(404, f"unknown image {image!r}")
    with self._connect() as db:
      db.execute("BEGIN IMMEDIATE")
      try:
        at = self._next(db, evaluator)
        if db.execute("SELECT 1 FROM answers WHERE evaluator = ? AND image = ?", (evaluator, image)).fetchone():
          raise Rejected(409, f"image {image!r} was already answered by this evaluator")
        if at.image != image:
          raise Rejected(409, f"image {image!r} is not this evaluator's current image")
        record = self.images[image]
        db.execute(
          f"INSERT INTO answers ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
          (evaluator, image, at.position, record["kind"], record["truth"], answer, response_ms, at.exposure_ms)
          + (time.time(),),
        )
        db.execute("COMMIT")
      except BaseException:
        db.execute("ROLLBACK")
        raise
      return self._next(db, evaluator)

  def answers(self) -> list[dict[str, Any]]:
    """Every answer as a dict of :data:`COLUMNS`, ordered by evaluator id and position."""
    with self._connect() as db:
      rows = db.execute(f"SELECT {', '.join(COLUMNS)} FROM answers ORDER BY evaluator, position").fetchall()
    return [dict(zip(COLUMNS, r)) for r in rows]

  def evaluators(self) -> dict[str, str]:
    """``{evaluator id: name}`` of every evaluator, answered or not."""
    with self._connect() as db:
      return dict(db.execute("SELECT id, name FROM evaluators ORDER BY id").fetchall())
