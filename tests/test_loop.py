"""The one training loop (jgan.loop) drives single runs and ensembles alike.

References: an ensemble member's periodic evaluations are compared with those of the member's own single
run (``train_and_evaluate`` with the member's seed, bit-identical on CPU), and a signal delivered during
the same data call stops a single run and an ensemble after the same step, with the same message.
"""

import json
import os
import re
import signal

import pytest

from jgan import data as data_lib
from jgan import ensemble, train
from jgan.labs import mode_collapse
from jgan.loop import itstime

STEPS, LOG_EVERY, EVAL_EVERY, SAVE_EVERY = 12, 4, 6, 6


def test_itstime_is_one_cadence_rule():
  assert [s for s in range(1, 13) if itstime(s, 4)] == [4, 8, 12]
  assert [s for s in range(1, 13) if itstime(s, 5, 12)] == [5, 10, 12]  # and the last step
  assert not any(itstime(s, 0) for s in range(1, 13))  # 0: never
  assert [s for s in range(1, 13) if itstime(s, 0, 12)] == [12]


def _ring8(seed=0, num_seeds=1):
  c = mode_collapse.config("ring8")
  c.parallel.num_devices = 1
  c.train.steps, c.train.steps_per_call, c.train.log_every = STEPS, 1, LOG_EVERY
  c.train.batch_size, c.train.num_samples, c.train.sample_every, c.train.progress = 64, 64, 0, False
  c.checkpoint.every_steps = SAVE_EVERY
  c.evals.metrics, c.evals.every_steps, c.evals.num_samples = "modes2500", EVAL_EVERY, 256
  c.seed, c.train.num_seeds = seed, num_seeds
  return c


def _evals(workdir) -> list[dict]:
  with open(os.path.join(workdir, "evals.jsonl")) as f:
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in f]


@pytest.fixture(scope="module")
def singles(tmp_path_factory):
  """The single runs of seeds 0 and 1: ``{seed: workdir}``."""
  out = {}
  for seed in (0, 1):
    w = tmp_path_factory.mktemp(f"single{seed}")
    train.train_and_evaluate(_ring8(seed), str(w))
    out[seed] = str(w)
  return out


def test_an_ensemble_runs_periodic_evals_equal_to_its_members_single_runs(singles, tmp_path):
  result = ensemble.train_ensemble(_ring8(num_seeds=2), str(tmp_path))
  assert [os.path.basename(d) for d in result.workdirs] == ["seed=0", "seed=1"]
  for seed, d in enumerate(result.workdirs):
    rows = _evals(d)
    assert [r["step"] for r in rows] == [EVAL_EVERY, 2 * EVAL_EVERY] and "modes256/modes" in rows[0], rows
    assert rows == _evals(singles[seed])  # the same values: the member is its single run


class _Interrupting:
  """A data iterator that delivers ``sig`` to this process during its ``call``-th batch."""

  def __init__(self, it, call, sig):
    self.it, self.n, self.call, self.sig = it, 0, call, sig

  def __next__(self):
    self.n += 1
    if self.n == self.call:
      signal.raise_signal(self.sig)
    return next(self.it)

  def get_state(self):
    return self.it.get_state()

  def set_state(self, s):
    self.it.set_state(s)


def _stopped(monkeypatch, capsys, fn, call=7):
  """Runs ``fn()`` with SIGTERM delivered during data call ``call`` of every iterator; returns the line
  the library logged about it (the tests print the ``jgan`` loggers' messages as the CLI does)."""
  make = data_lib.make_iterator
  monkeypatch.setattr(data_lib, "make_iterator", lambda *a, **k: _Interrupting(make(*a, **k), call, signal.SIGTERM))
  capsys.readouterr()
  fn()
  monkeypatch.setattr(data_lib, "make_iterator", make)
  lines = [line for line in capsys.readouterr().err.splitlines() if "received" in line]
  assert len(lines) == 1, lines
  return lines[0].strip()


def test_a_signal_stops_an_ensemble_and_a_single_run_after_the_same_step_with_a_resume_hint(
  singles, tmp_path, monkeypatch, capsys
):
  single_dir, ens_dir = tmp_path / "single", tmp_path / "ens"
  single = _stopped(
    monkeypatch, capsys, lambda: train.train_and_evaluate(_ring8(), str(single_dir), resume_command="RESUME SINGLE")
  )
  ens = _stopped(
    monkeypatch,
    capsys,
    lambda: ensemble.train_ensemble(_ring8(num_seeds=2), str(ens_dir), resume_command="RESUME ENSEMBLE"),
  )
  m1 = re.fullmatch(
    rf"SIGTERM received: saved checkpoint \S+ at step (\d+) of {STEPS}; resume with: RESUME SINGLE", single
  )
  m2 = re.fullmatch(
    rf"SIGTERM received: saved the checkpoints of 2 members at step (\d+) of {STEPS}; resume with: RESUME ENSEMBLE", ens
  )
  assert m1 and m2, (single, ens)
  assert m1.group(1) == m2.group(1) == "7"  # the same cadence: after the call the signal arrived in
  for d in ("seed=0", "seed=1"):
    assert "7" in os.listdir(ens_dir / d / "checkpoints")
  # Resumed, the ensemble finishes with the evaluations of the uninterrupted single runs.
  result = ensemble.train_ensemble(_ring8(num_seeds=2), str(ens_dir))
  for seed, d in enumerate(result.workdirs):
    assert _evals(d) == _evals(singles[seed])
