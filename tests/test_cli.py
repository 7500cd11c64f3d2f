"""The command line, run as a user would (subprocesses from the repository root)."""

import json
import os
import subprocess
import sys

from tests.helpers import ROOT


def _launch(*args, timeout=600):
  return subprocess.run([sys.executable, "launch.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_ring8_writes_scatter_plot_and_run_files(tmp_path):
  r = _launch(
    "--config",
    "configs/ring8.py",
    "--workdir",
    str(tmp_path),
    "--config.train.steps=200",
    "--config.train.log_every=100",
    "--config.train.sample_every=0",
  )
  assert r.returncode == 0, r.stderr[-2000:]
  for f in (
    "config.json",
    "run_info.json",
    "metrics.jsonl",
    "losses.png",
    "samples_final.png",
    "samples/step_0000200.png",
  ):
    assert os.path.exists(tmp_path / f), f
  assert os.listdir(tmp_path / "tb")
  cfg = json.load(open(tmp_path / "config.json"))
  assert cfg["train"]["steps"] == 200 and cfg["data"]["name"] == "ring8"
  info = json.load(open(tmp_path / "run_info.json"))
  assert info["seed"] == 0 and "jax" in info["versions"] and "flax" in info["versions"]
  rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  assert [r["step"] for r in rows] == [100, 200] and {"d_loss", "g_loss", "steps_per_sec"} <= set(rows[0])


def test_bad_override_is_one_clear_line(tmp_path):
  r = _launch("--config", "configs/ring8.py", "--workdir", str(tmp_path), "--config.objective.name=nope")
  assert r.returncode == 2
  assert "unknown objective.name='nope'; valid choices:" in r.stderr and "non_saturating" in r.stderr


def test_unknown_subcommand_lists_choices():
  r = _launch("frobnicate")
  choices = "valid choices: train, eval, sample, latent, sweep, dynamics, classifier, judge, data, config"
  assert r.returncode == 2 and choices in r.stderr


def test_evals_during_training_are_logged_and_saved(tmp_path):
  r = _launch(
    "--config",
    "configs/ring8.py",
    "--workdir",
    str(tmp_path),
    "--config.train.steps=200",
    "--config.train.log_every=100",
    "--config.train.sample_every=0",
    "--config.train.progress=False",
    "--config.evals.metrics=modes2500",
    "--config.evals.every_steps=100",
  )
  assert r.returncode == 0, r.stderr[-2000:]
  evals = [json.loads(line) for line in open(tmp_path / "evals.jsonl")]
  assert [e["step"] for e in evals] == [100, 200]
  assert 0 <= evals[-1]["modes2500/modes"] <= 8 and 0 <= evals[-1]["modes2500/high_quality"] <= 1
  rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  assert any(k.startswith("eval/") for r in rows for k in r)


def test_help_lists_every_subcommand_and_each_has_its_own_help():
  """``jgan --help`` (the console script installed by pip), ``python -m jgan`` and each subcommand's help."""
  from jgan.cli import SUBCOMMANDS

  script = os.path.join(os.path.dirname(sys.executable), "jgan")
  top = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=300)
  assert top.returncode == 0 and all(f"  {name} " in top.stdout for name in SUBCOMMANDS), top.stdout
  as_module = subprocess.run([sys.executable, "-m", "jgan", "--help"], capture_output=True, text=True, timeout=300)
  assert as_module.stdout == top.stdout
  for name in SUBCOMMANDS:
    r = subprocess.run([script, name, "--help"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and f"jgan {name}" in r.stdout, (name, r.stdout[-500:], r.stderr[-500:])
