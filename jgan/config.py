"""Config resolution and validation, run before anything is compiled.

``resolve(config)`` returns a copy with every implicit default made explicit (the objective's parameters)
and raises ``ValueError`` with a one-line message naming the bad value and the valid choices for:
wrong types, unknown model / objective / dataset / optimiser names, unknown objective parameters,
out-of-range numbers, image sizes the model does not support and bad checkpoint settings.

``check_keys(config, reference)`` rejects keys the reference config (``configs/common.py``) does not
have. Command-line parsing is :mod:`jgan.cli.flags`.
"""

from __future__ import annotations

import ml_collections

from jgan import data as data_lib
from jgan import objectives as objectives_lib
from jgan import optim
from jgan import penalties as penalties_lib
from jgan.models import MODELS, dcgan


def _check(cond: bool, msg: str) -> None:
  if not cond:
    raise ValueError(msg)


def _positive(name: str, value, kind=(int, float)) -> None:
  _check(isinstance(value, kind) and not isinstance(value, bool) and value > 0,
         f"{name}={value!r} must be a positive {'integer' if kind is int else 'number'}")


def validate(c: ml_collections.ConfigDict) -> None:
  """Raises ValueError on the first invalid field of config ``c`` (see the module docstring)."""
  check_types(c)
  data_lib.check_dataset_name(c.data.name)
  _check(c.model.name in MODELS, f"unknown model {c.model.name!r}; valid choices: {', '.join(sorted(MODELS))}")
  objectives_lib.make_objective(**c.objective)  # checks the name and its parameters
  if c.penalty.name != "none":
    penalties_lib.make_penalty(c.penalty.name, **{k: v for k, v in c.penalty.items() if k not in ("name", "every")})
  _positive("penalty.every", c.penalty.every, int)
  _check(c.train.update_rule in optim.UPDATE_RULES,
         f"unknown train.update_rule={c.train.update_rule!r}; valid choices: {', '.join(optim.UPDATE_RULES)}")
  _check(c.train.unrolled_steps >= 0, f"train.unrolled_steps={c.train.unrolled_steps!r} must be >= 0")
  _positive("model.pack", c.model.pack, int)
  _check(c.train.batch_size % c.model.pack == 0,
         f"train.batch_size={c.train.batch_size} must be a multiple of model.pack={c.model.pack} (PacGAN groups)")
  for who in ("g", "d"):
    o = c.optim[who]
    _check(o.name in optim.OPTIMIZERS,
           f"unknown optimizer optim.{who}.name={o.name!r}; valid choices: {', '.join(sorted(optim.OPTIMIZERS))}")
    _positive(f"optim.{who}.lr", o.lr)
  _check(c.optim.lr_schedule in optim.LR_SCHEDULES, f"unknown optim.lr_schedule={c.optim.lr_schedule!r}; "
         f"valid choices: {', '.join(optim.LR_SCHEDULES)}")
  _check(0.0 <= c.optim.ema_decay < 1.0, f"optim.ema_decay={c.optim.ema_decay!r} must be in [0, 1)")
  _check(c.optim.d_clip >= 0.0, f"optim.d_clip={c.optim.d_clip!r} must be >= 0 (0 = no clipping)")
  for key in ("steps", "batch_size", "n_critic", "steps_per_call", "log_every"):
    _positive(f"train.{key}", c.train[key], int)
  _check(c.train.sample_every >= 0, f"train.sample_every={c.train.sample_every!r} must be >= 0")
  _positive("train.num_samples", c.train.num_samples, int)
  _positive("model.latent_dim", c.model.latent_dim, int)
  _check(c.train.steps % c.train.steps_per_call == 0,
         f"train.steps={c.train.steps} must be a multiple of train.steps_per_call={c.train.steps_per_call}")
  _check(c.train.log_every % c.train.steps_per_call == 0,
         f"train.log_every={c.train.log_every} must be a multiple of train.steps_per_call={c.train.steps_per_call}")
  is_image = c.data.name in data_lib.IMAGE_DATASETS
  if c.model.name == "dcgan":
    _check(is_image, f"model 'dcgan' needs an image dataset, got data.name={c.data.name!r}; "
                     f"use model.name='mlp' for 2-D mixtures")
    _check(c.data.image_size in dcgan.SUPPORTED_SIZES,
           f"data.image_size={c.data.image_size!r} is not supported by model 'dcgan'; valid choices: "
           f"{sorted(dcgan.SUPPORTED_SIZES)}")
    _check(c.model.d_norm in dcgan.NORMS,
           f"unknown model.d_norm={c.model.d_norm!r}; valid choices: {', '.join(dcgan.NORMS)}")
  if is_image:
    _positive("data.image_size", c.data.image_size, int)
  _check(c.data.worker_count >= 0, f"data.worker_count={c.data.worker_count!r} must be >= 0")
  _validate_run_settings(c)


def resolve(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A validated copy of ``c`` with the objective's default parameters filled in."""
  objectives_lib.check_objective_name(c.objective.name)
  r = ml_collections.ConfigDict(c.to_dict())
  params = objectives_lib.objective_params(c.objective.name)
  for k, v in params.items():  # a fresh ConfigDict is unlocked: new keys are allowed
    if k not in r.objective:
      r.objective[k] = v
  if c.penalty.name != "none":
    penalties_lib.check_penalty_name(c.penalty.name)
    for k, v in penalties_lib.penalty_params(c.penalty.name).items():
      if k not in r.penalty:
        r.penalty[k] = v
  validate(r)
  return r


# Expected types of the fields every run reads (a float field also accepts an int). Section-specific
# parameters (objective, penalty, optimiser extras, model extras) are checked by their factories.
_TYPES = {
    "seed": int,
    "data.name": str, "data.image_size": int, "data.split": str, "data.data_dir": str, "data.worker_count": int,
    "model.name": str, "model.latent_dim": int, "model.g_width": int, "model.d_width": int,
    "model.d_norm": str, "model.depth": int,
    "objective.name": str,
    "optim.g.name": str, "optim.g.lr": float, "optim.d.name": str, "optim.d.lr": float,
    "optim.d_clip": float, "optim.ema_decay": float, "optim.lr_schedule": str,
    "train.steps": int, "train.batch_size": int, "train.n_critic": int, "train.steps_per_call": int,
    "train.log_every": int, "train.sample_every": int, "train.num_samples": int, "train.progress": bool,
    "parallel.num_devices": int,
    "checkpoint.every_steps": int, "checkpoint.max_to_keep": int, "checkpoint.best_metric": str,
    "checkpoint.best_mode": str, "checkpoint.keep_best": int, "checkpoint.async_save": bool,
    "checkpoint.allow_config_change": bool,
}
BEST_MODES = ("max", "min")


def _get(c, dotted: str):
  for part in dotted.split("."):
    if not isinstance(c, (dict, ml_collections.ConfigDict)) or part not in c:
      raise ValueError(f"config has no field {dotted!r}; start from configs/common.py's get_config()")
    c = c[part]
  return c


def check_types(c: ml_collections.ConfigDict) -> None:
  """Raises ValueError if a field every run reads is missing or has the wrong type (bool is not int)."""
  for dotted, kind in _TYPES.items():
    v = _get(c, dotted)
    ok = isinstance(v, kind) and (kind is bool or not isinstance(v, bool))
    if kind is float:
      ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    _check(ok, f"{dotted}={v!r} has type {type(v).__name__}; expected {kind.__name__}")


def _validate_run_settings(c: ml_collections.ConfigDict) -> None:
  """Devices, seed and the checkpoint section."""
  _check(c.parallel.num_devices >= 0, f"parallel.num_devices={c.parallel.num_devices!r} must be >= 0 (0 = all)")
  _check(c.seed >= 0, f"seed={c.seed!r} must be >= 0")
  ck = c.checkpoint
  _check(ck.every_steps >= 0, f"checkpoint.every_steps={ck.every_steps!r} must be >= 0 (0 = only at the end "
                              f"and on SIGTERM/SIGINT)")
  _check(ck.every_steps % c.train.steps_per_call == 0,
         f"checkpoint.every_steps={ck.every_steps} must be a multiple of train.steps_per_call={c.train.steps_per_call}")
  _positive("checkpoint.max_to_keep", ck.max_to_keep, int)
  _check(ck.best_mode in BEST_MODES, f"unknown checkpoint.best_mode={ck.best_mode!r}; valid choices: "
                                     f"{', '.join(BEST_MODES)}")
  _check(ck.keep_best >= 0, f"checkpoint.keep_best={ck.keep_best!r} must be >= 0")


def walk(c, prefix=""):
  """Every ``(dotted key, value)`` of a (nested) config, sections included, depth first."""
  for k, v in c.items():
    yield f"{prefix}{k}", v
    if isinstance(v, (dict, ml_collections.ConfigDict)):
      yield from walk(v, f"{prefix}{k}.")


# Sections whose keys depend on a chosen name (objective or penalty parameters, optimiser fields).
OPEN_SECTIONS = ("objective", "penalty", "optim.g", "optim.d")


def check_keys(c: ml_collections.ConfigDict, reference: ml_collections.ConfigDict) -> None:
  """Raises ValueError for the first key of ``c`` that ``reference`` lacks (outside OPEN_SECTIONS).

  ``reference`` is the documented defaults (``configs/common.py``'s ``get_config()``); the message
  suggests the closest valid key and lists the section's keys.
  """
  ref = dict(walk(reference))
  for dotted, _ in walk(c):
    if dotted in ref or any(dotted.startswith(s + ".") for s in OPEN_SECTIONS):
      continue
    raise ValueError(unknown_key_message(dotted, ref))


def unknown_key_message(dotted: str, ref: dict, source: str = "") -> str:
  """One line naming the first unknown component of ``dotted``, the closest valid key and its siblings."""
  import difflib

  parts = dotted.split(".")
  i = next((i for i in range(len(parts)) if ".".join(parts[:i + 1]) not in ref), len(parts) - 1)
  section, bad = ".".join(parts[:i]), ".".join(parts[:i + 1])
  siblings = sorted(k.rpartition(".")[2] for k in ref if k.rpartition(".")[0] == section)
  near = difflib.get_close_matches(parts[i], siblings, n=1)
  hint = f"; did you mean {(section + '.' if section else '') + near[0]!r}?" if near else ";"
  where = f"in {section}" if section else "at the top level"
  return f"unknown config key {bad!r}{source}{hint} valid keys {where}: {', '.join(siblings)}"
