"""Multi-process training on ``jax.distributed`` with real processes, and its failure modes.

Real processes: ``launch.py`` started twice per run (2 processes x 2 CPU devices each, gloo CPU
collectives, a coordinator on a free local port), as a cluster scheduler would start them:

* 20 steps of the smoke config on 2 x 2 devices end with the same state as one process with 4 devices
  (in-process reference), to float32 reduction-order rounding: measured max |diff| 2.4e-7 over every
  leaf (params, BatchNorm stats, Adam states, EMA); we allow ``atol = rtol = 1e-5``, well below one
  Adam step (~lr = 2e-4), so a wrong batch or a lost update would fail;
* SIGTERM to process 1 alone: both processes stop after the same step, write its checkpoint together
  and exit 0; rerunning resumes and ends bit-identical to the uninterrupted 2-process run;
* processes given different configs both fail with one line naming the process and the fields; an
  unreachable coordinator and a peer that never starts end the process within the bound, clearly.

The pytest process itself has 8 fake devices (conftest.py); the subprocesses get their own XLA_FLAGS.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jgan import multihost, resume, sharding, train
from tests.helpers import ROOT, load_config, wait_until

ATOL = RTOL = 1e-5  # 2 x 2 vs 1 x 4 devices (see the module docstring)
STEPS, EVERY = 20, 5  # train steps; checkpoint interval
RUN_TIMEOUT = 900  # s, per group of processes (a loaded 2-core CI machine compiles slowly)


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
  """Subprocess environment: 2 CPU devices per process, gloo, a shared compilation cache, own data dir.

  The cache only saves compile time: the 2-process runs compile the same program.
  """
  root = tmp_path_factory.mktemp("multihost")
  e = dict(os.environ)
  e.update(
    XLA_FLAGS="--xla_force_host_platform_device_count=2",
    JAX_PLATFORMS="cpu",
    JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo",
    JAX_COMPILATION_CACHE_DIR=str(root / "jax_cache"),
    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
    PYTHONUNBUFFERED="1",
  )
  for var in multihost.CLUSTER_HINTS.values():  # no auto-detected cluster from the CI runner
    e.pop(var, None)
  return {"env": e, "data_dir": str(root / "tfds")}


def _args(workdir, data_dir, *extra):
  return [
    sys.executable,
    "launch.py",
    "--config",
    "configs/smoke.py",
    "--workdir",
    str(workdir),
    f"--config.train.steps={STEPS}",
    f"--config.checkpoint.every_steps={EVERY}",
    "--config.train.log_every=1",
    f"--config.data.data_dir={data_dir}",
    *extra,
  ]


def start_processes(commands, env):
  return [
    subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for c in commands
  ]


def finish_processes(procs, timeout=RUN_TIMEOUT):
  """Waits for the processes; returns ``[(returncode, stderr)]``; kills them all on a timeout."""
  deadline = time.monotonic() + timeout
  out = []
  try:
    for p in procs:
      _, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
      out.append((p.returncode, err))
  except subprocess.TimeoutExpired:
    pytest.fail(f"processes still running after {timeout} s: {[p.args for p in procs]}")
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.communicate()
  return out


def run_processes(commands, env, timeout=RUN_TIMEOUT):
  """Runs the commands concurrently; returns ``[(returncode, stderr)]``; kills them all on a timeout."""
  return finish_processes(start_processes(commands, env), timeout)


def group_commands(workdir, data_dir, *extra, n=2, per_process=None):
  """``n`` launch.py commands of one run; ``per_process[i]`` adds arguments to process ``i`` only."""
  port = free_port()
  return [
    _args(
      workdir,
      data_dir,
      *extra,
      f"--coordinator_address=127.0.0.1:{port}",
      f"--num_processes={n}",
      f"--process_id={i}",
      "--distributed_timeout=120",
      *(per_process or {}).get(i, ()),
    )
    for i in range(n)
  ]


def launch_group(workdir, data_dir, env, *extra, n=2, per_process=None):
  return run_processes(group_commands(workdir, data_dir, *extra, n=n, per_process=per_process), env)


def _last_row_step(workdir) -> int:
  try:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      lines = f.read().splitlines()
    return json.loads(lines[-1])["step"] if lines else 0
  except (OSError, ValueError, KeyError):
    return 0


def _leaves(state):
  return [
    np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x)
    for x in jax.tree.leaves(state)
  ]


def _rows(workdir):
  rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  return [{k: v for k, v in r.items() if k != "steps_per_sec"} for r in rows]


def _ok(results, code=0):
  for i, (rc, err) in enumerate(results):
    others = "".join(f"\n--- process {j} (status {r}): {e[-1500:]}" for j, (r, e) in enumerate(results) if j != i)
    assert rc == code, f"process {i}: {err[-3000:]}{others}"
    assert f"jax.distributed: process {i} of 2: 2 local device(s)" in err and "of 4 global" in err, err[-2000:]


# ---------------------------------------------------------------------------------------------------
# Real processes


@pytest.mark.slow
def test_two_processes_match_one_process_and_resume_exactly(env, tmp_path):
  t0 = time.monotonic()
  ref_cfg = load_config("smoke")
  ref_cfg.parallel.num_devices = 4
  ref_cfg.train.steps, ref_cfg.checkpoint.every_steps, ref_cfg.train.log_every = STEPS, EVERY, 1
  ref_cfg.data.data_dir = env["data_dir"]
  ref = jax.device_get(train.train_and_evaluate(ref_cfg, str(tmp_path / "ref")))
  t_ref = time.monotonic()

  full = tmp_path / "full"
  _ok(launch_group(full, env["data_dir"], env["env"]))
  t_full = time.monotonic()
  full_state, _ = resume.load_state(str(full), step=STEPS)
  assert int(full_state.step) == STEPS
  worst = 0.0
  for x, y in zip(_leaves(full_state), _leaves(ref), strict=True):
    np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL)
    worst = max(worst, float(np.max(np.abs(x.astype(np.float64) - y))) if x.size else 0.0)
  for a, b in zip(_rows(full), _rows(tmp_path / "ref"), strict=True):  # logged by process 0 only
    assert a["step"] == b["step"]
    np.testing.assert_allclose([a[k] for k in sorted(a)], [b[k] for k in sorted(a)], rtol=1e-4, atol=1e-5)
  info = json.load(open(full / "run_info.json"))
  assert info["process_count"] == 2 and len(info["devices"]) == 4
  assert os.path.exists(full / "samples_final.png")

  # Preempt: SIGTERM to process 1 only, once training runs. Both processes agree to stop after the same
  # step, save that checkpoint together and exit 0; rerunning the command resumes.
  part = tmp_path / "part"
  procs = start_processes(group_commands(part, env["data_dir"]), env["env"])
  try:
    for p in procs:
      wait_until(lambda: _last_row_step(part) >= 2, timeout_s=RUN_TIMEOUT, what="training's second row", proc=p)
  except BaseException:  # a hang or a process that ended: stop the others before reporting it
    for p in procs:
      p.kill()
      p.communicate()
    raise
  procs[1].send_signal(signal.SIGTERM)
  stopped = finish_processes(procs)
  _ok(stopped, code=75)  # every process: "preempted, checkpoint saved" (preemption.EXIT_PREEMPTED)
  steps = [re.search(r"received: saved checkpoint \S+ at step (\d+) of", err) for _, err in stopped]
  assert all(steps), [err[-2000:] for _, err in stopped]
  stop = int(steps[0].group(1))
  assert int(steps[1].group(1)) == stop < STEPS and "SIGTERM (process 1) received" in stopped[0][1]
  assert str(stop) in os.listdir(part / "checkpoints") and _last_row_step(part) == stop
  t_stop = time.monotonic()
  resumed = launch_group(part, env["data_dir"], env["env"])
  _ok(resumed)
  for _, err in resumed:
    assert f"resumed from {part / 'checkpoints' / str(stop)} (step {stop})" in err
  t_resume = time.monotonic()
  part_state, _ = resume.load_state(str(part), step=STEPS)
  for i, (x, y) in enumerate(zip(_leaves(part_state), _leaves(full_state), strict=True)):
    assert x.dtype == y.dtype and np.array_equal(x, y), f"leaf {i} differs after the resume"
  assert _rows(part) == _rows(full)
  print(
    f"2x2 vs 1x4 max |diff| {worst:.2e}; stopped at step {stop}; times: reference {t_ref - t0:.0f} s, "
    f"2-process run {t_full - t_ref:.0f} s, stop {t_stop - t_full:.0f} s, resume {t_resume - t_stop:.0f} s"
  )


def test_processes_with_different_configs_fail_clearly(env, tmp_path):
  results = launch_group(
    tmp_path / "w", env["data_dir"], env["env"], per_process={1: ["--config.seed=1", "--config.model.g_width=16"]}
  )
  for rc, err in results:
    assert rc == 2, err[-3000:]
    line = [ln for ln in err.splitlines() if ln.startswith("error:")][-1]
    assert "the 2 processes disagree on the config" in line, line
    assert "process 1: model.g_width: 8 -> 16; seed: 0 -> 1" in line, line
  assert not os.path.exists(tmp_path / "w" / "checkpoints")


@pytest.mark.slow
def test_a_held_workdir_stops_every_process_with_the_holder_named(env, tmp_path):
  """Only process 0 takes the workdir lock; when it is held by another live run, every process raises
  WorkdirLocked naming the holder (one collective), none waits. Through the library entry point: the
  command line would refuse even earlier, before joining (tests/test_faults.py)."""
  import json

  from jgan import workdir as workdir_lib

  w = tmp_path / "held"
  w.mkdir()
  holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
  try:
    lock = {
      "pid": holder.pid,
      "host": socket.gethostname(),
      "started_at": "then",
      "argv": ["jgan", "train"],
      "token": "t",
    }
    (w / workdir_lib.LOCK_NAME).write_text(json.dumps(lock))
    port = free_port()
    script = (
      "import sys; import jgan; from jgan import multihost, train, workdir; from tests.helpers import load_config\n"
      f"multihost.initialize('127.0.0.1:{port}', 2, int(sys.argv[1]), timeout_s=120, log=False)\n"
      "c = load_config('smoke'); c.data.data_dir = sys.argv[2]\n"
      "try:\n  train.train_and_evaluate(c, sys.argv[3])\n"
      "except workdir.WorkdirLocked as e:\n  print('LOCKED', e, file=sys.stderr); sys.exit(3)\n"
    )
    results = run_processes(
      [[sys.executable, "-c", script, str(i), env["data_dir"], str(w)] for i in range(2)], env["env"], timeout=300
    )
  finally:
    holder.kill()
    holder.wait()
  for i, (rc, err) in enumerate(results):
    assert rc == 3, f"process {i}: {err[-3000:]}"
    assert f"LOCKED workdir {w} is in use by another jgan run: PID {holder.pid} on host" in err, err[-2000:]
  assert not (w / "checkpoints").exists() and (w / workdir_lib.LOCK_NAME).exists()  # the holder's, untouched


def test_unreachable_coordinator_and_missing_peer_end_within_the_bound(env):
  bound = 5
  # Process 1 whose coordinator never starts; process 0 whose peer never starts (separate ports).
  lonely = [
    [
      sys.executable,
      "launch.py",
      "--config",
      "configs/smoke.py",
      "--workdir",
      "unused",
      f"--coordinator_address=127.0.0.1:{free_port()}",
      "--num_processes=2",
      f"--process_id={i}",
      f"--distributed_timeout={bound}",
    ]
    for i in (1, 0)
  ]
  t0 = time.monotonic()
  (rc1, err1), (rc0, err0) = run_processes(lonely, env["env"], timeout=300)
  elapsed = time.monotonic() - t0
  assert rc1 == 2 and f"is unreachable after {bound} s" in err1 and "start process 0" in err1, err1[-2000:]
  assert rc0 == 2, err0[-2000:]
  assert "process 0 of 2 (coordinator 127.0.0.1:" in err0 and f"within {bound} s" in err0, err0[-2000:]
  assert "Check failure" not in err0 + err1  # ended by jgan's message, not JAX's abort
  print(f"both ended in {elapsed:.1f} s (bound {bound} s plus start-up)")


# ---------------------------------------------------------------------------------------------------
# In-process (no JAX rendezvous)


def test_pop_flags_splits_distributed_flags():
  kw, rest = multihost.pop_flags(
    [
      "--config",
      "c.py",
      "--coordinator_address=h:1",
      "--num_processes",
      "4",
      "--process_id=3",
      "--distributed_timeout",
      "9.5",
      "--workdir=w",
    ]
  )
  assert kw == {"coordinator_address": "h:1", "num_processes": 4, "process_id": 3, "timeout_s": 9.5}
  assert rest == ["--config", "c.py", "--workdir=w"]
  assert multihost.pop_flags(["--distributed", "--config=c.py"]) == ({"auto": True}, ["--config=c.py"])
  assert multihost.pop_flags(["--config=c.py"]) == (None, ["--config=c.py"])
  with pytest.raises(ValueError, match=r"bad value in --num_processes=two: expected int"):
    multihost.pop_flags(["--num_processes=two"])


def test_wait_for_coordinator_is_bounded(monkeypatch):
  """The bound is counted on a fake clock (each retry's sleep advances it), so load cannot change it:
  with nothing listening, 0.5 s of 0.25 s retries is three connection attempts, then the error."""

  class Clock:
    now = 100.0

    def monotonic(self):
      return self.now

    def sleep(self, s):
      self.now += s

  clock, attempts = Clock(), []
  connect = socket.create_connection
  monkeypatch.setattr(multihost, "time", clock)
  monkeypatch.setattr(multihost.socket, "create_connection", lambda *a, **k: attempts.append(a) or connect(*a, **k))
  port = free_port()  # nothing listens there
  with pytest.raises(multihost.DistributedError, match=rf"127.0.0.1:{port} is unreachable after 0.5 s"):
    multihost.wait_for_coordinator(f"127.0.0.1:{port}", 0.5)
  assert len(attempts) == 3 and clock.now == 100.5
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    s.listen()
    assert multihost.wait_for_coordinator(f"127.0.0.1:{s.getsockname()[1]}", 5) == 0.0  # the first attempt
    with pytest.raises(multihost.DistributedError, match=r"cannot host the JAX coordinator on port"):
      multihost.check_port_free(f"127.0.0.1:{s.getsockname()[1]}")
  with pytest.raises(multihost.DistributedError, match=r"is not HOST:PORT"):
    multihost.wait_for_coordinator("nohost", 1)


def test_initialize_argument_errors(monkeypatch):
  for var in multihost.CLUSTER_HINTS.values():
    monkeypatch.delenv(var, raising=False)
  monkeypatch.setattr(multihost, "detected_clusters", lambda: [])
  with pytest.raises(multihost.DistributedError, match=r"missing: --num_processes, --process_id"):
    multihost.initialize("127.0.0.1:1")
  with pytest.raises(multihost.DistributedError, match=r"--distributed found no cluster environment"):
    multihost.initialize(auto=True)
  with pytest.raises(multihost.DistributedError, match=r"--process_id=2 must be in 0..1"):
    multihost.initialize("127.0.0.1:1", 2, 2)
  jax.devices()  # the backend is up: too late to join
  with pytest.raises(RuntimeError, match=r"must run before any JAX computation"):
    multihost.initialize("127.0.0.1:1", 2, 0)


def test_single_process_helpers_are_no_ops(tmp_path):
  multihost.check_same_config(load_config("smoke"), str(tmp_path))  # one process: nothing to compare
  sh = sharding.make_shardings(sharding.make_mesh(4))
  batch = {"x": np.arange(24, dtype=np.float32).reshape(1, 12, 2)}
  assert sharding.global_shape((1, 12, 2), sh.batch) == (1, 12, 2)
  out = sharding.put_batch(batch, sh.batch)
  assert out["x"].sharding == sh.batch and np.array_equal(np.asarray(out["x"]), batch["x"])
  assert multihost.info().process_count == 1
