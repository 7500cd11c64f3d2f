"""Every subcommand refuses bad command lines in one ``error:`` line, exit status 2, before anything compiles.

One table, :data:`CASES`: a bad command line per row (a value out of range, a wrong type, an unknown flag,
a stray positional argument, a path that is a file, ...) for each of ``train``, ``eval``, ``sample``,
``latent``, ``sweep``, ``dynamics``, ``classifier``, ``judge``, ``data`` and ``config``, with a stable part of
the message it must print. Each row runs ``jgan.cli.main`` in this process (what the console script runs), counting
XLA compilations (``jax.monitoring``'s backend-compile event) and checking that the scratch workdir got
no checkpoint; a sample of rows also runs as a real process (``launch.py``) to show no traceback reaches
the terminal. ``docs/bad_inputs.md`` lists the rows with their messages (``python -m tests.test_config``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import NamedTuple

import pytest

from tests.helpers import ROOT


class CliCase(NamedTuple):
  """A bad command line (``<tmp>``: a scratch directory holding a file ``afile`` and a directory ``run``)."""

  argv: tuple[str, ...]
  expect: str


SMOKE = ("--config", "configs/smoke.py", "--workdir", "<tmp>/w")
CASES: dict[str, CliCase] = {
  # train: the config flags (jgan/cli/flags.py) and the schema's ranges (jgan/config_schema.py).
  "train_stray_positional": CliCase(
    ("train", *SMOKE, "stray"), "unexpected argument 'stray': jgan train takes flags only"
  ),
  "train_single_dash": CliCase(("train", *SMOKE, "-config.train.steps=5"), "unknown flag -config.train.steps"),
  "train_unknown_flag": CliCase(("train", *SMOKE, "--wokdir=x"), "unknown flag --wokdir; did you mean --workdir?"),
  "train_workdir_twice": CliCase(("train", *SMOKE, "--workdir", "<tmp>/v"), "--workdir is given twice"),
  "train_config_no_value": CliCase(("train", "--workdir", "<tmp>/w", "--config"), "--config needs a value"),
  "train_key_no_value": CliCase(("train", *SMOKE, "--config.train.steps"), "--config.train.steps needs a value"),
  "train_config_is_dir": CliCase(
    ("train", "--config", "configs", "--workdir", "<tmp>/w"), "config file 'configs' is a directory"
  ),
  "train_workdir_under_file": CliCase(
    ("train", "--config", "configs/smoke.py", "--workdir", "<tmp>/afile/run"),
    "cannot be created: <tmp>/afile is a file",
  ),
  "train_workdir_url": CliCase(
    ("train", "--config", "configs/smoke.py", "--workdir", "s3://bucket/run"),
    "workdir='s3://bucket/run': s3:// is not supported (Orbax writes checkpoints natively to gs:// only); "
    "valid: a local or mounted directory path, or gs://BUCKET/PATH (Google Cloud Storage)",
  ),
  "train_data_dir_file": CliCase(
    ("train", *SMOKE, "--config.data.data_dir=<tmp>/afile"),
    "data.data_dir='<tmp>/afile' is a file; expected a directory",
  ),
  "train_seed_overflow": CliCase(("train", *SMOKE, f"--config.seed={2**64}"), f"seed={2**64} must be <= 4294967295"),
  "train_seeds_overflow": CliCase(
    ("train", *SMOKE, "--config.seed=4294967295", "--config.train.num_seeds=2"), "uses seeds up to 4294967296"
  ),
  "train_zero_width": CliCase(
    ("train", *SMOKE, "--config.model.g_width=0"), "model.g_width=0 must be a positive integer"
  ),
  "train_beta2": CliCase(("train", *SMOKE, "--config.optim.d.b2=1.5"), "optim.d.b2=1.5 must be in [0, 1)"),
  "train_beta1_one": CliCase(("train", *SMOKE, "--config.optim.g.b1=1.0"), "optim.g.b1=1.0 must be in [0, 1)"),
  "train_lr_inf": CliCase(("train", *SMOKE, "--config.optim.g.lr=inf"), "optim.g.lr=inf must be a finite number"),
  "train_negative_evals": CliCase(
    ("train", *SMOKE, "--config.evals.every_steps=-5"), "evals.every_steps=-5 must be >= 0"
  ),
  "train_misspelt_metric": CliCase(
    ("train", *SMOKE, "--config.evals.metrics=mnist_fid5kk"), "evals.metrics='mnist_fid5kk' names an unknown metric"
  ),
  "train_component_field_unchosen": CliCase(
    ("train", *SMOKE, "--config.penalty.gamma=5"),
    "'gamma' is a field of r1, r2, r1_r2: choose one with --config.penalty.name",
  ),
  "train_component_field_range": CliCase(
    ("train", *SMOKE, "--config.objective.name=ebgan", "--config.objective.margin=-1"),
    "objective.margin=-1.0 must be a positive number",
  ),
  "train_num_processes": CliCase(("train", *SMOKE, "--num_processes", "0"), "--num_processes=0: must be >= 1"),
  "train_bool_for_int": CliCase(("train", *SMOKE, "--config.train.steps=true"), "'true' is not an integer"),
  # eval
  "eval_no_workdir": CliCase(("eval",), "the following arguments are required: --workdir"),
  "eval_missing_workdir": CliCase(("eval", "--workdir", "<tmp>/nowhere"), "'<tmp>/nowhere' does not exist"),
  "eval_workdir_url": CliCase(
    ("eval", "--workdir", "memory://run"),
    "--workdir: 'memory://run': memory:// is not supported (Orbax writes checkpoints natively to gs:// only)",
  ),
  "eval_batch_size": CliCase(
    ("eval", "--workdir", "<tmp>/run", "--batch_size", "0"), "--batch_size: must be an integer >= 1"
  ),
  "eval_num_samples": CliCase(
    ("eval", "--workdir", "<tmp>/run", "--num_samples", "-1"), "--num_samples: must be an integer >= 1"
  ),
  "eval_step": CliCase(("eval", "--workdir", "<tmp>/run", "--step", "x"), "--step: 'x' is not an integer"),
  "eval_metric": CliCase(("eval", "--workdir", "<tmp>/run", "--metrics", "fid5"), "--metrics: unknown metric 'fid5'"),
  "eval_data": CliCase(("eval", "--workdir", "<tmp>/run", "--data", "test:one"), "'test:one' is not SPLIT[:CLASS]"),
  "eval_fid_mode": CliCase(
    ("eval", "--workdir", "<tmp>/run", "--fid_mode", "fast"),
    "--fid_mode: unknown --fid_mode 'fast'; valid choices: legacy_pytorch, clean",
  ),
  "eval_ref_stats": CliCase(
    ("eval", "--workdir", "<tmp>/run", "--ref_stats", "<tmp>/no.npz"), "does not exist; expected a file"
  ),
  "eval_stray": CliCase(("eval", "--workdir", "<tmp>/run", "stray"), "unrecognized arguments: stray"),
  "eval_single_dash": CliCase(
    ("eval", "--workdir", "<tmp>/run", "-batch_size", "4"), "unrecognized arguments: -batch_size"
  ),
  "eval_abbreviated": CliCase(("eval", "--workdir", "<tmp>/run", "--batch", "4"), "unrecognized arguments: --batch 4"),
  # eval --samples: image files scored against a dataset
  "eval_samples_missing": CliCase(
    ("eval", "--samples", "<tmp>/no.npz", "--data", "mnist5k"),
    "--samples: '<tmp>/no.npz' does not exist; give a folder of images or an .npz file",
  ),
  "eval_samples_not_npz": CliCase(
    ("eval", "--samples", "<tmp>/afile", "--data", "mnist5k"), "is neither a folder of images nor an .npz file"
  ),
  "eval_samples_step": CliCase(
    ("eval", "--samples", "<tmp>/run", "--data", "mnist5k", "--step", "3"),
    "--step: only for a run's generator; --samples scores image files",
  ),
  "eval_samples_no_data": CliCase(
    ("eval", "--samples", "<tmp>/run"), "--samples needs --data NAME (the dataset they are compared with)"
  ),
  "eval_samples_unknown_data": CliCase(
    ("eval", "--samples", "<tmp>/run", "--data", "imagenet", "--data_dir", "<tmp>/run"),
    "unknown --data 'imagenet'; valid choices: celeb_a,",
  ),
  "eval_samples_image_size": CliCase(
    ("eval", "--samples", "<tmp>/run", "--data", "mnist5k", "--image_size", "0"),
    "--image_size: must be an integer >= 1",
  ),
  "eval_samples_none": CliCase(
    ("eval", "--samples", "<tmp>/run", "--data", "mnist5k", "--metrics", "mnist_fid5k"), "no image files (.png"
  ),
  "eval_image_size_without_samples": CliCase(
    ("eval", "--workdir", "<tmp>/run", "--image_size", "32"), "--image_size: only with --samples"
  ),
  # sample
  "sample_no_workdir": CliCase(("sample", "--n", "4", "--out", "<tmp>/s"), "required: --workdir"),
  "sample_n": CliCase(
    ("sample", "--workdir", "<tmp>/run", "--n", "0", "--out", "<tmp>/s"), "--n: must be an integer >= 1"
  ),
  "sample_out_file": CliCase(
    ("sample", "--workdir", "<tmp>/run", "--n", "4", "--out", "<tmp>/afile"),
    "--out: '<tmp>/afile' is a file; expected a directory",
  ),
  "sample_out_not_empty": CliCase(
    ("sample", "--workdir", "<tmp>/run", "--n", "4", "--out", "<tmp>"), "exists and is not empty; give a new or empty"
  ),
  "sample_npz_under_file": CliCase(
    ("sample", "--workdir", "<tmp>/run", "--n", "4", "--out", "<tmp>/afile/s.npz"),
    "--out: '<tmp>/afile' is a file; expected a directory",
  ),
  "sample_labels": CliCase(
    ("sample", "--workdir", "<tmp>/run", "--n", "4", "--out", "<tmp>/s", "--labels", "one"),
    "--labels: 'one' is not a comma list of class ids",
  ),
  "sample_seed": CliCase(
    ("sample", "--workdir", "<tmp>/run", "--n", "4", "--out", "<tmp>/s", "--seed", "-1"),
    "--seed: must be an integer in [0, 4294967295]",
  ),
  "sample_not_a_run": CliCase(
    ("sample", "--workdir", "<tmp>/run", "--n", "4", "--out", "<tmp>/s"),
    "<tmp>/run/config.json not found: --workdir must be a jgan run directory",
  ),
  "sample_stray": CliCase(
    ("sample", "--workdir", "<tmp>/run", "--n", "4", "--out", "<tmp>/s", "x"), "unrecognized arguments: x"
  ),
  # latent
  "latent_op": CliCase(
    ("latent", "--workdir", "<tmp>/run", "--op", "morph"),
    "--op: unknown op 'morph'; valid choices: interpolate, walk, arithmetic, neighbours",
  ),
  "latent_n": CliCase(
    ("latent", "--workdir", "<tmp>/run", "--op", "walk", "--n", "-1"), "--n: must be an integer >= 0"
  ),
  "latent_points": CliCase(
    ("latent", "--workdir", "<tmp>/run", "--op", "walk", "--points", "1"), "--points: must be an integer >= 2"
  ),
  "latent_scale": CliCase(
    ("latent", "--workdir", "<tmp>/run", "--op", "walk", "--scale", "0"), "--scale: must be an integer in [1, 64]"
  ),
  "latent_confidence": CliCase(
    ("latent", "--workdir", "<tmp>/run", "--op", "arithmetic", "--min-confidence", "1.5"),
    "must be a finite number in [0, 1]",
  ),
  "latent_seed": CliCase(
    ("latent", "--workdir", "<tmp>/run", "--op", "walk", "--seed", "-1"),
    "--seed: must be an integer in [0, 4294967295]",
  ),
  "latent_out_file": CliCase(
    ("latent", "--workdir", "<tmp>/run", "--op", "walk", "--out", "<tmp>/afile"), "'<tmp>/afile' is a file"
  ),
  "latent_stray": CliCase(
    ("latent", "--workdir", "<tmp>/run", "--op", "walk", "stray"), "unrecognized arguments: stray"
  ),
  # sweep
  "sweep_processes": CliCase(
    ("sweep", "--config", "configs/ring8.py", "--sweep", "seed=0:2", "--workdir", "<tmp>/s", "--processes", "0"),
    "--processes: must be an integer in [1, 1024]",
  ),
  "sweep_workdir_file": CliCase(
    ("sweep", "--config", "configs/ring8.py", "--sweep", "seed=0:2", "--workdir", "<tmp>/afile"),
    "'<tmp>/afile' is a file",
  ),
  "sweep_workdir_url": CliCase(
    ("sweep", "--config", "configs/ring8.py", "--sweep", "seed=0:2", "--workdir", "gs://bucket/s"),
    "--workdir: 'gs://bucket/s' is a URL; expected a local directory path",
  ),
  "sweep_no_sweep": CliCase(("sweep", "--config", "configs/ring8.py", "--workdir", "<tmp>/s"), "required: --sweep"),
  "sweep_stray": CliCase(
    ("sweep", "--config", "configs/ring8.py", "--sweep", "seed=0:2", "--workdir", "<tmp>/s", "x"),
    "unrecognized arguments: x",
  ),
  # dynamics
  "dynamics_lr": CliCase(("dynamics", "--workdir", "<tmp>/d", "--lr", "0"), "--lr: must be a finite number > 0"),
  "dynamics_lr_nan": CliCase(("dynamics", "--workdir", "<tmp>/d", "--lr", "nan"), "--lr: must be a finite number > 0"),
  "dynamics_steps": CliCase(
    ("dynamics", "--workdir", "<tmp>/d", "--steps", "0"), "--steps: must be an integer in [1, 10000000]"
  ),
  "dynamics_start": CliCase(
    ("dynamics", "--workdir", "<tmp>/d", "--start", "1"), "'1' is not two finite numbers x0,y0"
  ),
  "dynamics_r1": CliCase(
    ("dynamics", "--workdir", "<tmp>/d", "--game", "dirac", "--r1", "-1"), "-1 in '-1' must be a finite number >= 0"
  ),
  "dynamics_game": CliCase(
    ("dynamics", "--workdir", "<tmp>/d", "--game", "chess"),
    "--game: unknown game 'chess'; valid choices: bilinear, dirac",
  ),
  "dynamics_stray": CliCase(("dynamics", "--workdir", "<tmp>/d", "stray"), "unrecognized arguments: stray"),
  # data
  "data_name": CliCase(("data", "check", "Bad Name!"), "'Bad Name!' is not a dataset name"),
  "data_dir_file": CliCase(("data", "check", "mnist", "--data_dir", "<tmp>/afile"), "'<tmp>/afile' is a file"),
  "data_action": CliCase(("data", "fetch", "mnist"), "invalid choice: 'fetch'"),
  "data_stray": CliCase(("data", "check", "mnist", "extra"), "unrecognized arguments: extra"),
  "data_prepare_not_a_path": CliCase(
    ("data", "prepare", "Images!"), "'Images!' is not a dataset name (e.g. cifar10) nor a folder or zip"
  ),
  "data_prepare_no_name": CliCase(
    ("data", "prepare", "<tmp>/run", "--image_size", "32"), "--name is required to prepare the images in"
  ),
  "data_prepare_bad_name": CliCase(
    ("data", "prepare", "<tmp>/run", "--name", "Cells", "--image_size", "32"), "--name: 'Cells' must be snake_case"
  ),
  "data_prepare_builtin_name": CliCase(
    ("data", "prepare", "<tmp>/run", "--name", "mnist", "--image_size", "32"),
    "--name 'mnist' is a built-in jgan dataset; choose another name",
  ),
  "data_prepare_tfds_name": CliCase(
    ("data", "prepare", "<tmp>/run", "--name", "cifar100", "--image_size", "32"),
    "--name 'cifar100' is a TFDS catalogue dataset",
  ),
  "data_prepare_image_size": CliCase(
    ("data", "prepare", "<tmp>/run", "--name", "cells", "--image_size", "0"),
    "--image_size: must be an integer in [1, 4096]",
  ),
  "data_prepare_labels": CliCase(
    ("data", "prepare", "<tmp>/run", "--name", "cells", "--image_size", "32", "--labels", "colour"),
    "--labels: unknown --labels 'colour'; valid choices: auto, subfolders, dataset.json, none",
  ),
  "data_prepare_channels": CliCase(
    ("data", "prepare", "<tmp>/run", "--name", "cells", "--image_size", "32", "--channels", "2"),
    "unknown --channels '2'; valid choices: auto, 1, 3",
  ),
  "data_prepare_crop": CliCase(
    ("data", "prepare", "<tmp>/run", "--name", "cells", "--image_size", "32", "--crop", "top"),
    "unknown --crop 'top'; valid choices: center, none",
  ),
  "data_prepare_missing_path": CliCase(
    ("data", "prepare", "<tmp>/nowhere", "--name", "cells", "--image_size", "32", "--data_dir", "<tmp>/tfds"),
    "'<tmp>/nowhere' does not exist; give a folder of images or a zip of them",
  ),
  "data_prepare_not_a_zip": CliCase(
    ("data", "prepare", "<tmp>/afile", "--name", "cells", "--image_size", "32", "--data_dir", "<tmp>/tfds"),
    "is neither a folder nor a zip file",
  ),
  "data_prepare_no_images": CliCase(
    ("data", "prepare", "<tmp>/run", "--name", "cells", "--image_size", "32", "--data_dir", "<tmp>/tfds"),
    "no image files (.png, .jpg,",
  ),
  "data_prepare_folder_flag_for_tfds": CliCase(
    ("data", "prepare", "mnist", "--crop", "none"),
    "--crop: only for a folder or zip of images; 'mnist' is read as a TFDS name",
  ),
  "data_list_stray": CliCase(("data", "list", "extra"), "unrecognized arguments: extra"),
  # classifier (a config command line like train's, over the classifier's own schema)
  "classifier_stray": CliCase(
    ("classifier", "--config", "configs/classifier_mnist5k.py", "--workdir", "<tmp>/c", "x"), "unexpected argument 'x'"
  ),
  "classifier_steps": CliCase(
    ("classifier", "--config", "configs/classifier_mnist5k.py", "--workdir", "<tmp>/c", "--config.train.steps=0"),
    "train.steps=0 must be a positive integer",
  ),
  "classifier_unknown_key": CliCase(
    ("classifier", "--config", "configs/classifier_mnist5k.py", "--workdir", "<tmp>/c", "--config.train.epochs=3"),
    "unknown config key 'train.epochs'",
  ),
  # config
  "config_missing_file": CliCase(("config", "show", "configs/nope.py"), "config file 'configs/nope.py' does not exist"),
  "config_bad_value": CliCase(
    ("config", "show", "configs/smoke.py", "--config.train.steps=0"), "train.steps=0 must be a positive"
  ),
  "config_workdir": CliCase(("config", "show", "configs/smoke.py", "--workdir", "x"), "unknown flag --workdir"),
  "config_action": CliCase(("config", "print"), "unknown action 'print'; valid choices: show, docs"),
  # judge (the study's own checks, which read the run, are tests/test_labs_judge.py's table)
  "judge_no_form": CliCase(("judge", "--n", "4"), "one of the arguments --workdir --serve --report is required"),
  "judge_missing_workdir": CliCase(("judge", "--workdir", "<tmp>/nowhere"), "'<tmp>/nowhere' does not exist"),
  "judge_odd_n": CliCase(("judge", "--workdir", "<tmp>/run", "--n", "7"), "--n: must be even, got 7"),
  "judge_n_range": CliCase(("judge", "--workdir", "<tmp>/run", "--n", "0"), "--n: must be an integer in [2, 100000]"),
  "judge_checks": CliCase(("judge", "--workdir", "<tmp>/run", "--checks", "3"), "--checks: must be even, got 3"),
  "judge_mode": CliCase(
    ("judge", "--workdir", "<tmp>/run", "--mode", "fast"), "unknown mode 'fast'; valid choices: infinite, time"
  ),
  "judge_port": CliCase(
    ("judge", "--workdir", "<tmp>/run", "--port", "70000"), "--port: must be an integer in [0, 65535]"
  ),
  "judge_bootstrap": CliCase(
    ("judge", "--report", "<tmp>/run", "--bootstrap", "0"), "--bootstrap: must be an integer >= 1"
  ),
  "judge_seed": CliCase(
    ("judge", "--workdir", "<tmp>/run", "--seed", "-1"), "--seed: must be an integer in [0, 4294967295]"
  ),
  "judge_stray": CliCase(("judge", "--workdir", "<tmp>/run", "stray"), "unrecognized arguments: stray"),
}
# Rows that also run as a process, one per subcommand.
PROCESS_CASES = (
  "train_stray_positional",
  "train_seed_overflow",
  "eval_batch_size",
  "sample_n",
  "latent_op",
  "sweep_processes",
  "dynamics_lr",
  "data_dir_file",
  "classifier_steps",
  "config_bad_value",
  "judge_odd_n",
)


def _argv(case: CliCase, tmp: str) -> list[str]:
  return [a.replace("<tmp>", tmp) for a in case.argv]


def _scratch(tmp) -> str:
  tmp = str(tmp)
  os.makedirs(os.path.join(tmp, "run"), exist_ok=True)
  open(os.path.join(tmp, "afile"), "w").close()
  return tmp


class Compiles:
  """Counts XLA backend compilations while active (``jax.monitoring``'s duration event)."""

  EVENT = "/jax/core/compile/backend_compile_duration"

  def __init__(self):
    self.count = 0

  def _listen(self, event, duration, **kwargs):
    if event == self.EVENT:
      self.count += 1

  def __enter__(self):
    import jax

    jax.monitoring.register_event_duration_secs_listener(self._listen)
    return self

  def __exit__(self, *exc):
    import jax

    jax.monitoring.unregister_event_duration_listener(self._listen)


def run_case(name: str, tmp: str) -> tuple[int, str, int]:
  """``(exit status, stderr, compilations)`` of case ``name`` run by ``jgan.cli.main`` in this process."""
  import contextlib
  import io

  from jgan import cli

  err, out = io.StringIO(), io.StringIO()
  cwd = os.getcwd()
  os.chdir(ROOT)  # config paths are relative to the repository root
  try:
    with Compiles() as compiles, contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
      code = cli.main(_argv(CASES[name], tmp))
  finally:
    os.chdir(cwd)
  return code, err.getvalue(), compiles.count


def message(name: str, tmp: str) -> str:
  """The ``error:`` line of case ``name`` with the scratch directory written ``<tmp>`` (for the docs)."""
  _, err, _ = run_case(name, _scratch(tmp))
  lines = [ln for ln in err.splitlines() if ln.strip()]
  return (lines[-1] if lines else "(no message)").replace(os.path.realpath(tmp), "<tmp>").replace(tmp, "<tmp>")


@pytest.fixture(scope="module", autouse=True)
def _imported():
  """The subcommands' modules imported first: what importing them compiles is not the case's doing."""
  import importlib

  from jgan.cli import SUBCOMMANDS

  for module, _ in SUBCOMMANDS.values():
    importlib.import_module(module)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_command_line_is_one_error_line(name, tmp_path):
  tmp = _scratch(tmp_path)
  code, err, compiles = run_case(name, tmp)
  lines = [ln for ln in err.splitlines() if ln.strip()]
  assert code == 2, (name, err)
  assert len(lines) == 1 and lines[0].startswith("error: "), err
  assert CASES[name].expect.replace("<tmp>", tmp) in lines[0], lines[0]
  assert compiles == 0, f"{name}: {compiles} XLA compilations before the error"
  for d in ("w", "run", "c", "s", "d"):  # nothing written: no workdir, no checkpoint
    assert not os.path.exists(os.path.join(tmp, d, "checkpoints")), d
  assert not os.path.exists(os.path.join(tmp, "w")), "the workdir was created"


def test_every_subcommand_has_bad_cases():
  from jgan.cli import SUBCOMMANDS

  assert {c.argv[0] for c in CASES.values()} == set(SUBCOMMANDS)


@pytest.mark.slow
@pytest.mark.parametrize("name", PROCESS_CASES)
def test_bad_command_line_as_a_process(name, tmp_path):
  tmp = _scratch(tmp_path)
  r = subprocess.run(
    [sys.executable, "launch.py", *_argv(CASES[name], tmp)], cwd=ROOT, capture_output=True, text=True, timeout=600
  )
  lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("WARNING")]
  assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
  assert len(lines) == 1 and lines[0].startswith("error: ") and CASES[name].expect.replace("<tmp>", tmp) in lines[0]
  assert not os.path.exists(os.path.join(tmp, "w"))
