"""The parts of one run, built once from its config: ``build(config, data_shape) -> Components``.

:func:`build` is the one place a config becomes objects: the objective, the penalty, the two
optimisers and the update rule (each from its registry, which refuses a bad name or parameter with the
valid choices), then G and D (:data:`jgan.models.MODELS`) with their initial variables. The same
``Components`` go to :func:`jgan.state.create_state`, to the abstract checkpoint target
(:func:`jgan.checkpoint.abstract_state`) and to the train step (:func:`jgan.step.make_train_step`), so
what is checkpointed, restored and stepped cannot disagree.

With ``abstract=True`` the models are built under ``nnx.eval_shape``: no initialisation is computed and
the variables are ``jax.ShapeDtypeStruct`` (for restoring a checkpoint).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import optax
from flax import nnx

from jgan import augment as augment_lib
from jgan import objectives as objectives_lib
from jgan import optim, rng, schedules
from jgan import penalties as penalties_lib
from jgan.models import make_models
from jgan.objectives import lecam
from jgan.update_rules import UPDATE_RULES, UpdateRule


class Model(NamedTuple):
  """One network split for functional use: static ``graphdef``, ``params`` (nnx.Param) and ``stats``
  (every other variable), the latter two as ``nnx.State`` of arrays (or ShapeDtypeStructs)."""

  graphdef: Any
  params: Any
  stats: Any


class Components(NamedTuple):
  """Everything a run's state and step are made of (see the module docstring).

  ``penalty`` is None or ``(d_fn, real, fake, rng) -> scalar`` (jgan.penalties), applied every
  ``penalty_every`` D updates' steps, scaled by that; the other fields are the config values the step
  reads: ``latent_dim``, ``ema_decay``, ``d_clip`` (WGAN weight clipping, 0 = off), ``unrolled_steps``
  (Unrolled GAN's k), ``pack`` (PacGAN's m), ``num_classes`` (0: unconditional) and ``augment``
  (:mod:`jgan.augment`, None: D sees its inputs as they are). ``penalty_scale`` (None: constant) maps
  the step to the penalty weight's multiplier, ``ema_beta`` (None: ``ema_decay`` with its warm-up) to
  the EMA's per-step decay (:mod:`jgan.schedules`, R3GAN's gamma and EMA half-life schedules).
  """

  g: Model
  d: Model
  objective: objectives_lib.Objective
  penalty: Callable[..., jax.Array] | None
  penalty_every: int
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation
  update_rule: UpdateRule
  latent_dim: int
  ema_decay: float
  d_clip: float
  unrolled_steps: int
  pack: int
  num_classes: int = 0  # > 0: class-conditional G(z, y) and D(x, y) (jgan.models.conditional)
  augment: augment_lib.Augment | None = None  # augmentation of D's inputs (None: none)
  penalty_scale: Callable[[jax.Array], jax.Array] | None = None  # step -> multiplier of the penalty
  ema_beta: Callable[[jax.Array], jax.Array] | None = None  # step -> EMA decay (None: ema_decay, warmed up)

  def real_batches(self, n_critic: int) -> int:
    """Real batches one train step reads (``batch["x"]``'s leading axis): one per critic update, plus
    one for G when the objective trains G on a batch of its own (``Objective.g_own_batch``: RpGAN)."""
    return n_critic + int(self.objective.g_own_batch)


def init_rngs(seed: int) -> nnx.Rngs:
  """The ``nnx.Rngs`` the models are initialised from: G's and D's keys split from ``run_keys(seed).init``."""
  k_g, k_d = jax.random.split(rng.run_keys(seed).init)
  return nnx.Rngs(params=k_g, default=k_d)


def check_penalty_norm(c, objective_penalty: bool, penalty: bool) -> None:
  """Refuses a gradient penalty on a BatchNorm critic, naming the recipe that fixes it.

  Gradient penalties (WGAN-GP, R1, R2) take per-sample input gradients of D; with BatchNorm in D,
  ``D(x_i)`` depends on the whole batch, so the penalty is not the one the paper defines (and trains
  differently). Gulrajani et al. 2017 replace BatchNorm by LayerNorm in the critic.
  """
  if c.model.get("d_norm") != "batch" or not (objective_penalty or penalty):
    return
  if objective_penalty:
    raise ValueError(
      f"objective.name={c.objective.name!r} adds a per-sample gradient penalty, which is ill-defined "
      f"with a BatchNorm critic (model.d_norm='batch': D(x_i) depends on the whole batch); use the "
      f"paper's recipe, `--config CONFIG.py:{c.objective.name}` (jgan.recipes.set_objective: LayerNorm "
      f"critic, n_critic 5, Adam (0.5, 0.9)), or set --config.model.d_norm=layer"
    )
  raise ValueError(
    f"penalty.name={c.penalty.name!r} takes per-sample input gradients of D, which are ill-defined with "
    f"a BatchNorm critic (model.d_norm='batch'); set --config.model.d_norm=none (or layer)"
  )


def _split(module: nnx.Module) -> Model:
  graphdef, params, stats = nnx.split(module, nnx.Param, ...)  # type: ignore[misc]  # 3 parts for 2 filters
  return Model(graphdef, params, stats)


def build(config, data_shape: tuple[int, ...], *, abstract: bool = False) -> Components:
  """The run's components for a resolved ``config`` (:func:`jgan.config.resolve`) and one sample's shape.

  Args:
    config: a resolved config.
    data_shape: one sample's shape, ``(S, S, C)`` or ``(2,)`` (:func:`jgan.data.sample_shape`).
    abstract: build the models under ``nnx.eval_shape`` (variables as ShapeDtypeStructs).

  Raises:
    ValueError: an unknown objective / penalty / optimiser / schedule / update rule / model name, a
      parameter the component does not take, or a data shape the model does not support; before
      anything is compiled.
  """
  c = config
  objective = objectives_lib.make_objective(**c.objective)
  if c.lecam.weight > 0:  # LeCam regularisation around the objective (its anchors join the objective state)
    objective = lecam.with_lecam(objective, c.lecam.weight, c.lecam.decay)
  penalty = None
  if c.penalty.name != "none":
    penalty = penalties_lib.make_penalty(
      c.penalty.name, **{k: v for k, v in c.penalty.items() if k not in penalties_lib.STEP_FIELDS}
    )
  check_penalty_norm(c, objective.d_penalty is not None, penalty is not None)
  aug_cfg = c.get("augment", {"name": "none"})
  augment = None
  if aug_cfg["name"] != "none":
    augment = augment_lib.make_augment(aug_cfg["name"], **{k: v for k, v in aug_cfg.items() if k != "name"})
  g_tx, d_tx = optim.make_optimizers(c)
  UPDATE_RULES.check(c.train.update_rule, field="train.update_rule")
  make = lambda: make_models(c.model, data_shape, init_rngs(c.seed), objective.d_output)
  g, d = nnx.eval_shape(make) if abstract else make()
  return Components(
    g=_split(g),
    d=_split(d),
    objective=objective,
    penalty=penalty,
    penalty_every=c.penalty.every,
    g_tx=g_tx,
    d_tx=d_tx,
    update_rule=UPDATE_RULES[c.train.update_rule],
    latent_dim=c.model.latent_dim,
    ema_decay=c.optim.ema_decay,
    d_clip=c.optim.d_clip,
    unrolled_steps=c.train.unrolled_steps,
    pack=c.model.pack,
    num_classes=c.model.num_classes if c.model.conditional else 0,
    augment=augment,
    **_schedules(c, penalty is not None),
  )


def _schedules(c, has_penalty: bool) -> dict[str, Any]:
  """The step-dependent settings of config ``c`` (:mod:`jgan.schedules`, cosines over ``optim.schedule_kimg``):
  ``penalty_scale`` from ``penalty.final_scale`` (!= 1; ValueError without a penalty) and ``ema_beta``
  from ``optim.ema_half_life_kimg`` (> 0)."""
  out: dict[str, Any] = {}
  span, batch = schedules.span_images(c), c.train.batch_size
  if c.penalty.final_scale != 1.0:
    if not has_penalty:
      raise ValueError(
        f"penalty.final_scale={c.penalty.final_scale!r} schedules a penalty's weight; penalty.name is 'none'"
      )
    out["penalty_scale"] = schedules.scale_schedule(float(c.penalty.final_scale), span, batch)
  if c.optim.ema_half_life_kimg > 0:
    out["ema_beta"] = schedules.ema_beta_schedule(float(c.optim.ema_half_life_kimg), span, batch)
  return out
