"""Fault-injection helpers for tests with real ``launch.py`` processes (tests/test_faults.py,
tests/test_checkpoint.py): what is on disk, kills at points chosen by it, and the comparison of a
recovered run with an uninterrupted one."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable

import jax
import numpy as np
import pytest

from jgan import checkpoint as ckpt_lib
from jgan import resume, storage
from jgan import workdir as workdir_lib
from tests.helpers import ROOT, wait_until

POLL_S = 0.0003  # how often a kill point is polled once armed
TIMEOUT = 600  # s per process (a loaded 2-core CI machine compiles slowly)


def shared_dir(tmp_path_factory):
  """A directory of this test session shared by the pytest-xdist workers (their base temp's parent)."""
  base = tmp_path_factory.getbasetemp()
  return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def subprocess_env(tmp_path_factory) -> dict:
  """Subprocess environment: a JAX compilation cache shared by the pytest-xdist workers (it saves compile
  time only; the cached executables are those a fresh compile produces)."""
  e = dict(os.environ)
  e.update(
    JAX_COMPILATION_CACHE_DIR=str(shared_dir(tmp_path_factory) / "faults_jax_cache"),
    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
    PYTHONUNBUFFERED="1",
  )
  return e


def once(tmp_path_factory, name: str, make: Callable):
  """``make(directory)`` (a JSON value) computed once per test session, whichever pytest-xdist worker
  asks first; the others wait for it (a file lock) and get the same value. An uninterrupted reference
  run is made once this way instead of once per worker."""
  import fcntl

  root = shared_dir(tmp_path_factory)
  result = root / f"{name}.json"
  with open(root / f"{name}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if result.exists():
      return json.loads(result.read_text())
    directory = root / name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    value = make(directory)
    result.write_text(json.dumps(value))
    return value


class Launcher:
  """``launch.py`` with fixed arguments ``base`` (config and its flags) on a given workdir."""

  def __init__(self, base: list[str], env: dict, total: int):
    self.base, self.env, self.total = base, env, total

  def args(self, workdir, *extra) -> list[str]:
    return [sys.executable, "launch.py", *self.base, "--workdir", str(workdir), *extra]

  def start(self, workdir, *extra, env: dict | None = None) -> subprocess.Popen:
    """Starts the run; ``env``: variables added to the launcher's."""
    return subprocess.Popen(
      self.args(workdir, *extra),
      cwd=ROOT,
      env={**self.env, **(env or {})},
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )

  def run(self, workdir, *extra, code: int = 0) -> subprocess.CompletedProcess:
    r = subprocess.run(
      self.args(workdir, *extra), cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert r.returncode == code, r.stderr[-3000:]
    return r


def ring8_reference(launcher: Launcher, directory) -> list:
  """The uninterrupted run of ``launcher`` (its own process, progress on, stderr not a terminal) in
  ``directory/ring8-ref``, and a second run started on its workdir while it starts up: ``[workdir, stderr,
  second run's status, its stderr, seconds it took to be refused, first run's PID]`` (for :func:`once`)."""
  workdir = directory / "ring8-ref"
  first = launcher.start(workdir, "--config.train.progress=True")
  lock = os.path.join(workdir, workdir_lib.LOCK_NAME)
  wait_until(lambda: os.path.exists(lock), timeout_s=TIMEOUT, what="the first run's lock", proc=first)
  t0 = time.monotonic()
  second = subprocess.run(
    launcher.args(workdir), cwd=ROOT, env=launcher.env, capture_output=True, text=True, timeout=TIMEOUT
  )
  refused_s = time.monotonic() - t0
  still_running = first.poll() is None
  _, err = first.communicate(timeout=TIMEOUT)
  assert first.returncode == 0, err[-3000:]
  assert still_running, "the first run ended before the second was refused"
  assert disk(workdir)[0][-1] == launcher.total
  return [str(workdir), err, second.returncode, second.stderr, refused_s, first.pid]


def disk(workdir) -> tuple[list[int], list[int]]:
  """``(finished checkpoint steps, steps of unfinished saves)`` in ``workdir/checkpoints``."""
  try:
    names = os.listdir(os.path.join(workdir, "checkpoints"))
  except FileNotFoundError:
    return [], []
  done = sorted(int(n) for n in names if n.isdigit())
  tmp = sorted(int(n.split(".")[0]) for n in names if ckpt_lib.TMP_PATTERN.fullmatch(n))
  return done, tmp


def last_row(workdir) -> int:
  """The step of metrics.jsonl's last complete row (0 if none)."""
  path = os.path.join(workdir, "metrics.jsonl")
  try:
    with open(path, "rb") as f:
      f.seek(max(0, os.path.getsize(path) - 4096))
      lines = f.read().decode(errors="replace").splitlines()
  except OSError:
    return 0
  for line in reversed(lines):
    try:
      return int(json.loads(line)["step"])
    except (ValueError, KeyError):
      continue
  return 0


def catches(pid: int, sig: int) -> bool:
  """Whether process ``pid`` has a handler installed for signal ``sig`` (Linux ``/proc/<pid>/status``,
  SigCgt): how a test knows that ``jgan train`` installed its preemption guard."""
  try:
    with open(f"/proc/{pid}/status") as f:
      mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
  except (OSError, StopIteration):
    return False
  return bool(mask >> (int(sig) - 1) & 1)


def kill_when(
  p, condition: Callable[[], bool], sig=signal.SIGKILL, armed: Callable[[], bool] = lambda: True, delay_s: float = 0.0
) -> bool:
  """Sends ``sig`` (None: nothing) to ``p`` ``delay_s`` after ``condition()`` holds, polled every POLL_S
  once ``armed()`` and every 20 ms before (leaving the CPU to the process while it starts); False if
  ``p`` ended first."""
  t0 = time.monotonic()
  fast = False
  while p.poll() is None:
    fast = fast or armed()
    if fast and condition():
      time.sleep(delay_s)
      if sig is not None:
        p.send_signal(sig)
      return True
    if time.monotonic() - t0 > TIMEOUT:
      p.kill()
      pytest.fail("the process never reached the kill point")
    time.sleep(POLL_S if fast else 0.02)
  return False


def training(workdir) -> Callable[[], bool]:
  return lambda: os.path.exists(os.path.join(workdir, "metrics.jsonl"))


def rows(workdir) -> list[dict]:
  """metrics.jsonl rows without the timing column (the only one that may differ between runs); ``workdir``
  local or in a bucket (jgan.storage)."""
  with storage.open(storage.join(str(workdir), "metrics.jsonl")) as f:
    return [{k: v for k, v in json.loads(line).items() if k != "steps_per_sec"} for line in f]


def tb_scalars(workdir) -> dict:
  """``{tag: {step: value}}`` as TensorBoard shows them: event files in order, a session START at step
  ``s`` (a resumed run's purge step) hiding the earlier files' events at ``s`` and later."""
  from tensorboardX.proto import event_pb2

  out: dict = {}
  tb = storage.join(str(workdir), "tb")
  for name in sorted(storage.listdir(tb)):
    data = storage.read_bytes(storage.join(tb, name))
    i = 0
    while i + 12 <= len(data):
      (n,) = struct.unpack("<Q", data[i : i + 8])
      if i + 12 + n + 4 > len(data):
        break  # a record torn by a kill
      ev = event_pb2.Event.FromString(data[i + 12 : i + 12 + n])
      i += 12 + n + 4
      if ev.HasField("session_log") and ev.session_log.status == ev.session_log.START:
        out = {t: {s: v for s, v in steps.items() if s < ev.step} for t, steps in out.items()}
      for v in ev.summary.value:
        if v.HasField("simple_value") and v.tag != "steps_per_sec":
          out.setdefault(v.tag, {})[ev.step] = v.simple_value
  return out


def leaves(state) -> list[np.ndarray]:
  return [
    np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x)
    for x in jax.tree.leaves(state)
  ]


def assert_identical(workdir, reference, total: int) -> None:
  """The final checkpoint (every leaf, bit for bit), the data iterator state, metrics.jsonl rows and
  TensorBoard's scalars equal the reference run's; no lock is left (``workdir`` local or in a bucket)."""
  (a, _), (b, _) = resume.load_state(str(workdir), step=total), resume.load_state(str(reference), step=total)
  la, lb = leaves(a), leaves(b)
  assert len(la) == len(lb) > 10
  for i, (x, y) in enumerate(zip(la, lb)):
    assert x.dtype == y.dtype and np.array_equal(x, y), f"leaf {i} differs"
  ja = ckpt_lib.Checkpointer(resume.locate(str(workdir)), read_only=True).read_json(total)
  jb = ckpt_lib.Checkpointer(resume.locate(str(reference)), read_only=True).read_json(total)
  assert ja["data"] == jb["data"]
  assert rows(workdir) == rows(reference)
  assert tb_scalars(workdir) == tb_scalars(reference)
  assert not storage.exists(storage.join(str(workdir), workdir_lib.LOCK_NAME))


def kill_points(total: int) -> dict:
  """``{name: (condition(workdir, process), what must hold after the kill(workdir, stderr))}``."""
  return {
    "the first save": (lambda w, p: not disk(w)[0] and disk(w)[1], lambda w, err: not disk(w)[0]),
    "between saves": (
      lambda w, p: (d := disk(w))[0] and not d[1] and last_row(w) > d[0][-1],
      lambda w, err: disk(w)[0] and not disk(w)[1],
    ),
    # The run stops at jgan.resume's "restore" failpoint (a checkpoint chosen, its metadata read, its arrays
    # not yet): polling for the moment an array file is open missed it 5 times in a row under load.
    "the restore": (lambda w, p: os.path.exists(f"{w}.restoring"), lambda w, err: "resumed from" not in err),
    "a later save": (lambda w, p: (d := disk(w))[0] and d[1], lambda w, err: disk(w)[0] and disk(w)[1]),
    "the final save": (lambda w, p: total in disk(w)[1], lambda w, err: total not in disk(w)[0]),
  }


def kill_chain(launcher: Launcher, workdir, chain, reference, attempts: int = 5) -> list[str]:
  """Kills runs on ``workdir`` at each point of ``chain`` (names of :func:`kill_points`) in turn, each run
  resuming from what the last kill left; then a last run finishes and must equal ``reference``
  (:func:`assert_identical`). Returns a line per kill.

  A kill that missed its point (e.g. the save finished just before) is undone (the workdir is put back
  as it was) and tried again. After each kill the surviving rows (up to the last finished checkpoint)
  must be the reference's; a kill during the restore must find nothing written; a rerun after a kill
  names the dead run's lock and replaces it.
  """
  points = kill_points(launcher.total)
  ref_rows, lines = rows(reference), []
  snap = f"{workdir}.before"
  lock = os.path.join(workdir, workdir_lib.LOCK_NAME)
  for point in chain:
    cond, after = points[point]
    shutil.rmtree(snap, ignore_errors=True)
    if os.path.exists(workdir):
      shutil.copytree(workdir, snap, symlinks=True)
    for i in range(attempts):
      if i:  # undo the missed try
        shutil.rmtree(workdir, ignore_errors=True)
        if os.path.exists(snap):
          shutil.copytree(snap, workdir, symlinks=True)
      stale = os.path.exists(lock)  # left by the previous kill
      rows_before = rows(workdir) if os.path.exists(os.path.join(workdir, "metrics.jsonl")) else []
      marker = f"{workdir}.restoring"
      if os.path.exists(marker):
        os.remove(marker)
      env = {resume.FAILPOINT_ENV: f"restore:{marker}"} if point == "the restore" else None
      p = launcher.start(workdir, env=env)
      armed = (lambda: True) if point == "the restore" else training(workdir)
      hit = kill_when(p, lambda: cond(workdir, p), armed=armed)
      _, err = p.communicate(timeout=TIMEOUT)
      assert p.returncode in (-signal.SIGKILL, 0), err[-3000:]
      if stale:
        assert re.search(r"warning: removed the stale lock \S+ of PID \d+ on host \S+ \(no process", err), err[-2000:]
      hit = hit and after(workdir, err)
      done, tmp = disk(workdir)
      lines.append(
        f"kill during {point} (try {i + 1}): {'hit' if hit else 'missed'}; checkpoints {done}, unfinished {tmp}"
      )
      if hit:
        if done:
          keep = done[-1]
          assert [r for r in rows(workdir) if r["step"] <= keep] == [r for r in ref_rows if r["step"] <= keep]
        if point == "the restore":
          assert rows(workdir) == rows_before  # nothing was written before the restore finished
        break
    else:
      pytest.fail(f"no kill landed during {point} in {attempts} tries: {lines}")
  shutil.rmtree(snap, ignore_errors=True)
  r = launcher.run(workdir)
  assert "Traceback" not in r.stderr
  assert_identical(workdir, reference, launcher.total)
  return lines
