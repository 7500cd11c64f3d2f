"""Sweeps: the --sweep grammar, typed overrides, presets, a tiny sweep that reproduces byte for byte, the
checks that fail a bad sweep before training, and an image sweep scored by a registered metric."""

from __future__ import annotations

import json
import os
import pathlib
import time

import numpy as np
import pytest

from jgan import config as config_lib
from jgan.cli import sweep as sweep_cli
from jgan.labs import sweep, sweep_scoring, sweep_spec
from tests.helpers import CONFIG_DIR, load_config
from tests.test_metrics_classifier import small_classifier  # noqa: F401  (session fixture)

MC = os.path.join(CONFIG_DIR, "mode_collapse.py")
DCGAN = os.path.join(CONFIG_DIR, "dcgan_mnist5k.py")
SMOKE = os.path.join(CONFIG_DIR, "smoke.py")


def test_parse_spec_lists_ranges_and_steps():
  axes = sweep_spec.parse_spec(" model.pack=1,2,4 ; seed=0:3;optim.d.lr=1e-4;x=10:0:-5 ")
  assert axes == [
    ("model.pack", ["1", "2", "4"]),
    ("seed", ["0", "1", "2"]),
    ("optim.d.lr", ["1e-4"]),
    ("x", ["10", "5"]),
  ]
  assert sweep_spec.parse_spec("arg=ring8:gan,grid25:gan") == [("arg", ["ring8:gan", "grid25:gan"])]


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
    sweep_spec.parse_spec(spec)


def test_expand_types_names_and_order():
  runs = sweep_spec.expand(MC + ":ring8", "arg=ring8:gan,grid25:pacgan2;seed=0:2;optim.g.lr=3e-4;train.progress=true")
  assert [r.name for r in runs] == [
    "arg=ring8_gan,seed=0",
    "arg=ring8_gan,seed=1",
    "arg=grid25_pacgan2,seed=0",
    "arg=grid25_pacgan2,seed=1",
  ]
  c = sweep_spec.run_config(MC, runs[3])
  assert (c.data.name, c.model.pack, c.seed, c.optim.g.lr) == ("grid25", 2, 1, 3e-4)
  assert c.train.progress is False  # a sweep prints one line per run instead of progress bars
  assert runs[3].group == (("arg", "grid25:pacgan2"),) and runs[3].seed_label == "1"
  assert sweep_spec.config_digest(c) != sweep_spec.config_digest(sweep_spec.run_config(MC, runs[2]))


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
    sweep_spec.expand(MC, spec)


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


def test_ensembles_group_seeds_and_vmappable_axes_and_equal_separate_runs(tmp_path):
  runs = sweep_spec.expand(MC, "arg=ring8:gan,ring8:pacgan2;model.pack=1,2;optim.d.lr=1e-4,2e-4;seed=0:3")
  groups = sweep.group_runs(runs)
  assert [len(g) for g in groups] == [6, 6, 6, 6]  # arg x pack groups; d's lr x seed members
  assert {dict(r.overrides)["model.pack"] for r in groups[1]} == {2}
  # The runs of an ensemble are the separate runs, bit for bit (tables, samples).
  a, b = str(tmp_path / "a"), str(tmp_path / "b")
  sweep.run_sweep(MC, TINY, a, log=lambda *_: None)
  sweep.run_sweep(MC, TINY, b, ensembles=False, log=lambda *_: None)
  assert _read(a) == _read(b)
  for run in ("arg=ring8_gan,seed=1", "arg=ring8_pacgan2,seed=0"):
    assert (
      pathlib.Path(a, "runs", run, "final_samples.npy").read_bytes()
      == pathlib.Path(b, "runs", run, "final_samples.npy").read_bytes()
    )
  assert len(os.listdir(os.path.join(a, "ensembles"))) == 2


@pytest.mark.parametrize(
  "config, spec, metric, match",
  [
    (DCGAN, "seed=0:2;model.g_widht=8", None, "did you mean 'model.g_width'"),
    (DCGAN, "seed=0:2;optim.d.lr=-1", None, r"run seed=0: optim.d.lr=-1.0 must be a positive number"),
    (MC, "seed=0:2", "mnist_fid500", r"metric 'mnist_fid500' does not apply .*'ring8'.*; valid choices: modes2500$"),
    (DCGAN, "seed=0:2", "modes2500", r"metric 'modes2500' does not apply .*'mnist5k'.*valid choices: fid10k, .*mnist_"),
    (
      DCGAN,
      "seed=0:2",
      "mnist_fid500,mnist_class_match500",
      r"'mnist_class_match500' does not apply .*model.conditional=False.*valid choices: (?!.*class_match)",
    ),
    (DCGAN, "seed=0:2", "fid1k", r"^unknown metric 'fid1k'; valid choices: .*fid10k"),
  ],
)
def test_bad_sweeps_fail_before_training(tmp_path, capsys, config, spec, metric, match):
  """Bad keys, configs that do not resolve and metrics that do not fit fail in the checks, not in a run."""
  import re

  argv = ["--config", config, "--sweep", spec, "--workdir", str(tmp_path / "w")] + (
    ["--metric", metric] if metric else []
  )
  t0 = time.perf_counter()
  rc = sweep_cli.main(argv)
  elapsed = time.perf_counter() - t0
  err = capsys.readouterr().err
  assert rc == 2 and err.startswith("error: ") and re.search(match, err.strip()[len("error: ") :]), err
  assert not os.path.exists(tmp_path / "w" / "runs")  # nothing trained
  with pytest.raises(ValueError, match=match):  # the library raises the same before any run trains
    sweep.run_sweep(config, spec, str(tmp_path / "w"), metrics=metric, log=lambda _: None)
  assert not os.path.exists(tmp_path / "w" / "runs")
  print(f"failed in {elapsed:.2f} s")  # measured (pytest -s): well under the 10 s budget


def test_metric_defaults_and_applicable_choices():
  ring = sweep_spec.run_config(MC, sweep_spec.expand(MC, "seed=0")[0])
  assert sweep_scoring.check_metrics(ring) == () and sweep_scoring.applicable_metrics(ring) == ["modes2500"]
  assert sweep_scoring.check_metrics(ring, "modes2500") == ("modes2500",)
  digits = load_config("dcgan_mnist5k")
  assert sweep_scoring.check_metrics(digits) == tuple(evaluation_defaults("mnist5k").split(","))
  assert "mnist_class_match5k" not in sweep_scoring.applicable_metrics(digits)
  digits.model.conditional = True
  assert "mnist_class_match5k" in sweep_scoring.applicable_metrics(digits)
  assert "stacked_modes26k" not in sweep_scoring.applicable_metrics(digits)
  # The config's evals.metrics:
  assert sweep_scoring.check_metrics(load_config("stacked_mnist5k")) == ("stacked_modes26k",)


def evaluation_defaults(name: str) -> str:
  from jgan import evaluation

  return evaluation.DEFAULT_METRICS[name]


# 2 seeds of a tiny DCGAN on mnist5k, 2 steps; scored on 100 samples by the small digit classifier.
TINY_IMAGE = (
  "seed=0:2;train.steps=2;train.steps_per_call=1;train.log_every=1;train.batch_size=8;train.sample_every=0;"
  "train.num_samples=16;model.g_width=8;model.d_width=8;parallel.num_devices=1;evals.num_samples=100;"
  "evals.batch_size=50;evals.classifier_path={clf}"
)


@pytest.mark.slow
def test_image_sweep_scores_any_metric_and_tabulates_seeds(tmp_path, small_classifier):  # noqa: F811
  import csv

  spec = TINY_IMAGE.format(clf=small_classifier)
  w = str(tmp_path / "w")
  res = sweep.run_sweep(DCGAN, spec, w, metrics=["mnist_fid500,mnist_modes500"], cache_dir=None, log=lambda _: None)
  keys = ["mnist_fid100", "mnist_modes100/modes", "mnist_modes100/reverse_kl"]  # named by the 100 samples used
  stored = [json.loads(pathlib.Path(w, "runs", f"seed={s}", "final_metrics.json").read_text()) for s in (0, 1)]
  assert [r["seed"] for r in stored] == [0, 1] and all(r["step"] == 2 and r["data"] == "mnist5k" for r in stored)
  assert all(set(keys) <= set(r) for r in stored) and [r["skipped"] for r in res] == [False, False]
  assert all(1 <= r["mnist_modes100/modes"] <= 10 and np.isfinite(r["mnist_fid100"]) for r in stored)

  # table.csv: mean, sample sd and per-seed values, recomputed here from final_metrics.json.
  with open(os.path.join(w, "table.csv")) as f:
    (row,) = list(csv.DictReader(f))
  assert row["runs"] == "2" and row["seeds"] == "0 1"
  for k in keys:
    v = np.array([r[k] for r in stored])
    np.testing.assert_allclose(float(row[f"{k}_mean"]), np.mean(v), rtol=1e-8)
    np.testing.assert_allclose(float(row[f"{k}_std"]), np.std(v, ddof=1), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose([float(x) for x in row[f"{k}_per_seed"].split()], v, rtol=1e-8)
  table = pathlib.Path(w, "table.md").read_text()
  fid = np.array([r["mnist_fid100"] for r in stored])
  per_seed = ", ".join(f"{x:.4g}" for x in fid)
  assert "| runs | seeds | mnist_fid100 | mnist_fid100 per seed |" in table
  assert f"| 2 | 0, 1 | {fid.mean():.4g} ± {fid.std(ddof=1):.2g} | {per_seed} |" in table
  with open(os.path.join(w, "results.csv")) as f:
    rows = list(csv.DictReader(f))
  assert [r["name"] for r in rows] == ["seed=0", "seed=1"]
  np.testing.assert_allclose([float(r["mnist_fid100"]) for r in rows], fid, rtol=1e-8)
  assert np.load(os.path.join(w, "runs", "seed=1", "final_samples.npy")).shape == (16, 28, 28, 1)
  assert os.path.exists(os.path.join(w, "samples.png"))

  # score_run needs only a state and its config: a restored checkpoint scores exactly as the sweep did.
  from jgan import resume

  run = sweep_spec.expand(DCGAN, spec)[1]
  state, _ = resume.load_state(os.path.join(w, "runs", run.name))
  again = sweep_scoring.score_run(
    state, sweep_spec.run_config(DCGAN, run), str(tmp_path / "rescored"), "mnist_fid500,mnist_modes500"
  )
  assert again == {"step": 2, **{k: stored[1][k] for k in keys}}

  # Rerunning trains nothing and rewrites the same tables; a new metric scores the finished runs from
  # their checkpoints, keeping the values already there.
  before = {n: pathlib.Path(w, n).read_bytes() for n in OUTPUTS}
  res = sweep.run_sweep(DCGAN, spec, w, metrics="mnist_fid500,mnist_modes500", log=lambda _: None)
  assert all(r["skipped"] for r in res) and {n: pathlib.Path(w, n).read_bytes() for n in OUTPUTS} == before
  res = sweep.run_sweep(DCGAN, spec, w, metrics="mnist_is500", log=lambda _: None)
  assert not any(r["skipped"] for r in res) and all(r["step"] == 2 for r in res)
  for r, old in zip(res, stored):
    assert {k: r[k] for k in keys} == {k: old[k] for k in keys} and 1 <= r["mnist_is100/is"] <= 10
  assert "mnist_is100/is per seed" in pathlib.Path(w, "table.md").read_text()


def test_a_component_and_its_own_field_are_swept_together():
  """The name axis switches the section first, so R1's weight is a valid axis beside ``penalty.name=r1``."""
  runs = sweep_spec.expand(SMOKE, "penalty.name=r1;penalty.gamma=1,5;model.d_norm=none")
  assert [r.name for r in runs] == ["penalty.gamma=1", "penalty.gamma=5"]
  configs = [config_lib.resolve(sweep_spec.run_config(SMOKE, r)) for r in runs]
  assert [(c.penalty.name, c.penalty.gamma) for c in configs] == [("r1", 1.0), ("r1", 5.0)]


def test_runs_finished_before_keys_were_declared_are_still_recognised(tmp_path):
  """A run stored by an earlier jgan: its config lacks optim.g.eps / optim.d.eps (declared since, with the
  value optax used), so its digest differs, but it holds the results of the same config; a real change
  does not pass."""
  (run,) = sweep_spec.expand(SMOKE, "seed=0;optim.d.lr=1e-4")
  config = sweep_spec.run_config(SMOKE, run)
  old = config_lib.resolve(config).to_dict()
  for who in ("g", "d"):
    del old["optim"][who]["eps"]
  (tmp_path / "config.json").write_text(json.dumps(old))
  done = {"config_sha256": "digest-of-the-old-raw-config"}
  assert sweep_spec.holds_results_of(str(tmp_path), done, config)
  old["optim"]["d"]["lr"] = 2e-4
  (tmp_path / "config.json").write_text(json.dumps(old))
  assert not sweep_spec.holds_results_of(str(tmp_path), done, config)
