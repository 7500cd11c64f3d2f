"""gs:// workdirs against a Google Cloud Storage emulator on 127.0.0.1 (fake-gcs-server, started here).

The reference for each check is independent of the code under test: the local file system (the same
operations on a local directory give the same results), the storage API's own listing of the bucket
(read with plain HTTP requests, not through jgan or its libraries), and an uninterrupted run on a local
workdir (the run in the bucket must end bit-identical to it). How the stack is pointed at the emulator:
tests/gcs_emulator.py.

* jgan.storage: files, appends, atomic rewrites, listings, copies and moves in a bucket behave as on a
  local directory;
* jgan.object_lock: the lease names its holder, is replaced when stale (dead PID on this host, no
  heartbeat from another host), is renewed by its heartbeat and notices a takeover or deletion; of many
  runs racing for it (threads), exactly one takes it, also when they race to take over a stale one (the
  storage server's generation preconditions decide); a missing bucket is one line;
* jgan.checkpoint in a bucket: a step directory without Orbax's commit file (an unfinished save) is
  deleted when a run opens its checkpoints, finished ones are kept;
* a whole run (ring8, 300 steps, checkpoints every 40) with ``--workdir gs://...``: SIGKILL between saves,
  a rerun stopped by SIGTERM (exit 75), a last rerun; its final checkpoint, data iterator, metrics.jsonl
  and TensorBoard scalars equal the local uninterrupted run's; ``jgan eval`` on it works; and the three
  processes wrote nothing to the local disk (fresh HOME, TMPDIR and current directory) but caches.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading

import pytest

from jgan import checkpoint as ckpt_lib
from jgan import filesystem_errors as fs_errors
from jgan import object_lock, storage, workdir_lock
from jgan import workdir as workdir_lib
from tests import faults, gcs_emulator
from tests.helpers import ROOT, wait_until
from tests.test_faults import RING8, TOTAL

BUCKET = "jgan-test"


@pytest.fixture(scope="module")
def emulator():
  """fake-gcs-server with one bucket; this process's storage clients pointed at it."""
  em = gcs_emulator.Emulator()
  try:
    em.create_bucket(BUCKET)
    with pytest.MonkeyPatch.context() as mp:
      for k, v in gcs_emulator.client_env(em.url).items():
        mp.setenv(k, v)
      yield em
  finally:
    em.stop()


def _files(root: str) -> dict[str, str]:
  """``{relative path: content}`` of every file under ``root`` (local or in the bucket)."""
  return {storage.relpath(p, root): storage.read_text(p) for p in storage.files_under(root)}


def test_files_in_a_bucket_behave_as_in_a_local_directory(emulator, tmp_path):
  results = []
  for root in (str(tmp_path / "unit"), f"gs://{BUCKET}/unit"):
    storage.makedirs(storage.join(root, "a"))
    storage.write_text(storage.join(root, "a", "x.txt"), "one\n")
    storage.append_text(storage.join(root, "a", "x.txt"), "two\n")
    storage.append_text(storage.join(root, "log.jsonl"), '{"step": 1}\n')
    storage.append_text(storage.join(root, "log.jsonl"), '{"step": 2}\n')
    storage.replace_text(storage.join(root, "r.json"), "old")
    storage.replace_text(storage.join(root, "r.json"), "new")
    storage.copyfile(storage.join(root, "a", "x.txt"), storage.join(root, "a", "y.txt"))
    storage.makedirs(storage.join(root, "b", "c"))
    storage.write_bytes(storage.join(root, "b", "c", "z.bin"), b"\x00\xff")
    storage.move(storage.join(root, "b"), storage.join(root, "moved"))
    with pytest.raises(FileNotFoundError):
      storage.listdir(storage.join(root, "nothing-here"))
    results.append(
      (
        sorted(storage.listdir(root)),
        _files(storage.join(root, "a")),
        storage.read_text(storage.join(root, "log.jsonl")),
        storage.read_text(storage.join(root, "r.json")),
        storage.read_bytes(storage.join(root, "moved", "c", "z.bin")),
        storage.isdir(storage.join(root, "a")),
        storage.isfile(storage.join(root, "a", "x.txt")),
        storage.exists(storage.join(root, "b")),
      )
    )
    storage.rmtree(storage.join(root, "moved"))
    assert not storage.exists(storage.join(root, "moved"))
  local, bucket = results
  assert bucket == local
  assert local[:2] == (["a", "log.jsonl", "moved", "r.json"], {"x.txt": "one\ntwo\n", "y.txt": "one\ntwo\n"})
  assert [n for n in emulator.names(BUCKET, "unit/") if n.startswith("unit/moved")] == []  # the API's own listing


def _write_holder(path: str, **holder) -> None:
  """Another run's lock (written with the storage client directly, as that run would have)."""
  from google.cloud import storage as gcs

  bucket, _, key = path[len("gs://") :].partition("/")
  info = {"pid": 1, "host": "elsewhere", "started_at": "then", "argv": ["x"], "token": "t", **holder}
  gcs.Client().bucket(bucket).blob(key).upload_from_string(json.dumps(info))


def test_the_lease_names_its_holder_replaces_stale_ones_and_notices_a_takeover(emulator, monkeypatch, capsys):
  workdir = f"gs://{BUCKET}/lease"
  a = workdir_lib.make_lock(workdir)
  assert isinstance(a, object_lock.ObjectLock) and a.path == f"{workdir}/jgan.lock"
  a.acquire()
  stored = json.loads(emulator.read(BUCKET, "lease/jgan.lock"))
  assert stored["pid"] == os.getpid() and stored["host"] == socket.gethostname()
  with pytest.raises(workdir_lib.WorkdirLocked, match=rf"in use by another jgan run: PID {os.getpid()} on host "):
    workdir_lib.make_lock(workdir).acquire()
  a.release()
  assert emulator.read(BUCKET, "lease/jgan.lock") is None
  # Same host, no such process (a kill -9): replaced with a warning.
  dead = subprocess.Popen([sys.executable, "-c", "pass"])
  dead.wait()
  _write_holder(a.path, pid=dead.pid, host=socket.gethostname())
  b = workdir_lib.make_lock(workdir)
  b.acquire()
  assert f"replaced the stale lock {a.path} of PID {dead.pid}" in capsys.readouterr().err
  b.release()
  # Another host: live while it beats, stale after STALE_AFTER_S without a heartbeat.
  _write_holder(a.path, host="node7")
  with pytest.raises(workdir_lib.WorkdirLocked, match=r"PID 1 on host node7 .*last heartbeat less than a minute ago"):
    workdir_lib.make_lock(workdir).acquire()
  monkeypatch.setattr(workdir_lock, "STALE_AFTER_S", -1.0)  # every lock from another host is stale now
  c = workdir_lib.make_lock(workdir)
  c.acquire()
  assert "no heartbeat from host node7" in capsys.readouterr().err
  monkeypatch.setattr(workdir_lock, "STALE_AFTER_S", 120.0)
  # The heartbeat renews the lease (a new generation); a takeover and a deletion are noticed.
  monkeypatch.setattr(workdir_lock, "HEARTBEAT_S", 0.05)
  c.release()
  d = workdir_lib.make_lock(workdir)
  d.acquire()
  first = d.generation
  wait_until(lambda: d.generation != first, timeout_s=60, what="a heartbeat renewing the lease")
  _write_holder(a.path, host="node8", pid=77)
  with pytest.raises(fs_errors.WorkdirError, match=r"the lock \S+ was taken by PID 77 on host node8"):
    d.check()
  d.release()
  assert json.loads(emulator.read(BUCKET, "lease/jgan.lock"))["host"] == "node8"  # not ours: left alone
  e = workdir_lib.make_lock(f"gs://{BUCKET}/lease2")
  e.acquire()
  from google.cloud import storage as gcs

  gcs.Client().bucket(BUCKET).blob("lease2/jgan.lock").delete()
  with pytest.raises(fs_errors.WorkdirError, match="vanished"):
    e.check()
  e.release()


@pytest.mark.parametrize("stale", [False, True])
def test_of_many_runs_racing_for_the_lease_exactly_one_takes_it(emulator, monkeypatch, stale):
  """Eight locks (threads) acquire at once: on an empty workdir (``ifGenerationMatch=0``), and over a
  stale lock of another host (each takes over with the stale generation's precondition)."""
  workdir = f"gs://{BUCKET}/race-{stale}"
  if stale:
    _write_holder(storage.join(workdir, "jgan.lock"), host="gone")
    monkeypatch.setattr(workdir_lock, "STALE_AFTER_S", -1.0)
  locks = [workdir_lib.make_lock(workdir) for _ in range(8)]
  start = threading.Barrier(len(locks))

  def take(lock):
    start.wait()
    try:
      lock.acquire()
      return "taken"
    except workdir_lib.WorkdirLocked as e:
      return str(e)

  with concurrent.futures.ThreadPoolExecutor(len(locks)) as pool:
    outcomes = list(pool.map(take, locks))
  assert outcomes.count("taken") == 1, outcomes
  winner = locks[outcomes.index("taken")]
  assert json.loads(emulator.read(BUCKET, f"race-{stale}/jgan.lock"))["token"] == winner.info["token"]
  assert all("in use by another jgan run" in o for o in outcomes if o != "taken")
  for lock in locks:
    lock.release()
  assert emulator.read(BUCKET, f"race-{stale}/jgan.lock") is None


def test_a_missing_bucket_is_one_line(emulator):
  with pytest.raises(fs_errors.WorkdirError) as e:
    workdir_lib.lock_run("gs://no-such-bucket-jgan/run")
  assert str(e.value) == (
    "cannot write the lock gs://no-such-bucket-jgan/run/jgan.lock: the bucket 'no-such-bucket-jgan' does not exist"
  )


def test_gs_without_the_cloud_extra_is_one_line(monkeypatch):
  monkeypatch.setattr(storage, "_installed", lambda module: module != "gcsfs")
  with pytest.raises(ValueError) as e:
    workdir_lib.check_path("gs://bucket/run")
  assert str(e.value) == "workdir='gs://bucket/run': gs:// needs gcsfs: pip install 'jgan[cloud]'"


def test_an_unfinished_save_in_a_bucket_is_deleted_when_a_run_opens_its_checkpoints(emulator):
  """In a bucket Orbax writes ``<step>/`` in place and marks it finished with commit_success.txt."""
  ck = f"gs://{BUCKET}/ck/checkpoints"
  for name in ("4/commit_success.txt", "4/state/x", "8/state/x", "8/_CHECKPOINT_METADATA"):
    storage.write_text(storage.join(ck, name), "x")
  ckpt = ckpt_lib.Checkpointer(ck)  # opened for writing: unfinished saves go
  assert ckpt.finished_steps_on_disk() == [4] and ckpt.steps() == [4]
  assert emulator.names(BUCKET, "ck/") == ["ck/checkpoints/4/commit_success.txt", "ck/checkpoints/4/state/x"]
  ckpt.close()


def _on_bucket(emulator, prefix: str) -> tuple[list[int], list[int]]:
  """``(finished checkpoint steps, steps of unfinished saves)`` under ``prefix``, from the API's listing."""
  ck = prefix + "/checkpoints/"
  names = emulator.names(BUCKET, ck)
  steps = {int(s) for n in names if (s := n[len(ck) :].split("/")[0]).isdigit()}
  done = sorted(s for s in steps if f"{ck}{s}/commit_success.txt" in names)
  return done, sorted(steps - set(done))


def _last_row(emulator, prefix: str) -> int:
  data = emulator.read(BUCKET, prefix + "/metrics.jsonl") or b""
  lines = [ln for ln in data.decode().splitlines() if ln.strip()]
  return json.loads(lines[-1])["step"] if lines else 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """The uninterrupted ring8 run on a local workdir (tests/test_faults.py's, made once per session)."""
  ring8 = faults.Launcher(RING8, faults.subprocess_env(tmp_path_factory), TOTAL)
  return faults.once(tmp_path_factory, "faults_ring8_reference", lambda d: faults.ring8_reference(ring8, d))[0]


@pytest.mark.slow
def test_a_run_in_a_bucket_is_killed_resumes_bit_identical_and_is_evaluated_writing_nothing_locally(
  emulator, reference, tmp_path, tmp_path_factory
):
  prefix = "runs/ring8"
  workdir = f"gs://{BUCKET}/{prefix}"
  home, tmp, cwd = (tmp_path / n for n in ("home", "tmp", "cwd"))
  for d in (home, tmp, cwd):
    d.mkdir()
  env = {**faults.subprocess_env(tmp_path_factory), **gcs_emulator.client_env(emulator.url)}
  env.update(HOME=str(home), TMPDIR=str(tmp))
  args = [sys.executable, os.path.join(ROOT, "launch.py"), "--config", os.path.join(ROOT, RING8[1]), *RING8[2:]]
  args += ["--workdir", workdir]

  def start():
    return subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

  # 1. SIGKILL between two saves (a save that began meanwhile is an unfinished save: also resumable).
  p = start()
  killed = faults.kill_when(
    p,
    lambda: (d := _on_bucket(emulator, prefix))[0] and not d[1] and _last_row(emulator, prefix) > d[0][-1],
    armed=lambda: _last_row(emulator, prefix) > 0,
  )
  _, err = p.communicate(timeout=faults.TIMEOUT)
  assert killed and p.returncode == -signal.SIGKILL, err[-3000:]
  first_done, _ = _on_bucket(emulator, prefix)
  assert emulator.read(BUCKET, prefix + "/jgan.lock") is not None  # the dead run's lease, stale now
  keep = first_done[-1]
  assert [r for r in faults.rows(workdir) if r["step"] <= keep] == [
    r for r in faults.rows(reference) if r["step"] <= keep
  ]
  # 2. The rerun replaces the stale lease, resumes, and is stopped by SIGTERM after its next save.
  p = start()
  faults.kill_when(p, lambda: (d := _on_bucket(emulator, prefix))[0][-1] > keep and not d[1], sig=signal.SIGTERM)
  _, err = p.communicate(timeout=faults.TIMEOUT)
  assert p.returncode == 75 and "SIGTERM received" in err, err[-3000:]
  assert re.search(r"warning: replaced the stale lock \S+ of PID \d+ on host \S+ \(no process", err), err[-2000:]
  assert f"resumed from {workdir}/checkpoints/{keep} (step {keep})" in err, err[-2000:]
  # 3. The last rerun finishes: identical to the uninterrupted local run.
  r = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=faults.TIMEOUT)
  assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
  faults.assert_identical(workdir, reference, TOTAL)
  done, unfinished = _on_bucket(emulator, prefix)
  assert done[-1] == TOTAL and not unfinished
  # 4. jgan eval reads the bucket's checkpoint and appends its row there.
  e = subprocess.run(
    [sys.executable, "-m", "jgan", "eval", "--workdir", workdir, "--no_progress"],
    cwd=cwd,
    env=env,
    capture_output=True,
    text=True,
    timeout=faults.TIMEOUT,
  )
  assert e.returncode == 0 and f"{workdir} step {TOTAL} (ema):" in e.stdout, e.stderr[-3000:]
  (row,) = [json.loads(line) for line in emulator.read(BUCKET, prefix + "/evals.jsonl").decode().splitlines()]
  assert row["step"] == TOTAL and row["generator"] == "ema"
  assert any(".eval-" in n for n in emulator.names(BUCKET, prefix + "/tb/"))
  # 5. Nothing on the local disk but caches.
  written = sorted(
    os.path.relpath(os.path.join(d, f), tmp_path) for root in (home, tmp, cwd) for d, _, fs in os.walk(root) for f in fs
  )
  assert all(w.startswith(os.path.join("home", ".cache") + os.sep) for w in written), written
