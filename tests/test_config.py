"""Bad inputs fail early with one clear line: the table of cases and the messages they give.

Every case runs for real (command-line parsing, ``resolve`` + ``build``, ``train_and_evaluate`` up to the point it
refuses, the checkpoint-loading entry point); ``docs/bad_inputs.md`` is generated from the same table and a test
checks it is current. Regenerate it with ``python -m tests.test_config``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import NamedTuple

if __name__ == "__main__":
  import tests.conftest  # noqa: F401  (the same 8 fake devices as under pytest)

import ml_collections
import pytest

from jgan import checkpoint as ckpt_lib
from jgan import components, evaluation, resume, train
from jgan import config as config_lib
from jgan import data as data_lib
from jgan.cli import flags as cli_flags
from tests.helpers import ROOT, load_config, setup

DOC = os.path.join(ROOT, "docs", "bad_inputs.md")


class Case(NamedTuple):
  """A bad input: what the user typed or set, how to trigger it, a stable part of the expected message."""

  what: str
  run: Callable[[str], None]  # raises for the bad input; takes a scratch directory
  expect: str
  one_line: bool = True  # False: a multi-line library message (launch.py joins its lines)


def _cli(*extra: str, config: str = "configs/smoke.py", workdir: bool = True) -> Callable[[str], None]:
  def run(tmp):
    argv = ["launch.py", *(["--config", config] if config else []), *extra]
    argv += ["--workdir", os.path.join(tmp, "run")] if workdir else []
    cwd = os.getcwd()
    os.chdir(ROOT)  # config paths are relative to the repository root, as for launch.py
    try:
      cli_flags.parse_cli(argv[1:])
    finally:
      os.chdir(cwd)

  return run


def _empty_dir(tmp: str) -> str:
  path = os.path.join(tmp, "empty")
  os.makedirs(path, exist_ok=True)
  return path


def _smoke(**overrides):
  c = load_config("smoke")
  for dotted, v in overrides.items():
    section, _, key = dotted.rpartition(".")
    node = c
    for part in filter(None, section.split(".")):
      node = node[part]
    node[key] = v
  return c


def _ensemble():
  from jgan import ensemble

  return ensemble


def _build(**overrides) -> Callable[[str], None]:
  """Resolves the smoke config with ``overrides`` and builds its components (what a run does first)."""

  def run(tmp):
    c = config_lib.resolve(_smoke(**overrides))
    components.build(c, data_lib.sample_shape(c.data), abstract=True)

  return run


def _train(config_fn, workdir_fn=lambda tmp: os.path.join(tmp, "run")) -> Callable[[str], None]:
  return lambda tmp: train.train_and_evaluate(config_fn(tmp), workdir_fn(tmp))


def _unknown_key_in_file(tmp):
  c = load_config("smoke")
  c.train.learning_rate = 1e-3  # a typo'd field set in an experiment file
  config_lib.check_keys(c)


def _string_steps(tmp):
  d = load_config("smoke").to_dict()
  d["train"]["steps"] = "10"
  config_lib.resolve(ml_collections.ConfigDict(d))


def _file_workdir(tmp):
  path = os.path.join(tmp, "run")
  open(path, "w").close()
  return path


def _workdir_in_use(tmp):
  """The workdir's lock held by a live run on another host (its heartbeat is fresh)."""
  import json

  from jgan import workdir as workdir_lib

  workdir = os.path.join(tmp, "run")
  os.makedirs(workdir, exist_ok=True)
  holder = {
    "pid": 4242,
    "host": "node7",
    "started_at": "2026-12-01 10:00:00 +0000",
    "argv": ["jgan", "train"],
    "token": "t",
  }
  with open(os.path.join(workdir, workdir_lib.LOCK_NAME), "w") as f:
    json.dump(holder, f)
  train.train_and_evaluate(_smoke(), workdir)


def _checkpoints_is_file(tmp):
  workdir = os.path.join(tmp, "run")
  os.makedirs(workdir, exist_ok=True)
  open(os.path.join(workdir, "checkpoints"), "w").close()
  train.train_and_evaluate(_smoke(), workdir)


def _image_folder(tmp: str, *, classes=("a", "b"), name="x") -> str:
  """A folder of four 40x48 RGB PNGs (two per class sub-folder, or flat when ``classes`` is empty)."""
  import numpy as np
  from PIL import Image

  root = os.path.join(tmp, name)
  for i in range(4):
    sub = os.path.join(root, classes[i % len(classes)]) if classes else root
    os.makedirs(sub, exist_ok=True)
    Image.fromarray(np.full((40, 48, 3), 60 * i, np.uint8)).save(os.path.join(sub, f"{i}.png"))
  return root


def _prepared(tmp: str, labels: str = "subfolders") -> str:
  """Prepares :func:`_image_folder` as dataset ``cells`` at 32 px under ``<tmp>/tfds``; returns that dir."""
  from jgan.data import folder_datasets

  data_dir = os.path.join(tmp, "tfds")
  req = folder_datasets.Request(_image_folder(tmp), "cells", 32, labels=labels, data_dir=data_dir)
  folder_datasets.prepare(req, progress=False)
  return data_dir


def _on_prepared(labels: str = "subfolders", **overrides) -> Callable[[str], None]:
  """Resolves the smoke config on the prepared folder dataset ``cells`` with ``overrides``."""

  def run(tmp):
    data_dir = _prepared(tmp, labels)
    base = {"data.name": "cells", "data.image_size": 32, "data.data_dir": data_dir}
    c = config_lib.resolve(_smoke(**{**base, **overrides}))
    components.build(c, data_lib.sample_shape(c.data), abstract=True)

  return run


def _prepare_request(**fields) -> Callable[[str], None]:
  """``jgan data prepare`` of :func:`_image_folder` as ``cells`` at 32 px, with ``fields`` changed."""

  def run(tmp):
    from jgan.data import folder_datasets

    base = dict(path=_image_folder(tmp), name="cells", image_size=32, data_dir=os.path.join(tmp, "tfds"))
    req = folder_datasets.Request(**{**base, **{k: v(tmp) if callable(v) else v for k, v in fields.items()}})
    folder_datasets.prepare(req, progress=False)

  return run


def _bad_files(tmp: str) -> str:
  """:func:`_image_folder` plus a truncated PNG and a text file named like a JPEG."""
  root = _image_folder(tmp)
  with open(os.path.join(root, "a", "0.png"), "rb") as f:
    data = f.read()
  with open(os.path.join(root, "a", "cut.png"), "wb") as f:
    f.write(data[: len(data) // 2])
  with open(os.path.join(root, "b", "notes.jpg"), "w") as f:
    f.write("not an image")
  return root


def _prepared_twice(tmp):
  data_dir = _prepared(tmp)
  from jgan.data import folder_datasets

  folder_datasets.prepare(folder_datasets.Request(os.path.join(tmp, "x"), "cells", 32, data_dir=data_dir))


def _samples_of_another_size(tmp):
  import numpy as np
  from PIL import Image

  from jgan import samples

  data_dir = _prepared(tmp)
  out = _empty_dir(tmp)
  for i in range(3):
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(os.path.join(out, f"{i}.png"))
  data = ml_collections.ConfigDict({"name": "cells", "image_size": 32, "data_dir": data_dir})
  samples.check_shape(samples.read_samples(out), data_lib.sample_shape(data), "<tmp>/empty", "cells")


def _ring8(**overrides):
  c = load_config("ring8")
  c.parallel.num_devices, c.train.steps_per_call, c.train.steps, c.train.progress = 1, 1, 4, False
  for dotted, v in overrides.items():
    section, key = dotted.split(".")
    c[section][key] = v
  return c


def _changed_config_resume(tmp):
  # A checkpoint written by one config, resumed with another batch size and learning rate.
  workdir = os.path.join(tmp, "run")
  config, _, state = setup(_ring8())
  ckpt = ckpt_lib.Checkpointer(ckpt_lib.checkpoint_dir(workdir), config.checkpoint, config=config)
  ckpt.save(2, state, {"index": 2})
  ckpt.close()
  train.train_and_evaluate(_ring8(**{"train.batch_size": 128}), workdir)


CASES: dict[str, Case] = {
  "cli_unknown_key": Case(
    "`--config.train.stepz=5`",
    _cli("--config.train.stepz=5"),
    "unknown config key 'train.stepz' (from --config.train.stepz=5); did you mean 'train.steps'?",
  ),
  "cli_unknown_section": Case(
    "`--config.trian.steps=5`",
    _cli("--config.trian.steps=5"),
    "unknown config key 'trian' (from --config.trian.steps=5); did you mean 'train'?",
  ),
  "cli_wrong_type": Case(
    "`--config.train.steps=abc`",
    _cli("--config.train.steps=abc"),
    "bad value in --config.train.steps=abc: 'abc' is not an integer; expected int like the default 10",
  ),
  "cli_float_for_int": Case(
    "`--config.train.batch_size=1.5`", _cli("--config.train.batch_size=1.5"), "'1.5' is not an integer; expected int"
  ),
  "cli_bad_bool": Case(
    "`--config.train.progress=maybe`",
    _cli("--config.train.progress=maybe"),
    "not a boolean (true or false); expected bool like the default False",
  ),
  "cli_section_value": Case(
    "`--config.train=5`", _cli("--config.train=5"), "'train' is a section; set its keys instead"
  ),
  "cli_missing_file": Case(
    "`--config configs/nope.py`",
    _cli(config="configs/nope.py"),
    "could not load --config=configs/nope.py: config file 'configs/nope.py' does not exist",
  ),
  "cli_bad_config_arg": Case(
    "`--config configs/smoke.py:nope`",
    _cli(config="configs/smoke.py:nope"),
    "could not load --config=configs/smoke.py:nope: ValueError: unknown objective 'nope'",
  ),
  "cli_no_workdir": Case("no `--workdir`", _cli(workdir=False), "--workdir is required"),
  "cli_unknown_flag": Case(
    "`--wokdir=runs/x`", _cli("--wokdir=runs/x"), "unknown flag --wokdir; did you mean --workdir?"
  ),
  "file_unknown_key": Case(
    "`c.train.learning_rate = 1e-3` in an experiment file",
    _unknown_key_in_file,
    "unknown config key 'train.learning_rate'",
  ),
  "negative_lr": Case(
    "`optim.g.lr = -1e-4`", _build(**{"optim.g.lr": -1e-4}), "optim.g.lr=-0.0001 must be a positive number"
  ),
  "zero_steps": Case("`train.steps = 0`", _build(**{"train.steps": 0}), "train.steps=0 must be a positive integer"),
  "string_steps": Case(
    '`"steps": "10"` in a config built from a dict or JSON',
    _string_steps,
    "train.steps='10' has type str; expected int",
  ),
  "image_size": Case(
    "`data.image_size = 48` with DCGAN",
    _build(**{"data.image_size": 48}),
    "data.image_size=48 is not supported by model 'dcgan'; valid choices: [28, 32, 64]",
  ),
  "unknown_objective": Case(
    "`objective.name = 'wgan-gp'`",
    _build(**{"objective.name": "wgan-gp"}),
    "unknown objective.name='wgan-gp'; valid choices:",
  ),
  "unknown_model": Case(
    "`model.name = 'resnet50'`",
    _build(**{"model.name": "resnet50"}),
    "unknown model.name='resnet50'; valid choices: biggan, dcgan",
  ),
  "wgan_gp_batchnorm": Case(
    "`objective.name = 'wgan_gp'` set alone on DCGAN's BatchNorm critic",
    _build(**{"objective.name": "wgan_gp"}),
    "objective.name='wgan_gp' adds a per-sample gradient penalty, which is ill-defined with a BatchNorm critic",
  ),
  "r1_batchnorm": Case(
    "`penalty.name = 'r1'` on DCGAN's BatchNorm critic",
    _build(**{"penalty.name": "r1"}),
    "penalty.name='r1' takes per-sample input gradients of D, which are ill-defined with a BatchNorm critic",
  ),
  "lr_final_scale_constant": Case(
    "`optim.lr_final_scale = 0.25` with the constant learning rate",
    _build(**{"optim.lr_final_scale": 0.25}),
    "optim.lr_final_scale=0.25 is read by optim.lr_schedule='cosine_to_final' only",
  ),
  "final_scale_no_penalty": Case(
    "`penalty.final_scale = 0.1` without a penalty",
    _build(**{"penalty.final_scale": 0.1}),
    "penalty.final_scale=0.1 schedules a penalty's weights; penalty.name is 'none'",
  ),
  "lecam_energy": Case(
    "`lecam.weight = 0.3` with BEGAN",
    _build(**{"objective.name": "began", "lecam.weight": 0.3}),
    "lecam.weight=0.3 regularises raw D scores; energy objectives ('began') have none",
  ),
  "rpgan_unrolled": Case(
    "`objective.name = 'rpgan'` with `train.unrolled_steps = 5`",
    _build(**{"objective.name": "rpgan", "train.unrolled_steps": 5}),
    "train.unrolled_steps=5 (D's look-ahead on the critic batch) is not supported by objective.name='rpgan'",
  ),
  "r3gan_width": Case(
    "`model.width = 12` with R3GAN's CIFAR-10 table",
    _build(**{"model.name": "r3gan", "model.arch": "cifar10", "model.width": 12}),
    "model.width=12 does not fit table 'cifar10'",
  ),
  "r3gan_image_size": Case(
    "`data.image_size = 48` with R3GAN",
    _build(**{"model.name": "r3gan", "data.image_size": 48}),
    "data.image_size=48 is not supported by model 'r3gan'; valid choices: [28, 32, 64, 256]",
  ),
  "conditional_unlabelled": Case(
    "`model.conditional = True` on the 8-Gaussian ring",
    lambda tmp: config_lib.resolve(_ring8(**{"model.conditional": True})),
    "model.conditional=True needs a labelled dataset; data.name='ring8' has no labels",
  ),
  "num_classes_mismatch": Case(
    "`model.num_classes = 5` for conditional mnist5k",
    _build(**{"model.conditional": True, "model.num_classes": 5}),
    "model.num_classes=5 differs from the 10 classes of data.name='mnist5k'; leave it 0",
  ),
  "class_match_unconditional": Case(
    "`evals.metrics = 'mnist_class_match10k'` for an unconditional model",
    lambda tmp: evaluation.make_evaluator(config_lib.resolve(_smoke(**{"evals.metrics": "mnist_class_match10k"})), tmp),
    "metric 'mnist_class_match10k' measures class-conditional generators; set model.conditional=True",
  ),
  "model_field": Case(
    "`model.g_widht = 8` (a misspelt field of the chosen model)",
    _build(**{"model.g_widht": 8}),
    "unknown config key 'model.g_widht'; did you mean 'model.g_width'? valid keys in model:",
  ),
  "model_layers": Case(
    "`model.layers = 'fastest'`",
    _build(**{"model.layers": "fastest"}),
    "unknown model.layers='fastest'; valid choices: auto, fast, native",
  ),
  "ensemble_mode": Case(
    "`parallel.ensemble = 'pmap'`", _build(**{"parallel.ensemble": "pmap"}), "unknown parallel.ensemble='pmap'"
  ),
  "ensemble_members_differ": Case(
    "ensemble members that differ in `model.pack` (not vmappable)",
    lambda tmp: _ensemble().make_members(_ring8(), [{"seed": 0}, {"seed": 1, "model.pack": 2}]),
    "ensemble members may differ only in seed and optim.g.lr",
  ),
  "ensemble_devices": Case(
    "`train.num_seeds = 3` with `parallel.num_devices = 2`",
    lambda tmp: _ensemble().train_ensemble(
      _ring8(**{"train.num_seeds": 3, "parallel.num_devices": 2}), os.path.join(tmp, "run")
    ),
    "an ensemble of 3 members does not divide over parallel.num_devices=2 devices",
  ),
  "unknown_augment": Case(
    "`augment.name = 'diffaug'`",
    _build(**{"augment.name": "diffaug"}),
    "unknown augment.name='diffaug'; valid choices: none, diffaugment, ada",
  ),
  "augment_points": Case(
    "`augment.name = 'diffaugment'` on ring8",
    lambda tmp: config_lib.resolve(_ring8(**{"augment.name": "diffaugment"})),
    "augments images; data.name='ring8' is 2-D points",
  ),
  "update_rule": Case(
    "`train.update_rule = 'adam'`",
    _build(**{"train.update_rule": "adam"}),
    "unknown train.update_rule='adam'; valid choices: alternating, simultaneous, extragradient",
  ),
  "unknown_dataset": Case(
    "`data.name = 'imagenet'` (`data.data_dir` holds one prepared folder, `cells`)",
    _on_prepared(**{"data.name": "imagenet"}),
    "unknown data.name='imagenet'; valid choices: celeb_a,",
  ),
  "folder_image_size": Case(
    "`data.image_size = 28` on a folder prepared at 32 px",
    _on_prepared(**{"data.image_size": 28}),
    "data.image_size=28 but dataset 'cells' is prepared at 32 px; set --config.data.image_size=32",
  ),
  "folder_channels": Case(
    "`data.channels = 1` on a folder prepared with 3 channels",
    _on_prepared(**{"data.channels": 1}),
    "data.channels=1 differs from the 3 channel(s) of dataset 'cells'; leave it 0",
  ),
  "folder_unlabelled_conditional": Case(
    "`model.conditional = True` on a folder prepared with `--labels none`",
    _on_prepared("none", **{"model.conditional": True}),
    "model.conditional=True needs a labelled dataset; data.name='cells' has no labels",
  ),
  "prepare_unknown_labels": Case(
    "`folder_datasets.prepare(Request(..., labels='colour'))` (the library; `jgan data prepare` refuses it as "
    "it parses)",
    _prepare_request(labels="colour"),
    "unknown --labels 'colour'; valid choices: auto, subfolders, dataset.json, none",
  ),
  "prepare_image_size": Case(
    "`folder_datasets.prepare(Request(..., image_size=0))` (the library)",
    _prepare_request(image_size=0),
    "--image_size 0 must be a side in px",
  ),
  "prepare_no_subfolders": Case(
    "`jgan data prepare PATH --labels subfolders` on a folder without sub-folders",
    _prepare_request(path=lambda tmp: _image_folder(tmp, classes=(), name="flat"), labels="subfolders"),
    "has no sub-folders of images (one per class)",
  ),
  "prepare_twice": Case(
    "`jgan data prepare PATH --name cells` when `cells` is prepared already",
    _prepared_twice,
    "dataset 'cells' is already prepared in <tmp>/tfds/cells/1.0.0",
  ),
  "prepare_bad_files": Case(
    "`jgan data prepare PATH` where one PNG is truncated and one .jpg is text",
    _prepare_request(path=_bad_files, labels="subfolders"),
    "2 of 6 image files cannot be read: a/cut.png (",
  ),
  "sample_bad_label": Case(
    "`jgan sample --labels 5` for a generator of 2 classes",
    lambda tmp: __import__("jgan.cli.sample", fromlist=["x"]).parse_labels("5", 2),
    "class ids must lie in 0..1",
  ),
  "eval_samples_size": Case(
    "`jgan eval --samples DIR --data cells` with 16 px images; `cells` has 32 px",
    _samples_of_another_size,
    "are 16x16 px with 3 channel(s); dataset 'cells' at data.image_size=32 has 32x32 px with 3",
  ),
  "dcgan_on_points": Case(
    "`data.name = 'ring8'` with DCGAN", _build(**{"data.name": "ring8"}), "model 'dcgan' needs an image dataset"
  ),
  "lr_schedule": Case(
    "`optim.lr_schedule = 'exponential'`",
    _build(**{"optim.lr_schedule": "exponential"}),
    "unknown optim.lr_schedule='exponential'; valid choices: constant, linear, cosine",
  ),
  "best_mode": Case(
    "`checkpoint.best_mode = 'median'`",
    _build(**{"checkpoint.best_mode": "median"}),
    "unknown checkpoint.best_mode='median'; valid choices: max, min",
  ),
  "checkpoint_interval": Case(
    "`checkpoint.every_steps = 3` with `train.steps_per_call = 2`",
    _build(**{"checkpoint.every_steps": 3, "train.steps_per_call": 2, "train.log_every": 2}),
    "checkpoint.every_steps=3 must be a multiple of train.steps_per_call=2",
  ),
  "batch_vs_devices": Case(
    "`train.batch_size = 12` on 8 devices",
    _train(lambda tmp: _smoke(**{"train.batch_size": 12, "parallel.num_devices": 0})),
    "train.batch_size=12 does not divide by the 8 devices",
  ),
  "too_many_devices": Case(
    "`parallel.num_devices = 16` (8 available)",
    _train(lambda tmp: _smoke(**{"parallel.num_devices": 16})),
    "parallel.num_devices=16 but 8 device(s) are available",
  ),
  "workdir_is_file": Case(
    "`--workdir` names an existing file", _train(lambda tmp: _smoke(), _file_workdir), "exists and is not a directory"
  ),
  "data_not_prepared": Case(
    "`data.name = 'cifar10'` with an empty `data.data_dir`",
    _train(
      lambda tmp: _smoke(
        **{
          "data.name": "cifar10",
          "data.image_size": 32,
          "parallel.num_devices": 1,
          "data.data_dir": _empty_dir(tmp),
        }
      )
    ),
    "dataset 'cifar10' (TFDS 'cifar10') is not prepared under '<tmp>/empty'; prepare it once with "
    "`jgan data prepare cifar10 --data_dir <tmp>/empty`",
  ),
  "data_dir_missing": Case(
    "`data.name = 'cifar10'` with a `data.data_dir` that does not exist",
    _train(
      lambda tmp: _smoke(
        **{
          "data.name": "cifar10",
          "data.image_size": 32,
          "parallel.num_devices": 1,
          "data.data_dir": os.path.join(tmp, "nowhere"),
        }
      )
    ),
    "data directory '<tmp>/nowhere' does not exist; create and fill it with `jgan data prepare cifar10",
  ),
  "workdir_in_use": Case(
    "a second run on a workdir in use (its `jgan.lock` held by a live run)",
    _workdir_in_use,
    "is in use by another jgan run: PID 4242 on host node7 (started 2026-12-01 10:00:00 +0000",
  ),
  "checkpoints_is_file": Case(
    "`<workdir>/checkpoints` is a file (the checkpoint directory cannot be written)",
    _checkpoints_is_file,
    "cannot write to <tmp>/run/checkpoints: File exists (EEXIST)",
  ),
  "changed_config": Case(
    "resume a workdir with `train.batch_size` changed",
    _changed_config_resume,
    "was saved with a different config; fields that change the result: train.batch_size: 256 -> 128",
  ),
  "no_checkpoint": Case(
    "`load_generator('<dir without checkpoints>')`", lambda tmp: resume.load_generator(tmp), "no checkpoint under"
  ),
}


def _message(name: str, tmp: str) -> str:
  """``ExceptionType: message`` of the case, with scratch and repository paths made stable."""
  os.makedirs(tmp, exist_ok=True)
  try:
    CASES[name].run(tmp)
  except Exception as e:  # noqa: BLE001 (each case raises its own type)
    msg = f"{type(e).__name__}: {e}"
  else:
    raise AssertionError(f"case {name!r} raised nothing")
  if CASES[name].one_line and "\n" in msg:
    msg = "NOT ONE LINE: " + msg
  msg = " ".join(ln.strip() for ln in msg.splitlines() if ln.strip())  # as launch.py prints it
  return msg.replace(os.path.realpath(tmp), "<tmp>").replace(tmp, "<tmp>").replace(ROOT, "<repo>")


@pytest.fixture(scope="module")
def messages(tmp_path_factory):
  return {name: _message(name, str(tmp_path_factory.mktemp(name))) for name in CASES}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_message(messages, name):
  msg = messages[name]
  assert CASES[name].expect in msg and not msg.startswith("NOT ONE LINE"), msg


def render(messages: dict[str, str], cli_messages: dict[str, str]) -> str:
  """docs/bad_inputs.md from the case messages: the config and library table (:data:`CASES`), then the
  command lines of every subcommand (:data:`tests.test_cli_args.CASES`)."""
  from tests import test_cli_args

  lines = [
    "# Bad inputs and the errors they give",
    "",
    "Generated by `python -m tests.test_config` from the cases in `tests/test_config.py` (configs and the",
    "library) and `tests/test_cli_args.py` (the command line of every subcommand); a test fails when this page",
    "is stale. Each input was tried for real; the command line (`jgan`, or `python launch.py`) prints the",
    "message as `error: MESSAGE` and exits with status 2, before anything is compiled. `<tmp>` stands for a",
    "scratch directory (holding a file `afile` and a directory `run`); multi-line library messages are shown",
    "as the command line prints them, joined into one line.",
    "",
    "## Configs and the library",
    "",
    "| # | input | error |",
    "|---|---|---|",
  ]
  for i, name in enumerate(CASES, 1):
    msg = messages[name].replace("|", "\\|")
    lines.append(f"| {i} | {CASES[name].what} | {msg} |")
  lines += ["", "## Command lines", "", "| # | command line | error |", "|---|---|---|"]
  for i, (name, case) in enumerate(test_cli_args.CASES.items(), len(CASES) + 1):
    cmd = "jgan " + " ".join(case.argv)
    lines.append(f"| {i} | `{cmd}` | {cli_messages[name].replace('|', chr(92) + '|')} |")
  return "\n".join(lines) + "\n"


def _cli_messages(tmp_root: str) -> dict[str, str]:
  from tests import test_cli_args

  return {name: test_cli_args.message(name, os.path.join(tmp_root, name)) for name in test_cli_args.CASES}


def test_doc_is_current(messages, tmp_path):
  with open(DOC) as f:
    want = render(messages, _cli_messages(str(tmp_path)))
    assert f.read() == want, "docs/bad_inputs.md is stale: run `python -m tests.test_config`"


def test_cli_prints_one_line_and_exits_2(tmp_path):
  r = subprocess.run(
    [sys.executable, "launch.py", "--config", "configs/smoke.py", "--workdir", str(tmp_path), "--config.train.stepz=5"],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert r.returncode == 2
  assert r.stderr.strip().splitlines()[-1].startswith("error: unknown config key 'train.stepz'")
  assert len([ln for ln in r.stderr.splitlines() if ln.strip() and "WARNING" not in ln]) == 1, r.stderr


if __name__ == "__main__":
  import tempfile

  with tempfile.TemporaryDirectory() as d:
    out = render({name: _message(name, os.path.join(d, name)) for name in CASES}, _cli_messages(d))
  with open(DOC, "w") as f:
    f.write(out)
  print(out)
