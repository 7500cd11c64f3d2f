"""Fault injection with real processes: kills, signals, a second run, read-only / full / vanished workdirs.

Each scenario starts ``launch.py`` as a user or a scheduler would and injects the fault at a point
chosen by what is on disk, polled every 0.3 ms (``checkpoints/`` listing, ``metrics.jsonl``, the files
the process holds open in ``/proc/<pid>/fd``; helpers in tests/faults.py):

* SIGKILL during the first save (only ``<N>.orbax-checkpoint-tmp`` exists), between saves, during the
  restore of the rerun, during a later save, during the restore again and during the final save, one
  after the other on one workdir, each rerun resuming from what the last kill left (a kill that missed
  its point is undone and tried again); the smoke DCGAN's first save and a kill between its saves are in
  tests/test_checkpoint.py;
* SIGINT, then SIGTERM, mid-run (exit 75, "preempted"); a second run started on a workdir in use
  (refused at once, naming the first run's PID and host);
* a read-only checkpoint directory (from the start, and made read-only mid-run with async saves), a full
  disk (a 1.6 MB tmpfs: a real ENOSPC) and a workdir deleted mid-run: one ``error:`` line, status 2, no
  hang, no temporary checkpoint left, and (read-only, full) the rerun on the repaired directory finishes
  bit-identical to the uninterrupted run.

"Identical" (tests/faults.assert_identical): the final checkpoint's every leaf (parameters, optimiser
states, EMA, typed key) and the data iterator state equal the uninterrupted run's bit for bit, the
``metrics.jsonl`` rows are equal (the timing column aside), TensorBoard shows the same scalars (after its
purge of a resumed run's stale events), and no lock is left. The scenarios run the MLP GAN on ring8 (300
steps; ~6 s per process with the shared compilation cache). Read-only and full directories need a
private mount namespace (``unshare --user --mount``, available here and on the CI machine); those tests
skip, saying why, where it is not.

The last part runs in-process: the open logging window saved with a checkpoint (a signal at a step that
is not a logging step, deterministic), the lock's rules and the one-line descriptions of OS errors.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jgan import checkpoint as ckpt_lib
from jgan import data as data_lib
from jgan import filesystem_errors as fs_errors
from jgan import resume, train, workdir_lock
from jgan import workdir as workdir_lib
from tests import faults
from tests.helpers import ROOT, load_config, wait_until

TOTAL, EVERY, LOG_EVERY = 300, 40, 15  # ring8: saves at 40, 80, ..., 280, 300; rows every 15 and at saves
RING8 = [
  "--config",
  "configs/ring8.py",
  "--config.parallel.num_devices=1",
  f"--config.train.steps={TOTAL}",
  "--config.train.steps_per_call=1",
  f"--config.train.log_every={LOG_EVERY}",
  f"--config.checkpoint.every_steps={EVERY}",
  "--config.train.sample_every=0",
  "--config.train.batch_size=64",
  "--config.train.num_samples=64",
  "--config.seed=1",
]
# One workdir killed again and again, each rerun resuming from what the last kill left.
KILL_CHAIN = ("the first save", "between saves", "the restore", "a later save", "the restore", "the final save")


@pytest.fixture(scope="module")
def ring8(tmp_path_factory):
  return faults.Launcher(RING8, faults.subprocess_env(tmp_path_factory), TOTAL)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, ring8):
  """The uninterrupted ring8 run (its own process, progress on, stderr not a terminal; made once for all
  pytest-xdist workers), and a second run started on its workdir while it starts up: ``(workdir, stderr,
  second run's status, its stderr, seconds it took to be refused, first run's PID)``."""

  workdir, *rest = faults.once(tmp_path_factory, "faults_ring8_reference", lambda d: faults.ring8_reference(ring8, d))
  return (pathlib.Path(workdir), *rest)


def _one_error_line(err: str) -> str:
  assert "Traceback" not in err, err[-3000:]
  errors = [line for line in err.splitlines() if line.startswith("error:")]
  assert len(errors) == 1, err[-3000:]
  return errors[0]


# ---------------------------------------------------------------------------------------------------
# SIGKILL at points chosen by what is on disk


@pytest.mark.slow
def test_sigkill_at_every_point_then_rerun_reproduces_the_uninterrupted_run(reference, ring8, tmp_path):
  lines = faults.kill_chain(ring8, tmp_path / "run", KILL_CHAIN, reference[0])
  print("\n".join(lines) + f"\n{len(lines)} kills, {len(KILL_CHAIN)} points hit; the final run is identical")


# ---------------------------------------------------------------------------------------------------
# Signals, a second run, progress lines


@pytest.mark.slow
def test_sigint_then_sigterm_stop_with_75_and_the_rerun_reproduces_the_uninterrupted_run(reference, ring8, tmp_path):
  ref = reference[0]
  w = tmp_path / "run"
  ref_rows = faults.rows(ref)
  for sig, after_row in ((signal.SIGINT, 4 * LOG_EVERY), (signal.SIGTERM, 12 * LOG_EVERY)):
    p = ring8.start(w)
    # Mid-run, a few steps after a logging step: the stop usually falls between two (the open window
    # is saved with the checkpoint).
    assert faults.kill_when(p, lambda: faults.last_row(w) >= after_row, sig, armed=faults.training(w), delay_s=0.01)
    _, err = p.communicate(timeout=faults.TIMEOUT)
    assert p.returncode == 75, err[-3000:]  # preempted, checkpoint saved: not 0, not 2
    m = re.search(rf"{sig.name} received: saved checkpoint (\S+) at step (\d+) of {TOTAL}; resume with: ", err)
    assert m and "Traceback" not in err, err[-3000:]
    step = int(m.group(2))
    assert step in faults.disk(w)[0]
    assert faults.rows(w) == [r for r in ref_rows if r["step"] <= step]
    boundary = step % LOG_EVERY == 0 or step % EVERY == 0
    print(f"{sig.name} at step {step} ({'a' if boundary else 'not a'} logging step): exit 75")
  r = ring8.run(w)
  assert f"(step {step})" in r.stderr
  faults.assert_identical(w, ref, TOTAL)


@pytest.mark.slow
def test_sigkill_during_the_first_save_then_resume_is_bit_identical(reference, ring8, tmp_path):
  """The kill point that lost resumes (Orbax's background clean-up of the killed save's
  ``<step>.orbax-checkpoint-tmp`` raced the resumed run's save of the same step). ``make stress`` runs
  it 20 times under load."""
  lines = faults.kill_chain(ring8, tmp_path / "run", ("the first save",), reference[0])
  print("\n".join(lines))


@pytest.mark.slow
def test_repeated_signals_during_the_emergency_save_are_absorbed_and_exit_75(reference, ring8, tmp_path):
  """Schedulers send several SIGTERMs: a second one 50 ms after the first; then (the rerun) a SIGINT and a
  SIGTERM sent while the emergency checkpoint is being written (its temporary directory exists). Each
  run saves, says so, exits 75; the last rerun reproduces the uninterrupted run."""
  ref = reference[0]
  w = tmp_path / "run"
  ref_rows = faults.rows(ref)

  def stop(p, after_row: int) -> None:
    assert faults.kill_when(p, lambda: faults.last_row(w) >= after_row, signal.SIGTERM, armed=faults.training(w))

  def finish(p) -> tuple[int, str]:
    _, err = p.communicate(timeout=faults.TIMEOUT)  # the hang guard
    assert p.returncode == 75 and "Traceback" not in err, err[-3000:]
    m = re.search(rf"SIGTERM received: saved checkpoint (\S+) at step (\d+) of {TOTAL}; resume with: ", err)
    assert m, err[-3000:]
    step = int(m.group(2))
    assert step in faults.disk(w)[0] and not faults.disk(w)[1]
    assert faults.rows(w) == [r for r in ref_rows if r["step"] <= step]
    return step, err

  p = ring8.start(w)
  stop(p, 4 * LOG_EVERY)
  faults.kill_when(p, lambda: True, signal.SIGTERM, delay_s=0.05)  # 50 ms later: the stimulus, not a wait
  lines = [f"two SIGTERMs 50 ms apart: checkpoint of step {finish(p)[0]} saved, exit 75"]
  for attempt in range(5):  # ring8's emergency save is short: try again if it was over before we saw it
    before = faults.disk(w)[0]
    p = ring8.start(w)
    stop(p, faults.last_row(w) + 2 * LOG_EVERY)
    # The emergency save's temporary directory, not a periodic save's still being written (under load the
    # save of step 80 can outlast the row of step 90 that sends SIGTERM: a SIGINT sent then reaches the
    # process with the SIGTERM still pending, and Python runs the lower-numbered signal's handler first).
    emergency = lambda: any(s not in before and s % EVERY for s in faults.disk(w)[1])
    if faults.kill_when(p, emergency, signal.SIGINT):
      faults.kill_when(p, lambda: True, signal.SIGTERM)
      step, err = finish(p)
      assert "SIGINT received again: still stopping; SIGKILL ends the run at once" in err, err[-3000:]
      lines.append(f"SIGINT + SIGTERM during the emergency save (try {attempt + 1}): step {step} saved, exit 75")
      break
    lines.append(f"try {attempt + 1}: the emergency save of step {finish(p)[0]} ended before it was seen")
  else:
    pytest.fail(f"no signal landed during the emergency save in 5 tries: {lines}")
  r = ring8.run(w)
  assert "Traceback" not in r.stderr
  faults.assert_identical(w, ref, TOTAL)
  print("\n".join(lines))


@pytest.mark.slow
def test_sigterm_during_start_up_exits_75_saying_nothing_was_saved(reference, ring8, tmp_path):
  """SIGTERM as soon as ``jgan train`` has installed its guard (its imports still running): exit 75 and
  one line, nothing written. Then one once the run holds its workdir lock (restore, set-up, compile):
  exit 75 with that line or, if the first step was done by then, a checkpoint; the rerun finishes
  identical to the uninterrupted run."""
  w = tmp_path / "run"
  p = ring8.start(w)
  assert faults.kill_when(p, lambda: faults.catches(p.pid, signal.SIGTERM), signal.SIGTERM)
  _, err = p.communicate(timeout=faults.TIMEOUT)
  assert p.returncode == 75, err[-3000:]
  assert "Traceback" not in err
  assert re.search(
    r"^SIGTERM received during start-up, before the first step: nothing was saved by this run; resume with: cd .+",
    err,
    re.M,
  ), err[-3000:]
  assert faults.disk(w) == ([], []) and not os.path.exists(w / "metrics.jsonl")
  p = ring8.start(w)
  lock = os.path.join(w, workdir_lib.LOCK_NAME)
  assert faults.kill_when(p, lambda: os.path.exists(lock), signal.SIGTERM)
  _, err = p.communicate(timeout=faults.TIMEOUT)
  assert p.returncode == 75, err[-3000:]
  startup = "SIGTERM received during start-up, before the first step: nothing was saved by this run" in err
  assert startup or re.search(r"SIGTERM received: saved checkpoint \S+ at step \d+", err), err[-3000:]
  r = ring8.run(w)
  assert "Traceback" not in r.stderr
  faults.assert_identical(w, reference[0], TOTAL)
  print(f"SIGTERM once the lock was taken: {'nothing saved' if startup else 'a checkpoint saved'}")


@pytest.mark.slow
def test_second_run_on_the_same_workdir_is_refused_at_once_naming_the_holder(reference):
  workdir, _, second_rc, second_err, refused_s, pid = reference
  assert second_rc == 2, second_err[-3000:]
  line = _one_error_line(second_err)
  assert f"is in use by another jgan run: PID {pid} on host {socket.gethostname()}" in line, line
  # The first run finished undisturbed (the other tests compare every row and leaf with it): the
  # second wrote no row.
  expected = sorted({*range(LOG_EVERY, TOTAL + 1, LOG_EVERY), *range(EVERY, TOTAL + 1, EVERY), TOTAL})
  assert [r["step"] for r in faults.rows(workdir)] == expected
  print(f"second run refused after {refused_s:.1f} s (its Python start-up included): {line[:150]}...")


@pytest.mark.slow
def test_progress_without_a_terminal_is_plain_lines(reference):
  stderr = reference[1]
  assert "\r" not in stderr
  pattern = rf"ring8-ref: step (\d+)/{TOTAL} \(\d+%\), d_loss -?[\d.]+, g_loss -?[\d.]+, [\d.]+ steps/s, eta"
  lines = re.findall(pattern, stderr)
  assert lines and lines[0] == str(LOG_EVERY) and lines[-1] == str(TOTAL), stderr[-2000:]


# ---------------------------------------------------------------------------------------------------
# Read-only, full and vanished directories (a private mount namespace)


def _namespace_ok() -> str | None:
  if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
    return "needs Linux and unshare"
  r = subprocess.run(
    ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt && echo ok"],
    capture_output=True,
    text=True,
  )
  return None if r.stdout.strip() == "ok" else f"no private mount namespace here ({r.stderr.strip()[:200]})"


NAMESPACE = _namespace_ok()
needs_namespace = pytest.mark.skipif(NAMESPACE is not None, reason=f"{NAMESPACE}")


def _in_namespace(script: str, env) -> subprocess.CompletedProcess:
  """Runs a bash script as root of a private user + mount namespace (its mounts vanish with it)."""
  r = subprocess.run(
    ["unshare", "--user", "--map-root-user", "--mount", "bash", "-c", script],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=3 * faults.TIMEOUT,
  )
  assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
  return r


def _one_error_line(err: str) -> str:
  assert "Traceback" not in err, err[-3000:]
  errors = [line for line in err.splitlines() if line.startswith("error:")]
  assert len(errors) == 1, err[-3000:]
  return errors[0]


def _cmd(launcher, workdir, *extra) -> str:
  return shlex.join(launcher.args(workdir, *extra))


@pytest.mark.slow
@needs_namespace
def test_read_only_workdir_or_checkpoint_directory_fails_in_one_line_without_hanging(reference, ring8, tmp_path):
  """A read-only workdir, then a read-only checkpoint directory from the start (both refused before
  compiling), then one made read-only mid-run with async saves (one line within seconds, no hang); made
  writable again, the rerun reproduces the uninterrupted run."""
  ref = reference[0]
  w = tmp_path / "run"
  ck = w / "checkpoints"
  ck.mkdir(parents=True)
  out = tmp_path / "out"
  out.mkdir()
  script = f"""
set -u
mount --bind {w} {w} && mount -o remount,ro,bind {w}
{_cmd(ring8, w)} 2> {out}/workdir.err; echo $? > {out}/workdir.rc
umount {w}
mount --bind {ck} {ck} && mount -o remount,ro,bind {ck}
date +%s.%N > {out}/start.t0
{_cmd(ring8, w)} 2> {out}/start.err; echo $? > {out}/start.rc; date +%s.%N > {out}/start.t1
mount -o remount,rw,bind {ck}
timeout -s KILL {faults.TIMEOUT} {_cmd(ring8, w)} 2> {out}/mid.err &
pid=$!
while [ ! -d {ck}/{EVERY} ] && kill -0 $pid 2>/dev/null; do sleep 0.002; done
# A remount to read-only fails (EBUSY) while a save holds a file open for writing: retry until it holds
# (on a loaded machine the first try often meets the async save of step EVERY), or the run has ended.
until mount -o remount,ro,bind {ck} 2>/dev/null; do kill -0 $pid 2>/dev/null || break; sleep 0.001; done
touch {out}/mid.ro
date +%s.%N > {out}/mid.t0; wait $pid; echo $? > {out}/mid.rc; date +%s.%N > {out}/mid.t1
ls {ck} > {out}/mid.ls
mount -o remount,rw,bind {ck}
{_cmd(ring8, w)} 2> {out}/rerun.err; echo $? > {out}/rerun.rc
"""
  _in_namespace(script, ring8.env)
  read = lambda name: (out / name).read_text().strip()  # noqa: E731
  assert read("workdir.rc") == "2", read("workdir.err")[-3000:]
  line = _one_error_line(read("workdir.err"))
  assert f"cannot write the lock {w}/jgan.lock: Read-only file system (EROFS)" in line, line
  assert read("start.rc") == "2", read("start.err")[-3000:]
  line = _one_error_line(read("start.err"))
  assert f"cannot write to {ck}: Read-only file system (EROFS)" in line, line
  # 137: the hang guard (timeout -s KILL) ended a run that hung on the read-only directory.
  err = read("mid.err")
  head = err[err.find("Traceback") :][:3000] if "Traceback" in err else ""  # which call let an error through
  assert read("mid.rc") == "2", read("mid.rc") + ": " + head + "\n...\n" + err[-3000:]
  line = _one_error_line(read("mid.err"))
  assert "Read-only file system (EROFS)" in line and f"the last good checkpoint {ck}/" in line, line
  mid_s = float(read("mid.t1")) - float(read("mid.t0"))
  assert read("rerun.rc") == "0", read("rerun.err")[-3000:]
  faults.assert_identical(w, ref, TOTAL)
  print(
    f"read-only from the start: error after {float(read('start.t1')) - float(read('start.t0')):.1f} s "
    f"(start-up included); "
    f"read-only mid-run: error {mid_s:.1f} s after the remount ({line[:200]}...); "
    f"checkpoints then: {read('mid.ls').split()}; rerun identical"
  )


@pytest.mark.slow
@needs_namespace
def test_full_disk_fails_in_one_line_leaves_no_temporary_checkpoint_and_resumes(reference, ring8, tmp_path):
  """The workdir on a 1.6 MB tmpfs (a real ENOSPC): the third checkpoint (~0.6 MB each) does not fit."""
  ref = reference[0]
  w = tmp_path / "run"
  w.mkdir()
  out = tmp_path / "out"
  out.mkdir()
  script = f"""
set -u
mount -t tmpfs -o size=1600k tmpfs {w}
{_cmd(ring8, w)} 2> {out}/full.err; echo $? > {out}/full.rc
ls {w}/checkpoints > {out}/full.ls
mount -o remount,size=64m {w}
{_cmd(ring8, w)} 2> {out}/rerun.err; echo $? > {out}/rerun.rc
cp -a {w} {tmp_path}/copy
"""
  _in_namespace(script, ring8.env)
  read = lambda name: (out / name).read_text().strip()  # noqa: E731
  assert read("full.rc") == "2", read("full.err")[-3000:]
  line = _one_error_line(read("full.err"))
  assert "No space left on device (ENOSPC)" in line and "the last good checkpoint" in line, line
  names = read("full.ls").split()
  assert names and all(n.isdigit() for n in names), names  # no <step>.orbax-checkpoint-tmp left behind
  assert read("rerun.rc") == "0", read("rerun.err")[-3000:]
  faults.assert_identical(tmp_path / "copy", ref, TOTAL)
  print(f"full disk: {line[:220]}...; checkpoints left {names}; rerun identical")


@pytest.mark.slow
def test_workdir_deleted_mid_run_fails_in_one_line(ring8, tmp_path):
  w = tmp_path / "run"
  p = ring8.start(w)
  between_saves = faults.kill_points(TOTAL)["between saves"][0]  # a finished checkpoint, no save in flight
  assert faults.kill_when(p, lambda: between_saves(w, p), None, armed=faults.training(w))
  # Renamed away first, so the run sees the whole directory vanish at once: rmtree alone deletes file by
  # file, and a run that lists its checkpoints mid-deletion rightly names one that is gone a moment later.
  os.rename(w, tmp_path / "deleted")
  shutil.rmtree(tmp_path / "deleted", ignore_errors=True)
  _, err = p.communicate(timeout=faults.TIMEOUT)  # the hang guard
  assert p.returncode == 2, err[-3000:]
  line = _one_error_line(err)
  assert "(ENOENT)" in line or "vanished" in line, line
  # What survives is named: nothing, or a save that was in flight when the directory went (TensorStore
  # re-creates the parents of the files it writes).
  done = faults.disk(w)[0]
  assert (f"the last good checkpoint {w}/checkpoints/{done[-1]} " in line) if done else line.endswith("is left"), line
  print(f"workdir deleted: {line[:200]}")


# ---------------------------------------------------------------------------------------------------
# In-process


def _ring8(steps=12, log_every=4, every=6):
  c = load_config("ring8")
  c.parallel.num_devices = 1
  c.train.steps, c.train.steps_per_call, c.train.log_every = steps, 1, log_every
  c.train.batch_size, c.train.num_samples, c.train.sample_every, c.train.progress = 64, 64, 0, False
  c.checkpoint.every_steps = every
  return c


@pytest.fixture(scope="module")
def ring8_inprocess(tmp_path_factory):
  """An uninterrupted in-process run of :func:`_ring8`: ``(workdir, final state)``."""
  workdir = tmp_path_factory.mktemp("ring8_inprocess")
  return workdir, jax.device_get(train.train_and_evaluate(_ring8(), str(workdir)))


def test_signal_between_logging_steps_saves_the_open_window_and_the_rows_match(ring8_inprocess, tmp_path, monkeypatch):
  """SIGINT delivered while step 7 runs (logging every 4 steps, checkpoints every 6): the run stops after
  step 7 without writing a row, the checkpoint holds steps 7's metrics, and the resumed run's row at
  step 8 is the mean over 7..8 that the uninterrupted run writes."""
  ref_dir, ref = ring8_inprocess
  make = data_lib.make_iterator

  class Interrupting:
    def __init__(self, it):
      self.it, self.n = it, 0

    def __next__(self):
      self.n += 1
      if self.n == 7:
        os.kill(os.getpid(), signal.SIGINT)
      return next(self.it)

    def get_state(self):
      return self.it.get_state()

    def set_state(self, s):
      self.it.set_state(s)

  w = tmp_path / "run"
  monkeypatch.setattr(data_lib, "make_iterator", lambda *a, **k: Interrupting(make(*a, **k)))
  stopped = train.train_and_evaluate(_ring8(), str(w))
  assert int(stopped.step) == 7
  assert [r["step"] for r in faults.rows(w)] == [4, 6]  # no row at step 7: its window went into the checkpoint
  window = ckpt_lib.Checkpointer(resume.locate(str(w)), read_only=True).read_json(7)["log"]
  assert window["first"] == 7 and len(window["rows"]) == 1 and "d_loss" in window["names"]
  monkeypatch.setattr(data_lib, "make_iterator", make)
  final = train.train_and_evaluate(_ring8(), str(w))
  assert faults.rows(w) == faults.rows(ref_dir)
  for x, y in zip(faults.leaves(jax.device_get(final)), faults.leaves(ref)):
    assert np.array_equal(x, y)


def test_full_disk_while_logging_is_one_line_and_keeps_the_checkpoints(ring8_inprocess, tmp_path, monkeypatch):
  """ENOSPC appending metrics.jsonl at step 8 (injected: a monkeypatched writer): one WorkdirError line
  naming the file and the intact checkpoint, no unfinished save left, the lock released; the rerun
  (space freed) finishes identical to an uninterrupted run."""
  import errno

  from jgan import writers

  ref_dir, ref = ring8_inprocess
  w = tmp_path / "run"
  scalars = writers.RunWriter.scalars

  def full(self, step, values, **kw):
    if step == 8:
      raise OSError(errno.ENOSPC, "No space left on device", os.path.join(self.workdir, "metrics.jsonl"))
    return scalars(self, step, values, **kw)

  monkeypatch.setattr(writers.RunWriter, "scalars", full)
  with pytest.raises(fs_errors.WorkdirError) as e:
    train.train_and_evaluate(_ring8(), str(w))
  msg = str(e.value)
  assert "\n" not in msg
  assert msg.startswith(f"cannot write the run: No space left on device (ENOSPC): {w}/metrics.jsonl; ")
  assert f"the last good checkpoint {w}/checkpoints/6 (step 6) is intact" in msg, msg
  assert sorted(os.listdir(w / "checkpoints")) == ["6"] and not os.path.exists(w / workdir_lib.LOCK_NAME)
  monkeypatch.setattr(writers.RunWriter, "scalars", scalars)
  final = train.train_and_evaluate(_ring8(), str(w))
  assert faults.rows(w) == faults.rows(ref_dir)
  for x, y in zip(faults.leaves(jax.device_get(final)), faults.leaves(ref)):
    assert np.array_equal(x, y)


def test_lock_names_the_holder_and_replaces_stale_ones(tmp_path, monkeypatch, capsys):
  a = workdir_lib.WorkdirLock(str(tmp_path))
  a.acquire()
  info = json.load(open(a.path))
  assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
  with pytest.raises(workdir_lib.WorkdirLocked, match=rf"in use by another jgan run: PID {os.getpid()} on host "):
    workdir_lib.WorkdirLock(str(tmp_path)).acquire()
  a.release()
  assert not os.path.exists(a.path)

  def write(**holder):
    with open(a.path, "w") as f:
      json.dump({"pid": 1, "host": "elsewhere", "started_at": "then", "argv": ["x"], "token": "t", **holder}, f)

  # Same host, no such process (a kill -9): replaced with a warning.
  dead = subprocess.Popen([sys.executable, "-c", "pass"])
  dead.wait()
  write(pid=dead.pid, host=socket.gethostname())
  b = workdir_lib.WorkdirLock(str(tmp_path))
  b.acquire()
  assert f"removed the stale lock {a.path} of PID {dead.pid}" in capsys.readouterr().err
  b.release()
  # Same host, the PID alive but a different process (PID reuse): stale.
  write(pid=os.getpid(), host=socket.gethostname(), start="1")
  c = workdir_lib.WorkdirLock(str(tmp_path))
  c.acquire()
  c.release()
  # Another host: live while it beats, stale after STALE_AFTER_S without a heartbeat.
  write(host="node7")
  with pytest.raises(workdir_lib.WorkdirLocked, match=r"PID 1 on host node7 .*last heartbeat less than a minute ago"):
    workdir_lib.WorkdirLock(str(tmp_path)).acquire()
  old = time.time() - workdir_lib.STALE_AFTER_S - 5
  os.utime(a.path, (old, old))
  d = workdir_lib.WorkdirLock(str(tmp_path))
  d.acquire()
  assert "no heartbeat from host node7" in capsys.readouterr().err
  # The heartbeat refreshes the lock; losing it (the workdir deleted) is noticed.
  monkeypatch.setattr(workdir_lock, "HEARTBEAT_S", 0.05)
  d.release()
  e = workdir_lib.WorkdirLock(str(tmp_path))
  e.acquire()
  os.utime(e.path, (old, old))
  wait_until(lambda: os.stat(e.path).st_mtime > old + 1, timeout_s=60, what="a heartbeat refreshing the lock")
  os.remove(e.path)
  with pytest.raises(fs_errors.WorkdirError, match="vanished"):
    e.check()
  e.release()


def test_filesystem_errors_are_described_in_one_line(tmp_path):
  import errno

  e = OSError(errno.ENOSPC, "No space left on device", "/w/metrics.jsonl")
  assert fs_errors.describe(e) == "No space left on device (ENOSPC): /w/metrics.jsonl"
  assert fs_errors.is_filesystem_error(e)
  ts = ValueError(
    'PERMISSION_DENIED: Error writing local file "/w/checkpoints/4.orbax-checkpoint-tmp/x": '
    "Failed to open: Read-only file system [os_error_code='30']"
  )
  assert fs_errors.describe(RuntimeError("wrapped").with_traceback(None)) == "RuntimeError: wrapped"
  try:
    raise RuntimeError("save failed") from ts
  except RuntimeError as wrapped:
    assert fs_errors.describe(wrapped) == "Read-only file system (EROFS): /w/checkpoints/4.orbax-checkpoint-tmp/x"
    assert fs_errors.is_filesystem_error(wrapped)
  missing = FileNotFoundError(errno.ENOENT, "No such file or directory", "/data/mnist/x")
  assert not fs_errors.is_filesystem_error(missing, under="/w")  # a dataset, not the workdir
  assert fs_errors.is_filesystem_error(OSError(errno.ENOENT, "gone", "/w/metrics.jsonl"), under="/w")
  assert not fs_errors.is_filesystem_error(FileNotFoundError("dataset 'x' is not prepared"))


@pytest.mark.parametrize("url", ["s3://bucket/run", "memory://run", "gs://"])
def test_url_workdir_of_an_unsupported_storage_is_refused_in_one_line_and_creates_nothing(url, tmp_path, monkeypatch):
  """A URL used to become a local directory named 's3:'; one jgan cannot write (gs:// it can: tests/test_storage.py)
  is refused before anything is written, naming the valid choices."""
  monkeypatch.chdir(tmp_path)
  with pytest.raises(ValueError, match=rf"^workdir={re.escape(repr(url))}: ") as e:
    workdir_lib.lock_run(url)
  assert "valid: a local or mounted directory path, or gs://BUCKET/PATH" in str(e.value) and "\n" not in str(e.value)
  smoke = os.path.join(ROOT, "configs", "smoke.py")
  r = subprocess.run(
    [sys.executable, os.path.join(ROOT, "launch.py"), "--config", smoke, "--workdir", url],
    cwd=tmp_path,
    capture_output=True,
    text=True,
    timeout=faults.TIMEOUT,
  )
  assert r.returncode == 2 and _one_error_line(r.stderr).startswith(f"error: workdir={url!r}"), r.stderr[-2000:]
  assert os.listdir(tmp_path) == []
