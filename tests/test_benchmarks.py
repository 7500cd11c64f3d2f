"""The layer A/B benchmark runs in its reduced CPU mode, so the device script cannot rot.

Only that it runs and reports is checked here (speed is measured by the script, never asserted in tests;
the machines are shared): every side builds, the parameter counts of the sides agree (the script asserts
it), the table has a row per model. The torch side runs when an interpreter with PyTorch is there (the
reference environment .venv-ref that ``make test`` builds).
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "bench_layers.py")
MODELS = ["dcgan", "sngan"]


@pytest.mark.slow
def test_bench_layers_quick_mode_runs_every_side(tmp_path):
  out = tmp_path / "rows.json"
  r = subprocess.run(
    [sys.executable, SCRIPT, "--quick", "--models", ",".join(MODELS), "--json", str(out)],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=900,
  )
  assert r.returncode == 0, r.stderr[-3000:]
  rows = json.loads(out.read_text())
  assert [row["model"] for row in rows] == MODELS
  for row in rows:
    assert row["fast_img_s"] > 0 and row["native_img_s"] > 0
    assert row["g_params"] > 0 and row["d_params"] > 0
  has_torch = os.path.exists(os.path.join(ROOT, ".venv-ref", "bin", "python"))
  assert ("torch_img_s" in rows[0]) == has_torch
  assert "| fast/native |" in r.stdout or "fast/native" in r.stdout


def test_bench_layers_rejects_an_unknown_model():
  r = subprocess.run(
    [sys.executable, SCRIPT, "--quick", "--models", "dcgann"], cwd=ROOT, capture_output=True, text=True, timeout=120
  )
  assert r.returncode == 2 and "unknown models ['dcgann']; valid choices: dcgan, sngan" in r.stderr


@pytest.mark.slow
def test_bench_ensemble_quick_mode_times_every_side(tmp_path):
  """The ensemble benchmark's reduced mode (ring8, K = 2: one ensemble, 2 processes, 2 sequential runs)."""
  out = tmp_path / "rows.json"
  script = os.path.join(ROOT, "benchmarks", "bench_ensemble.py")
  r = subprocess.run(
    [sys.executable, script, "--quick", "--workloads", "ring8", "--json", str(out)],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=900,
  )
  assert r.returncode == 0, r.stderr[-3000:]
  (row,) = json.loads(out.read_text())
  assert row["workload"] == "ring8" and row["K"] == 2
  for side in ("ensemble", "processes", "sequential"):
    assert row[f"{side}_s"] > 0 and row[f"{side}_steps_per_s"] == pytest.approx(2 * 500 / row[f"{side}_s"], rel=0.01)
  assert "| ensemble / processes |" in r.stdout


@pytest.mark.slow
def test_bench_input_quick_mode_measures_every_path(tmp_path):
  """The input benchmark's reduced mode: every input path of (a), the loop's host time (b), the DCGAN step (c)."""
  out = tmp_path / "rows.json"
  script = os.path.join(ROOT, "benchmarks", "bench_input.py")
  r = subprocess.run(
    [sys.executable, script, "--quick", "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=900
  )
  assert r.returncode == 0, r.stderr[-3000:]
  rows = json.loads(out.read_text())
  assert [row["dataset"] for row in rows["a"]] == ["mnist5k 28px", "CIFAR-shaped 32px", "CelebA-shaped 64px"]
  for row in rows["a"]:
    assert all(row[k] > 0 for k in ("per_example_w0", "pipeline_w0", "pipeline_w1", "on_device"))
  assert rows["b"][0]["host_path_us"] > 0 and rows["b"][0]["on_device_us"] > 0
  assert [row["size"] for row in rows["c"]] == [28, 32, 64]
  assert "| on-device img/s |" in r.stdout


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory) -> str:
  """configs/classifier_mnist5k.py shrunk to 30 steps of a narrow net: the quick modes' digit classifier."""
  from jgan import classifier_training
  from tests.helpers import load_config

  path = str(tmp_path_factory.mktemp("clf") / "classifier")
  config = load_config("classifier_mnist5k")
  config.model.widths, config.model.feature_dim = (8, 16, 16), 32
  config.train.steps, config.train.log_every = 30, 0
  classifier_training.train_classifier(config, path)
  return path


def _run_quick(script: str, tmp_path, classifier: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
  out = tmp_path / "rows.json"
  cmd = [sys.executable, os.path.join(ROOT, "benchmarks", script), "--quick", "--workdir", str(tmp_path / "w")]
  cmd += ["--classifier", classifier, "--json", str(out)]
  r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert r.returncode == 0, r.stderr[-3000:]
  return r, json.loads(out.read_text())


@pytest.mark.slow
def test_parity_quick_mode_trains_and_scores_both_sides(tmp_path, tiny_classifier):
  """The outcome A/B (20 steps, seed 0, 500 samples): jgan's demo recipe and the PyTorch trainer, whose
  parameter counts the script asserts equal, each scored by jgan's metric for its live and EMA G."""
  r, rows = _run_quick("parity_dcgan.py", tmp_path, tiny_classifier)
  has_torch = os.path.exists(os.path.join(ROOT, ".venv-ref", "bin", "python"))
  sides = ["jgan"] + (["torch"] if has_torch else [])
  assert sorted((row["side"], row["generator"]) for row in rows) == [(s, g) for s in sides for g in ("ema", "live")]
  for row in rows:
    assert row["steps"] == 20 and row["mnist_fid500"] > 0 and 0 <= row["mnist_prdc500/coverage"] <= 1
  assert "| jgan | ema |" in r.stdout and ("| torch | live |" in r.stdout) == has_torch


@pytest.mark.slow
def test_bench_demo_quick_mode_times_and_scores_both_demos(tmp_path, tiny_classifier):
  """The demo A/B (20 steps, seed 0): the old and the new demo config as `make demo` runs them, timed
  back to back and scored (the new demo is class-conditional, so its class match is scored too)."""
  r, rows = _run_quick("bench_demo.py", tmp_path, tiny_classifier)
  assert sorted(row["side"] for row in rows) == ["new", "old"]
  for row in rows:
    assert row["steps"] == 20 and row["wall_s"] > 0 and row["mnist_fid500"] > 0 and row["paired"]
  (new,) = [row for row in rows if row["side"] == "new"]
  assert 0 <= new["mnist_class_match500/accuracy"] <= 1
  assert "wall time new / old per seed" in r.stdout
