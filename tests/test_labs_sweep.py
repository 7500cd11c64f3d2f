"""Sweeps: the --sweep grammar, typed overrides, presets, and a tiny sweep that reproduces byte for byte."""

from __future__ import annotations

import os
import pathlib

import pytest

from jgan import config as config_lib
from jgan.cli import sweep as sweep_cli
from jgan.labs import sweep
from tests.helpers import CONFIG_DIR, load_config

MC = os.path.join(CONFIG_DIR, "mode_collapse.py")


def test_parse_spec_lists_ranges_and_steps():
  axes = sweep.parse_spec(" model.pack=1,2,4 ; seed=0:3;optim.d.lr=1e-4;x=10:0:-5 ")
  assert axes == [
    ("model.pack", ["1", "2", "4"]),
    ("seed", ["0", "1", "2"]),
    ("optim.d.lr", ["1e-4"]),
    ("x", ["10", "5"]),
  ]
  assert sweep.parse_spec("arg=ring8:gan,grid25:gan") == [("arg", ["ring8:gan", "grid25:gan"])]


@pytest.mark.parametrize(
  "spec, match",
  [
    ("", "empty sweep"),
    ("seed", "expected KEY="),
    ("seed=", "expected KEY="),
    ("seed=3:3", "empty range"),
    ("seed=1,,2", "empty value"),
    ("seed=1;seed=2", "appears twice"),
    ("seed=1,1", "repeats"),
  ],
)
def test_parse_spec_errors(spec, match):
  with pytest.raises(ValueError, match=match):
    sweep.parse_spec(spec)


def test_expand_types_names_and_order():
  runs = sweep.expand(MC + ":ring8", "arg=ring8:gan,grid25:pacgan2;seed=0:2;optim.g.lr=3e-4;train.progress=true")
  assert [r.name for r in runs] == [
    "arg=ring8_gan,seed=0",
    "arg=ring8_gan,seed=1",
    "arg=grid25_pacgan2,seed=0",
    "arg=grid25_pacgan2,seed=1",
  ]
  c = sweep.run_config(MC, runs[3])
  assert (c.data.name, c.model.pack, c.seed, c.optim.g.lr) == ("grid25", 2, 1, 3e-4)
  assert c.train.progress is False  # a sweep prints one line per run instead of progress bars
  assert runs[3].group == (("arg", "grid25:pacgan2"),) and runs[3].seed_label == "1"
  assert sweep.config_digest(c) != sweep.config_digest(sweep.run_config(MC, runs[2]))


@pytest.mark.parametrize(
  "spec, match",
  [
    ("model.pak=1,2", "did you mean 'model.pack'"),
    ("model.pack=two", "not a int"),
    ("train.progress=maybe", "not a bool"),
    ("optim=1", "is a section"),
    ("arg=ring8:nope", "mode-collapse method"),
  ],
)
def test_expand_errors(spec, match):
  with pytest.raises(ValueError, match=match):
    sweep.expand(MC, spec)


@pytest.mark.parametrize(
  "arg, check",
  [
    ("ring8", lambda c: c.model.pack == 1 and c.train.unrolled_steps == 0 and c.objective.name == "non_saturating"),
    ("grid25:pacgan4", lambda c: c.model.pack == 4 and c.data.name == "grid25"),
    ("ring8:unrolled", lambda c: c.train.unrolled_steps == 5),
    ("ring8:unrolled3", lambda c: c.train.unrolled_steps == 3),
    ("grid25:wgan_gp", lambda c: c.objective.name == "wgan_gp" and c.train.n_critic == 5),
  ],
)
def test_mode_collapse_presets_resolve(arg, check):
  c = config_lib.resolve(load_config("mode_collapse", arg))
  assert check(c)
  assert c.train.batch_size % c.model.pack == 0 and c.train.steps % c.train.steps_per_call == 0


def test_cli_dry_run_lists_runs(tmp_path, capsys):
  rc = sweep_cli.main(["--config", MC, "--sweep", "model.pack=1,2;seed=0:3", "--workdir", str(tmp_path), "--dry_run"])
  out = capsys.readouterr().out
  assert rc == 0 and "model.pack=2,seed=2" in out and "6 runs" in out
  assert sweep_cli.main(["--config", MC, "--sweep", "model.pack=x", "--workdir", str(tmp_path)]) == 2


# 2 configs x 2 seeds, 20 steps of tiny models on one device: each run trains in a fraction of a second.
TINY = (
  "arg=ring8:gan,ring8:pacgan2;seed=0:2;train.steps=20;train.steps_per_call=10;train.log_every=10;"
  "train.batch_size=16;train.num_samples=64;model.g_width=8;model.d_width=8;parallel.num_devices=1"
)
OUTPUTS = ("table.md", "table.csv", "results.csv")


def _read(d):
  return {name: pathlib.Path(d, name).read_bytes() for name in OUTPUTS}


def test_tiny_sweep_reproduces_tables_and_resumes(tmp_path):
  # Sweep a trains in 2 spawned processes with a persistent compilation cache (a process-global JAX
  # setting, so it stays out of the test process); sweep b trains the same runs again in this process,
  # compiling afresh. Their tables must agree byte for byte.
  a, b = str(tmp_path / "a"), str(tmp_path / "b")
  lines = []
  res = sweep.run_sweep(MC, TINY, a, processes=2, cache_dir=str(tmp_path / "xla_cache"), log=lines.append)
  assert [r["skipped"] for r in res] == [False] * 4 and len(lines) == 5
  assert all(r["step"] == 20 and 0 <= r["modes"] <= 8 and 0 <= r["high_quality"] <= 1 for r in res)
  for name in (
    "samples.png",
    "timing.jsonl",
    "runs/arg=ring8_pacgan2,seed=1/final_samples.npy",
    "runs/arg=ring8_gan,seed=0/config.json",
  ):
    assert os.path.exists(os.path.join(a, name)), name
  table = pathlib.Path(a, "table.md").read_text()
  assert "| arg | runs | modes (of 8) |" in table and "| ring8:pacgan2 | 2 |" in table

  # results.csv is real CSV although run names hold commas: one column per field, named once.
  import csv

  with open(os.path.join(a, "results.csv")) as f:
    rows = list(csv.DictReader(f))
  assert [r["name"] for r in rows] == [r["name"] for r in res] and rows[0]["name"].count(",") == 1
  assert [r["arg"] for r in rows] == ["ring8:gan", "ring8:gan", "ring8:pacgan2", "ring8:pacgan2"]
  assert [int(r["seed"]) for r in rows] == [0, 1, 0, 1] and all(int(r["step"]) == 20 for r in rows)

  sweep.run_sweep(MC, TINY, b, log=lines.append)
  assert _read(a) == _read(b)

  # Rerunning on a finished workdir (in this process) trains nothing and rewrites the same tables.
  before = _read(a)
  res = sweep.run_sweep(MC, TINY, a, log=lines.append)
  assert all(r["skipped"] for r in res) and _read(a) == before

  # A finished run directory is never reused for a different config.
  with pytest.raises(ValueError, match="another config"):
    sweep.run_sweep(MC, TINY.replace("train.steps=20", "train.steps=30"), a, log=lines.append)
