"""Config resolution and validation, run before anything is compiled.

``resolve(config)`` returns a copy with every implicit default made explicit (the objective's parameters)
and raises ``ValueError`` with a one-line message naming the bad value and the valid choices for:
unknown model / objective / dataset / optimiser names, unknown objective parameters, out-of-range
numbers, and image sizes the model does not support.
"""

from __future__ import annotations

import ml_collections

from jgan import data as data_lib
from jgan import objectives as objectives_lib
from jgan import optim
from jgan.models import MODELS, dcgan


def _check(cond: bool, msg: str) -> None:
  if not cond:
    raise ValueError(msg)


def _positive(name: str, value, kind=(int, float)) -> None:
  _check(isinstance(value, kind) and not isinstance(value, bool) and value > 0,
         f"{name}={value!r} must be a positive {'integer' if kind is int else 'number'}")


def validate(c: ml_collections.ConfigDict) -> None:
  """Raises ValueError on the first invalid field of config ``c`` (see the module docstring)."""
  data_lib.check_dataset_name(c.data.name)
  _check(c.model.name in MODELS, f"unknown model {c.model.name!r}; valid choices: {', '.join(sorted(MODELS))}")
  objectives_lib.make_objective(**c.objective)  # checks the name and its parameters
  for who in ("g", "d"):
    o = c.optim[who]
    _check(o.name in optim.OPTIMIZERS,
           f"unknown optimizer optim.{who}.name={o.name!r}; valid choices: {', '.join(sorted(optim.OPTIMIZERS))}")
    _positive(f"optim.{who}.lr", o.lr)
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


def resolve(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A validated copy of ``c`` with the objective's default parameters filled in."""
  objectives_lib.check_objective_name(c.objective.name)
  r = ml_collections.ConfigDict(c.to_dict())
  params = objectives_lib.objective_params(c.objective.name)
  for k, v in params.items():  # a fresh ConfigDict is unlocked: new keys are allowed
    if k not in r.objective:
      r.objective[k] = v
  validate(r)
  return r
