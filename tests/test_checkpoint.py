"""Checkpoints, exact resume and failure handling.

Real processes (``launch.py`` subprocesses, like a user or a cluster scheduler would run them):
* SIGKILL during the first save, then (the rerun) between two saves, then resume: the final checkpoint,
  every metrics row and TensorBoard's scalars are bit-identical to an uninterrupted run (DCGAN smoke on
  mnist5k: BatchNorm statistics, Adam states, EMA, typed root key and the Grain iterator state all
  round-trip); every other kill point, signals and filesystem faults: tests/test_faults.py;
* SIGTERM: a checkpoint at the current step, exit code 75 (preempted), and the printed command resumes to the same end.
In-process (ring8 MLP, fast): NaN injected into a batch, damaged checkpoints, config changes on resume,
the sampling entry point, the preemption guard.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import warnings

import jax
import numpy as np
import pytest

from jgan import checkpoint as ckpt_lib
from jgan import config as config_lib
from jgan import data as data_lib
from jgan import outputs, preemption, resume, rng, train
from jgan import state as state_lib
from tests import faults
from tests.helpers import ROOT, load_config, setup, wait_until

TOTAL = 30  # 2N steps
EVERY = 4  # checkpoint interval of the process tests
SEED = 1  # a root key with non-zero bits


# ---------------------------------------------------------------------------------------------------
# Helpers


def _launch_args(workdir, data_dir, *extra):
  return [
    sys.executable,
    "launch.py",
    "--config",
    "configs/smoke.py",
    "--workdir",
    str(workdir),
    "--config.parallel.num_devices=1",
    f"--config.train.steps={TOTAL}",
    "--config.train.log_every=1",
    f"--config.checkpoint.every_steps={EVERY}",
    f"--config.seed={SEED}",
    f"--config.data.data_dir={data_dir}",
    *extra,
  ]


@pytest.fixture(scope="module")
def proc_env(tmp_path_factory):
  """Environment of the launch.py subprocesses: the test's XLA_FLAGS and a compilation cache and data
  directory shared by the pytest-xdist workers (the cache only saves compile time: the cached
  executable is the one a fresh compile produces; the data is prepared by the reference run first)."""
  return {
    "env": faults.subprocess_env(tmp_path_factory),
    "data_dir": str(faults.shared_dir(tmp_path_factory) / "checkpoint_tfds"),
  }


def _run(args, env, timeout=600):
  r = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
  assert r.returncode == 0, r.stderr[-3000:]
  return r


def _rows(workdir):
  """metrics.jsonl rows without the timing column (the only one that may differ between runs)."""
  rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  return [{k: v for k, v in r.items() if k != "steps_per_sec"} for r in rows]


def _leaves(state):
  return [
    np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x)
    for x in jax.tree.leaves(state)
  ]


def _assert_same_checkpoint(workdir_a, workdir_b, step):
  (sa, _), (sb, _) = resume.load_state(workdir_a, step=step), resume.load_state(workdir_b, step=step)
  assert int(sa.step) == int(sb.step) == step
  la, lb = _leaves(sa), _leaves(sb)
  assert len(la) == len(lb) > 20
  for i, (x, y) in enumerate(zip(la, lb)):
    assert x.dtype == y.dtype and np.array_equal(x, y), f"leaf {i} differs"
  ja = ckpt_lib.Checkpointer(resume.locate(workdir_a), read_only=True).read_json(step)
  jb = ckpt_lib.Checkpointer(resume.locate(workdir_b), read_only=True).read_json(step)
  assert ja["data"] == jb["data"], (ja["data"], jb["data"])  # the Grain iterator state


def _steps_in(workdir):
  d = os.path.join(workdir, "checkpoints")
  return sorted(int(n) for n in os.listdir(d) if n.isdigit()) if os.path.isdir(d) else []


def _last_row_step(workdir):
  try:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      lines = f.read().splitlines()
    return json.loads(lines[-1])["step"] if lines else 0
  except (OSError, ValueError, KeyError):
    return 0


def _start_and_wait(args, env, workdir, until_step, timeout=600):
  """Starts a run and returns it once a checkpoint exists and ``metrics.jsonl`` reached ``until_step``."""
  p = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  wait_until(
    lambda: _steps_in(workdir) and _last_row_step(workdir) >= until_step,
    timeout_s=timeout,
    what=f"a checkpoint and metrics.jsonl row {until_step}",
    proc=p,
  )
  return p


@pytest.fixture(scope="module")
def reference(tmp_path_factory, proc_env):
  """An uninterrupted TOTAL-step run (its own process; made once for all pytest-xdist workers)."""

  def make(directory):
    _run(_launch_args(directory, proc_env["data_dir"]), proc_env["env"])
    assert _steps_in(directory)[-1] == TOTAL
    return str(directory)

  return pathlib.Path(faults.once(tmp_path_factory, "checkpoint_smoke_reference", make))


# ---------------------------------------------------------------------------------------------------
# Real processes


@pytest.mark.slow
def test_sigkill_during_the_first_save_and_between_saves_then_resume_is_bit_identical(reference, proc_env, tmp_path):
  """The DCGAN smoke run (Grain iterator over TFDS mnist5k) killed while only ``4.orbax-checkpoint-tmp``
  exists, then (its rerun) between two saves; the last run ends bit-identical to the uninterrupted one,
  metrics.jsonl and TensorBoard included. Every other kill point: tests/test_faults.py (ring8)."""
  args = _launch_args("WORKDIR", proc_env["data_dir"])
  i = args.index("--workdir")
  launcher = faults.Launcher(args[2:i] + args[i + 2 :], proc_env["env"], TOTAL)
  lines = faults.kill_chain(launcher, tmp_path / "run", ("the first save", "between saves"), reference)
  print("\n".join(lines))


@pytest.mark.slow
def test_sigterm_saves_exits_75_and_resume_command_finishes_identically(reference, proc_env, tmp_path):
  workdir = tmp_path / "term"
  p = _start_and_wait(_launch_args(workdir, proc_env["data_dir"]), proc_env["env"], workdir, EVERY + 3)
  p.send_signal(signal.SIGTERM)
  out, err = p.communicate(timeout=300)
  assert p.returncode == preemption.EXIT_PREEMPTED == 75, err[-3000:]  # "preempted": not 0, not 2
  m = re.search(r"SIGTERM received: saved checkpoint (\S+) at step (\d+) of 30; resume with: (.+)", err)
  assert m, err[-3000:]
  step = int(m.group(2))
  assert m.group(1) == str(workdir / "checkpoints" / str(step)) and step in _steps_in(workdir)
  assert EVERY + 3 <= step < TOTAL and _last_row_step(workdir) == step
  r = subprocess.run(m.group(3), shell=True, env=proc_env["env"], capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  assert f"(step {step})" in r.stderr
  _assert_same_checkpoint(reference, workdir, TOTAL)
  assert _rows(workdir) == _rows(reference)


def _forbid_data(monkeypatch):
  def no_data(*a, **k):
    raise AssertionError("load_generator touched the training data")

  monkeypatch.setattr(data_lib, "tfds_source", no_data)
  monkeypatch.setattr(data_lib, "make_iterator", no_data)


@pytest.mark.slow
def test_sampling_images_needs_no_data(reference, monkeypatch):
  _forbid_data(monkeypatch)
  sample = resume.load_generator(str(reference))
  x = np.asarray(sample(jax.random.key(3), 5))
  assert x.shape == (5, 28, 28, 1) and x.dtype == np.float32
  assert np.all(np.abs(x) <= 1.0) and x.std() > 0
  assert np.array_equal(x, np.asarray(sample(jax.random.key(3), 5)))  # a function of rng only
  state, config = resume.load_state(str(reference))
  assert jax.dtypes.issubdtype(state.rng.dtype, jax.dtypes.prng_key)  # still a typed key, same bits
  assert np.array_equal(jax.random.key_data(state.rng), jax.random.key_data(rng.run_keys(SEED).train))
  assert int(state.step) == TOTAL and config.seed == SEED
  oldest = _steps_in(reference)[0]
  live = np.asarray(resume.load_generator(str(reference / "checkpoints"), ema=False, step=oldest)(jax.random.key(3), 5))
  assert live.shape == x.shape and not np.array_equal(live, x)


# ---------------------------------------------------------------------------------------------------
# In-process (ring8 MLP)


def _ring8(steps=12, every=2, log_every=4):
  c = load_config("ring8")
  c.parallel.num_devices = 1
  c.train.steps, c.train.steps_per_call, c.train.log_every = steps, 1, log_every
  c.train.batch_size, c.train.num_samples, c.train.sample_every, c.train.progress = 64, 64, 0, False
  c.checkpoint.every_steps = every
  return c


@pytest.fixture(scope="module")
def ring8_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("ring8")
  state = jax.device_get(train.train_and_evaluate(_ring8(), str(workdir)))
  return workdir, state


def test_sampling_points_matches_the_trained_generator(ring8_run, monkeypatch):
  _forbid_data(monkeypatch)
  workdir, final = ring8_run
  x = np.asarray(resume.load_generator(str(workdir))(jax.random.key(5), 7))
  assert x.shape == (7, 2) and x.dtype == np.float32
  z = jax.random.normal(jax.random.key(5), (7, _ring8().model.latent_dim), np.float32)
  expect = np.asarray(jax.jit(lambda s, z: state_lib.generate(s, z))(final, z))  # the EMA generator
  np.testing.assert_allclose(x, expect, rtol=1e-5, atol=1e-6)


def test_nan_names_metric_step_range_and_last_good_checkpoint(tmp_path, monkeypatch):
  bad_call = 7  # the batch of step 7 gets an inf
  make = data_lib.make_iterator

  class Poisoned:
    def __init__(self, it):
      self.it, self.n = it, 0

    def __next__(self):
      b = next(self.it)
      self.n += 1
      if self.n == bad_call:
        b = {**b, "x": np.full_like(b["x"], np.inf)}
      return b

    def get_state(self):
      return self.it.get_state()

    def set_state(self, s):
      self.it.set_state(s)

  monkeypatch.setattr(data_lib, "make_iterator", lambda *a, **k: Poisoned(make(*a, **k)))
  with pytest.raises(FloatingPointError) as e:
    train.train_and_evaluate(_ring8(), str(tmp_path))
  msg = str(e.value)
  # Checkpoints at 2, 4, 6 close the logging windows; the NaN of step 7 is caught at the log of step 8.
  assert re.search(r"metric '\w+' became (nan|inf|-inf) at step 7 \(checked steps 7\.\.8\)", msg), msg
  good = str(tmp_path / "checkpoints" / "6")
  assert f"the last good checkpoint {good} (step 6) is intact" in msg
  assert _steps_in(tmp_path) == [2, 4, 6]
  state, _ = resume.load_state(str(tmp_path))
  assert int(state.step) == 6 and all(np.all(np.isfinite(x)) for x in _leaves(state))


def test_nan_state_is_never_saved():
  _, _, state = setup(_ring8(), (2,), jax.random.key(0))
  outputs.check_state_finite(state, 3)
  nan_opt = jax.tree.map(lambda x: x * np.nan if x.dtype == np.float32 else x, state.d.opt)
  bad = state.replace(d=state.d.replace(opt=nan_opt))
  with pytest.raises(FloatingPointError, match=r"state leaf \.d\.opt.* is NaN/Inf after step 3"):
    outputs.check_state_finite(bad, 3)


def _copy_run(src, dst):
  shutil.copytree(src, dst)
  return dst


def _biggest(directory) -> str:
  """The largest file under ``directory`` (for a state item: the OCDBT data file with the arrays)."""
  return max((os.path.join(r, f) for r, _, fs in os.walk(directory) for f in fs), key=os.path.getsize)


def _flip(path, offset=None) -> None:
  """Flips one bit of ``path`` (at ``offset``, default the middle): same size, same name."""
  b = bytearray(open(path, "rb").read())
  b[len(b) // 2 if offset is None else offset] ^= 0x10
  open(path, "wb").write(bytes(b))


def _iterator_to_13(d):
  path = d / "data" / "metadata"
  text = open(path).read()
  assert '"index": 12' in text, text
  open(path, "w").write(text.replace('"index": 12', '"index": 13'))  # valid JSON, same size


# Damage done to checkpoint 12 (d: its directory, p: checkpoint 10's): (damage, step restored, what the
# warning must say). Step 10 means: detected, reported naming the file, the previous one restored.
DAMAGE = {
  "array data file truncated": (lambda d, p: open(_biggest(d / "state"), "r+b").truncate(1000), 10, "damaged"),
  "array data file emptied": (lambda d, p: open(_biggest(d / "state"), "w").close(), 10, "damaged"),
  "bit flip in the array data file": (
    lambda d, p: _flip(_biggest(d / "state")),
    10,
    # Where the middle bit lands in the compressed data varies with the stored bits (CPU kinds differ):
    # zstd's own check may catch it first; either way the step is refused and the previous one restored.
    "checksum.*its bytes are in .*/12/state/|Data corruption detected",
  ),
  "array data file replaced by step 10's": (
    lambda d, p: shutil.copyfile(_biggest(p / "state"), _biggest(d / "state")),
    10,
    "damaged",
  ),
  "state item replaced by step 10's": (
    lambda d, p: (shutil.rmtree(d / "state"), shutil.copytree(p / "state", d / "state")),
    10,
    r"array \.step read back differs from its sha256 checksum",
  ),
  "iterator state changed (valid JSON)": (lambda d, p: _iterator_to_13(d), 10, r"item 'data' .*/12/data/metadata"),
  "bit flip in the config item": (lambda d, p: _flip(d / "config" / "metadata", 40), 10, "damaged"),
  "bit flip in the checksums item": (lambda d, p: _flip(d / "checksums" / "metadata", 120), 10, "damaged"),
  "state/_METADATA deleted": (lambda d, p: os.remove(d / "state" / "_METADATA"), 10, "damaged"),
  "OCDBT manifest deleted": (lambda d, p: os.remove(d / "state" / "manifest.ocdbt"), 10, "damaged"),
  "bit flip in the OCDBT B-tree node file": (lambda d, p: _flip(_biggest(d / "state" / "d")), 10, "damaged"),
  "bit flip in state/_sharding": (lambda d, p: _flip(d / "state" / "_sharding", 60), 10, "damaged"),
  # Harmless: the arrays read back are the ones saved (verified by their checksums).
  "bytes appended to the array data file": (lambda d, p: open(_biggest(d / "state"), "ab").write(b"x" * 64), 12, None),
  "_CHECKPOINT_METADATA deleted": (lambda d, p: os.remove(d / "_CHECKPOINT_METADATA"), 12, None),
  "commit_success.txt deleted": (lambda d, p: os.remove(d / "commit_success.txt"), 12, None),
  # Restored, with a warning that nothing was verified.
  "checksums item deleted": (lambda d, p: shutil.rmtree(d / "checksums"), 12, "has no checksums"),
}


@pytest.fixture(scope="module")
def ring8_abstract():
  _, parts, _ = setup(_ring8())
  return ckpt_lib.abstract_state(parts)


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_latest_checkpoint_is_detected_and_the_previous_one_restored(kind, ring8_run, ring8_abstract, tmp_path):
  damage, expect, warning = DAMAGE[kind]
  workdir = _copy_run(ring8_run[0], tmp_path / "run")
  assert _steps_in(workdir) == [8, 10, 12]  # max_to_keep = 3
  damage(workdir / "checkpoints" / "12", workdir / "checkpoints" / "10")
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    restored = resume.restore(ckpt_lib.Checkpointer(resume.locate(str(workdir)), read_only=True), ring8_abstract)
  messages = [str(w.message) for w in caught if issubclass(w.category, ckpt_lib.CheckpointWarning)]
  assert restored.step == expect, messages
  if warning is None:
    assert not messages
  else:
    assert len(messages) == 1 and re.search(warning, messages[0]), messages
  if expect == 10:
    assert re.search(r"checkpoint \S+/12 is damaged \(.+\); falling back to the previous checkpoint", messages[0])
  assert int(restored.state.step) == expect
  if expect == 12:  # bit for bit what was saved
    for x, y in zip(_leaves(restored.state), _leaves(ring8_run[1])):
      assert np.array_equal(x, y)
  assert _steps_in(workdir) == [8, 10, 12]  # reading deletes nothing


@pytest.mark.parametrize(
  "kind", ["array data file truncated", "bit flip in the array data file", "array data file replaced by step 10's"]
)
def test_training_resumes_from_the_previous_checkpoint_and_ends_identical(kind, ring8_run, tmp_path):
  workdir = _copy_run(ring8_run[0], tmp_path / "run")
  DAMAGE[kind][0](workdir / "checkpoints" / "12", workdir / "checkpoints" / "10")
  # Training on the workdir resumes from 10, keeps the damaged one aside and writes step 12 anew.
  with pytest.warns(ckpt_lib.CheckpointWarning, match="moved damaged checkpoint"):
    final = train.train_and_evaluate(_ring8(), str(workdir))
  damaged = os.listdir(workdir / ckpt_lib.DAMAGED_SUBDIR)
  assert len(damaged) == 1 and damaged[0].startswith("12-")
  for x, y in zip(_leaves(jax.device_get(final)), _leaves(ring8_run[1])):
    assert np.array_equal(x, y)


def test_bit_flips_anywhere_in_the_array_data_file_are_caught(ring8_run, ring8_abstract, tmp_path):
  """20 single-bit flips spread over the data file, one at a time: each is caught (by the checksum where
  the storage decodes the flipped bytes silently, else by the decoder) and the previous checkpoint is
  restored, or it hit a byte no array is read from and checkpoint 12 comes back exactly as saved."""
  workdir = _copy_run(ring8_run[0], tmp_path / "run")
  path = _biggest(workdir / "checkpoints" / "12" / "state")
  size = os.path.getsize(path)
  by = {"checksum": 0, "decoder": 0, "unread byte": 0}
  for offset in np.linspace(0, size - 1, 20).astype(int):
    _flip(path, int(offset))
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      restored = resume.restore(ckpt_lib.Checkpointer(resume.locate(str(workdir)), read_only=True), ring8_abstract)
    msg = " ".join(str(w.message) for w in caught)
    if restored.step == 12:
      by["unread byte"] += 1
      for x, y in zip(_leaves(restored.state), _leaves(ring8_run[1])):
        assert np.array_equal(x, y), offset
    else:
      assert restored.step == 10 and "12 is damaged" in msg, (offset, msg)
      by["checksum" if "ChecksumError" in msg else "decoder"] += 1
    _flip(path, int(offset))  # undo
  print(f"20 bit flips in a {size}-byte data file: {by}")
  assert by["checksum"] > by["unread byte"]


def test_missing_file_and_all_damaged(ring8_run, tmp_path):
  workdir = _copy_run(ring8_run[0], tmp_path / "run")
  os.remove(workdir / "checkpoints" / "12" / "state" / "_METADATA")
  with pytest.warns(ckpt_lib.CheckpointWarning, match="12 is damaged"):
    assert int(resume.load_state(str(workdir))[0].step) == 10
  for s in (8, 10):
    os.remove(workdir / "checkpoints" / str(s) / "config" / "metadata")
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    with pytest.raises(ckpt_lib.CheckpointError, match=r"could be restored: step 12: .*; step 10: .*; step 8: "):
      resume.load_state(str(workdir))
  with pytest.raises(ckpt_lib.CheckpointError, match="no checkpoint under"):
    resume.load_state(str(tmp_path))


def test_config_change_is_refused_unless_allowed_and_harmless_fields_may_change(ring8_run, tmp_path):
  workdir = ring8_run[0]
  ckpt = ckpt_lib.Checkpointer(resume.locate(workdir), read_only=True)
  config, parts, _ = setup(_ring8())
  abstract = ckpt_lib.abstract_state(parts)
  changed = _ring8()
  changed.train.batch_size, changed.optim.d.lr, changed.train.n_critic = 32, 1e-4, 2
  changed = config_lib.resolve(changed)
  with pytest.raises(
    ValueError,
    match=r"different config; fields that change the result: optim\.d\.lr: 0\.001 "
    r"-> 0\.0001; train\.batch_size: 64 -> 32; train\.n_critic: 1 -> 2\. "
    r"Use a new --workdir, or pass --config\.checkpoint\.allow_config_change=True",
  ):
    resume.restore(ckpt, abstract, config=changed)
  with pytest.warns(ckpt_lib.CheckpointWarning, match="changed config"):
    assert resume.restore(ckpt, abstract, config=changed, allow_config_change=True).step == 12
  harmless = _ring8(steps=40, every=5, log_every=8)
  harmless.train.progress = True
  assert resume.restore(ckpt, abstract, config=config_lib.resolve(harmless)).step == 12
  # Extending a finished run continues from its last checkpoint.
  longer = train.train_and_evaluate(_ring8(steps=14), str(_copy_run(workdir, tmp_path / "run")))
  assert int(longer.step) == 14


def test_keeps_last_k_plus_best_by_metric(tmp_path):
  cfg = load_config("smoke").checkpoint
  cfg.max_to_keep, cfg.best_metric, cfg.best_mode, cfg.keep_best = 2, "fid", "min", 1
  ckpt = ckpt_lib.Checkpointer(str(tmp_path), cfg, config=load_config("smoke"))
  for step, fid in [(1, 5.0), (2, 1.0), (3, 3.0), (4, None), (5, 4.0)]:
    ckpt.save(
      step, {"w": np.full((3,), step, np.float32)}, {"index": step}, metrics=None if fid is None else {"fid": fid}
    )
    ckpt.wait()
  assert ckpt.steps() == [2, 4, 5]  # the best fid (step 2) and the last two
  ckpt.close()


def test_a_killed_first_save_is_discarded_before_the_resumed_run_saves_the_same_step(tmp_path):
  """A run killed during its first save leaves ``4.orbax-checkpoint-tmp``; the resumed run opens the
  checkpointer, restores nothing and saves step 4 again. Orbax's own clean-up of that directory ran in a
  background thread and raced jgan's (ENOENT on the new save: 6 of 10 tries of opening, discarding and
  saving failed before the fix); now it is gone, synchronously, when the checkpointer opens."""
  config, parts, state = setup(_ring8())
  abstract = ckpt_lib.abstract_state(parts)
  config.checkpoint.async_save = True
  for attempt in range(10):
    directory = tmp_path / f"try{attempt}" / "checkpoints"
    stale = directory / "4.orbax-checkpoint-tmp"
    for i in range(40):  # many files: deleting them takes long enough for a race to show
      (stale / f"d{i}").mkdir(parents=True)
      for j in range(20):
        (stale / f"d{i}" / f"f{j}").write_bytes(b"x" * 64)
    ckpt = ckpt_lib.Checkpointer(str(directory), config.checkpoint, config=config)
    assert not stale.exists()  # deleted before the constructor returned
    assert resume.restore(ckpt, abstract) is None  # no finished checkpoint: the run starts from step 0
    assert ckpt.save(4, state, {"index": 4})
    ckpt.close()
    assert sorted(os.listdir(directory)) == ["4"], attempt
    assert int(resume.load_state(str(directory))[0].step) == int(state.step)


_LINGER = """
import sys, threading
from orbax.checkpoint._src.futures import future
from jgan import checkpoint_orbax

checkpoint_orbax.install_process_hooks()  # as jgan train does
release = threading.Event()

def fail():
  release.wait()
  raise ValueError("PERMISSION_DENIED: Error writing local file: Read-only file system [os_error_code='30']")

t = future._SignalingThread(target=fail, send_signals=[], receive_signals=[], timeout_secs=600, daemon=True)
t.start()
if sys.argv[1] == "ends":  # the save ends (with its error) while the process waits for it
  threading.Thread(target=release.set).start()
# One write for the whole line, as jgan.cli.train writes it: print() writes the text and its newline
# separately, and the failing save thread's log record (ERROR:absl:...) could land between the two.
sys.stderr.write("error: the failed save, already reported\\n")
sys.stderr.flush()
code = checkpoint_orbax.exit_now_if_threads_linger(2, grace_s=float(sys.argv[2]))
release.set()
sys.exit(code)
"""


@pytest.mark.parametrize("thread", ["lingers", "ends"])
def test_exit_after_a_failed_save_keeps_its_status_whatever_orbax_threads_do(thread):
  """After an error, ``jgan train`` returns 2 through ``exit_now_if_threads_linger``; Orbax's save threads
  (``_SignalingThread``, the real class) re-raise their error, or a TimeoutError while alive, from
  ``join()``: the wait must not let either escape (it did: exit 1 and a traceback, the read-only test
  under load). Lingering past the grace period ends the process with the same status."""
  grace = "0.2" if thread == "lingers" else "600"
  r = subprocess.run(
    [sys.executable, "-c", _LINGER, thread, grace], cwd=ROOT, capture_output=True, text=True, timeout=faults.TIMEOUT
  )
  assert r.returncode == 2, r.stderr[-3000:]
  assert "Traceback" not in r.stderr, r.stderr[-3000:]
  assert "error: the failed save, already reported" in r.stderr.splitlines(), r.stderr[-3000:]
