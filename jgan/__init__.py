"""jgan: a JAX/Flax framework for training and studying GANs.

Importing jgan first applies XLA:CPU work-arounds (see ``jgan.cpu_safety``), so import it before any
JAX computation runs. Everything else is imported on first use, so ``import jgan`` stays cheap::

    import jax
    import jgan

    config = jgan.presets.dcgan_mnist5k()                   # or jgan.config.defaults(), or a configs/ file
    config.train.steps = 500
    state = jgan.train_and_evaluate(config, "runs/lib")     # the whole experiment
    images = jgan.sample(state, jax.random.key(0), 16)      # EMA generator: [16, 28, 28, 1] in (-1, 1)

The pieces: ``jgan.build(config, data_shape)`` (the run's :class:`~jgan.components.Components`),
``jgan.create_state``, ``jgan.train_step`` / ``jgan.make_train_step`` (the pure, jitted step), the
registries ``OBJECTIVES``, ``PENALTIES``, ``MODELS``, ``METRICS``, ``UPDATE_RULES``, ``PRESETS`` (each
with ``register`` for user components), ``jgan.load_state`` / ``jgan.load_generator`` (checkpoints),
the subpackages ``jgan.objectives``, ``jgan.models``, ``jgan.metrics``, ``jgan.data`` and the labs
(``jgan.labs.dynamics``, ``jgan.labs.latent``, ...).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from jgan.cpu_safety import apply_cpu_workarounds as _apply_cpu_workarounds

_apply_cpu_workarounds()

__version__ = "0.1.0"

# Public names -> (module, attribute), imported on first access (PEP 562).
_NAMES = {
  "train_and_evaluate": ("jgan.train", "train_and_evaluate"),
  "build": ("jgan.components", "build"),
  "Components": ("jgan.components", "Components"),
  "GANState": ("jgan.state", "GANState"),
  "Player": ("jgan.state", "Player"),
  "create_state": ("jgan.state", "create_state"),
  "sample": ("jgan.state", "sample"),
  "generate": ("jgan.state", "generate"),
  "train_step": ("jgan.step", "train_step"),
  "make_train_step": ("jgan.step", "make_train_step"),
  "load_state": ("jgan.resume", "load_state"),
  "load_generator": ("jgan.resume", "load_generator"),
  "defaults": ("jgan.config", "defaults"),
  "resolve": ("jgan.config", "resolve"),
  "Registry": ("jgan.registry", "Registry"),
  "OBJECTIVES": ("jgan.objectives", "OBJECTIVES"),
  "PENALTIES": ("jgan.penalties", "PENALTIES"),
  "MODELS": ("jgan.models", "MODELS"),
  "METRICS": ("jgan.metrics", "METRICS"),
  "UPDATE_RULES": ("jgan.update_rules", "UPDATE_RULES"),
  "PRESETS": ("jgan.presets", "PRESETS"),
}
_SUBMODULES = (
  "checkpoint",
  "classifier_training",
  "cli",
  "components",
  "config",
  "data",
  "evaluation",
  "labs",
  "metrics",
  "models",
  "multihost",
  "objectives",
  "optim",
  "penalties",
  "plots",
  "presets",
  "recipes",
  "registry",
  "run_info",
  "sharding",
  "state",
  "step",
  "train",
  "update_rules",
  "workdir",
  "writers",
)
__all__ = sorted(_NAMES) + list(_SUBMODULES) + ["__version__"]


def __getattr__(name: str) -> Any:
  if name in _NAMES:
    module, attr = _NAMES[name]
    value = getattr(importlib.import_module(module), attr)
  elif name in _SUBMODULES:
    value = importlib.import_module(f"jgan.{name}")
  else:
    raise AttributeError(f"module 'jgan' has no attribute {name!r}")
  globals()[name] = value  # later accesses skip this function
  return value


def __dir__() -> list[str]:
  return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
  from jgan import (  # noqa: F401
    checkpoint,
    classifier_training,
    cli,
    components,
    config,
    data,
    evaluation,
    labs,
    metrics,
    models,
    multihost,
    objectives,
    optim,
    penalties,
    plots,
    presets,
    recipes,
    registry,
    run_info,
    sharding,
    state,
    step,
    train,
    update_rules,
    writers,
  )
  from jgan.components import Components, build  # noqa: F401
  from jgan.config import defaults, resolve  # noqa: F401
  from jgan.metrics import METRICS  # noqa: F401
  from jgan.models import MODELS  # noqa: F401
  from jgan.objectives import OBJECTIVES  # noqa: F401
  from jgan.penalties import PENALTIES  # noqa: F401
  from jgan.presets import PRESETS  # noqa: F401
  from jgan.registry import Registry  # noqa: F401
  from jgan.resume import load_generator, load_state  # noqa: F401
  from jgan.state import GANState, Player, create_state, generate, sample  # noqa: F401
  from jgan.step import make_train_step, train_step  # noqa: F401
  from jgan.train import train_and_evaluate  # noqa: F401
  from jgan.update_rules import UPDATE_RULES  # noqa: F401
