"""The pure train step: ``train_step(state, batch) -> (state, metrics)``, and its jitted form.

One call performs ``n_critic`` discriminator updates, one generator update and the EMA update.

* Randomness: ``key = fold_in(state.rng, state.step)`` split into named streams (:class:`StepKeys`:
  the noise, the penalties), so a resumed run draws exactly the numbers the uninterrupted run drew.
  Noise is drawn for the *global* batch, so 1 and N devices see the same ``z``.
* Real data: ``batch["x"]`` is ``[n_critic, B, ...]``: a fresh real batch for every critic update,
  as in WGAN's Algorithm 1. Objectives that train G on a batch of its own (``Objective.g_own_batch``:
  RpGAN as R3GAN trains it) get one more row, ``[n_critic + 1, B, ...]``: the last is G's real batch
  (with its labels, conditional), and G's noise is its own stream (:data:`G_NOISE_STREAM`).
* Critic updates ``1 .. n_critic - 1`` are plain D updates against the current G; the last one and the
  G update are combined by the update rule (:mod:`jgan.update_rules`) from the functions of a
  :class:`~jgan.update_rules.Round` built here.
* The G update reuses the ``z`` and generator forward pass of the last critic update (as PyTorch's DCGAN
  example does): ``jax.vjp`` keeps G's forward, and only the gradient of G's loss w.r.t. the fakes is
  pulled back. G's loss is a function of the fakes alone, also when it looks ahead through unrolled D
  updates (Metz et al. 2016), so this saves one G forward pass per step without changing the maths.
  With ``g_own_batch`` G runs twice per round instead: on the critic's ``z`` for D's fakes, and on its own
  ``z`` (and labels) with ``jax.vjp`` for its update.
* Schedules (:mod:`jgan.schedules`): ``components.penalty_scale(step)`` multiplies the penalty (R3GAN's
  gamma), ``components.ema_beta(step)`` is the EMA's decay (a half-life in images); the learning rates
  and Adam's beta2 are schedules inside the optimisers. All are functions of the state's counters.
* PacGAN packing (Lin et al. 2018, ``model.pack = m``): D scores groups of ``m`` samples at once.
* Augmentation of D's inputs (``components.augment``, :mod:`jgan.augment`: DiffAugment, ADA): every batch D
  sees, real or fake, in D's and G's losses, is augmented first (with its own key), so G is trained
  through the differentiable augmentation; the penalties see the same augmented batches (as in
  StyleGAN2-ADA, whose R1 is taken on the augmented reals); each batch's augmentation key is its own
  named stream (:data:`AUGMENT_STREAMS`). After each D update the augmentation's state
  (ADA's p) is updated from D's raw scores on the augmented real batch.
* Class-conditional runs (``components.num_classes > 0``): ``batch["label"]`` ``[n_critic, B]`` reaches D
  with its real batch, and each critic update's fakes are generated for *the same labels*, so D(x, y)
  sees real and fake batches with one class distribution (the data's), and the penalties, which call
  D on real, fake and interpolated batches, pair every row with one label.
* Models are NNX modules used functionally: ``nnx.merge(graphdef, params, stats, copy=True)`` inside
  the traced function, updated statistics read back with ``nnx.state(model, nnx.Not(nnx.Param))``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jgan import optim
from jgan.components import Components
from jgan.state import GANState, Player
from jgan.update_rules import DGrad, DOutputs, Generated, GGrad, Round

# The augmentation key of each batch D sees: fold_in(the update's penalty key, stream). The numbers are
# the ones every recorded run used (tests/golden.json), so they stay.
AUGMENT_STREAMS = {"real for D": 101, "fake for D": 102, "fake for G": 103, "real for G": 104}
# G's own noise when the objective trains G on a batch of its own: fold_in(the step's z key, this).
G_NOISE_STREAM = 1


class GBatch(NamedTuple):
  """G's own batch (``Objective.g_own_batch``): a real batch ``[B, ...]``, noise ``[B, latent_dim]`` and,
  conditional, labels int32 ``[B]`` (the real batch's; the fakes are drawn for them), else None."""

  real: jax.Array
  z: jax.Array
  labels: jax.Array | None


class StepKeys(NamedTuple):
  """The random streams of one step: ``z`` (the noise of every critic update, ``[n_critic, B,
  latent_dim]``) and ``penalty`` (split into one key per critic update: penalties and augmentation)."""

  z: jax.Array
  penalty: jax.Array


def step_keys(rng: jax.Array, step: jax.Array) -> StepKeys:
  """The streams of step ``step`` of the run whose train key is ``rng`` (``fold_in`` then split)."""
  z, penalty = jax.random.split(jax.random.fold_in(rng, step))
  return StepKeys(z, penalty)


class DLossAux(NamedTuple):
  """What D's loss returns besides its value: D's raw outputs, its new statistics, the penalty's value."""

  outputs: DOutputs
  stats: Any
  penalty: jax.Array


class Critic(NamedTuple):
  """What the critic updates carry: D, the objective's state and the augmentation's state."""

  d: Player
  obj_state: Any
  aug_state: Any


def _apply(graphdef, params, stats, x, labels=None, *, train: bool = True):
  """Runs a module functionally (``m(x)``, or ``m(x, labels)`` if conditional); returns (output, new
  non-param state)."""
  m = nnx.merge(graphdef, params, stats, copy=True)
  m.train() if train else m.eval()
  y = m(x) if labels is None else m(x, labels)
  return y, nnx.state(m, nnx.Not(nnx.Param))


def _call(net, x, labels):
  return net(x) if labels is None else net(x, labels)


def _mean_out(d_out) -> jax.Array:
  return jnp.mean(d_out["energy"] if isinstance(d_out, dict) else d_out)


def pack(x: jax.Array, m: int) -> jax.Array:
  """PacGAN packing: ``[B, ...]`` -> ``[B // m, ...]`` with ``m`` consecutive samples joined along the
  last axis (channels for images ``[B/m, H, W, m*C]``, coordinates for points ``[B/m, m*d]``)."""
  if m == 1:
    return x
  b = x.shape[0]
  y = x.reshape((b // m, m) + x.shape[1:])
  return jnp.moveaxis(y, 1, -2).reshape((b // m,) + x.shape[1:-1] + (m * x.shape[-1],))


def make_round(
  state: GANState,
  components: Components,
  real: jax.Array,
  z: jax.Array,
  obj_state: Any,
  key: jax.Array,
  constrain=lambda x: x,
  labels: jax.Array | None = None,
  aug_state: Any = (),
  g_batch: GBatch | None = None,
) -> Round:
  """The :class:`Round` of one critic update on ``real`` ``[B, ...]`` with noise ``z`` ``[B, latent_dim]``.

  ``obj_state`` is the objective's state at this update, ``key`` its penalty key, ``constrain`` the
  sharding constraint of per-example arrays, ``labels`` int32 ``[B]`` the real batch's classes (also
  the fakes' classes) in conditional runs, else None; ``aug_state`` the augmentation's state;
  ``g_batch`` G's own batch (None: G's update reuses the critic's fakes and real batch).
  """
  objective, pack_size = components.objective, components.pack

  def aug(x, stream: str):
    """D's view of the unpacked batch ``x``: augmented with its stream's key (or as is)."""
    if components.augment is None:
      return x
    return components.augment.apply(x, jax.random.fold_in(key, AUGMENT_STREAMS[stream]), aug_state)

  def generate(g_params) -> Generated:
    if g_batch is None:
      fake, vjp, stats = jax.vjp(
        lambda p: _apply(state.g_graphdef, p, state.g.stats, constrain(z), labels), g_params, has_aux=True
      )
      return Generated(fake, vjp, stats)
    fake, stats = _apply(state.g_graphdef, g_params, state.g.stats, constrain(z), labels)  # D's fakes
    g_fake, vjp, stats = jax.vjp(
      lambda p: _apply(state.g_graphdef, p, stats, constrain(g_batch.z), g_batch.labels), g_params, has_aux=True
    )
    return Generated(fake, vjp, stats, g_fake)

  def d_loss(p, d_stats, fake):
    """D's loss at params ``p`` on (unpacked) real and fake batches, with :class:`DLossAux`."""
    real_p, fake_p = pack(aug(real, "real for D"), pack_size), pack(aug(fake, "fake for D"), pack_size)
    d = nnx.merge(state.d_graphdef, p, d_stats, copy=True)
    d.train()
    d_real, d_fake = _call(d, real_p, labels), _call(d, fake_p, labels)
    loss, _ = objective.loss(d_real, d_fake, obj_state)
    d_fn = lambda x: _apply(state.d_graphdef, p, d_stats, x, labels)[0]
    k_objective, k_regulariser = jax.random.split(key)  # the objective's own penalty (WGAN-GP), then R1/R2/GP
    if objective.d_penalty is not None:
      loss = loss + objective.d_penalty(d_fn, real_p, fake_p, k_objective)
    pen = jnp.zeros((), jnp.float32)
    if components.penalty is not None:  # lazy regularisation (Karras et al. 2020): every k-th step, times k
      every = components.penalty_every
      pen = jax.lax.cond(
        state.step % every == 0,
        lambda: components.penalty(d_fn, real_p, fake_p, k_regulariser) * every,
        lambda: jnp.zeros((), jnp.float32),
      )
      if components.penalty_scale is not None:  # a scheduled weight (R3GAN's gamma)
        pen = pen * components.penalty_scale(state.step)
    return loss + pen, DLossAux(DOutputs(d_real, d_fake), nnx.state(d, nnx.Not(nnx.Param)), pen)

  def d_grad(d: Player, fake) -> DGrad:
    (loss, aux), grads = jax.value_and_grad(d_loss, has_aux=True)(d.params, d.stats, fake)
    metrics = {
      "d_loss": loss,
      "d_real": _mean_out(aux.outputs.real),
      "d_fake": _mean_out(aux.outputs.fake),
      "d_grad_norm": optax.tree.norm(grads),
    }
    if components.penalty is not None:
      metrics["penalty"] = aux.penalty
    return DGrad(grads, aux.stats, aux.outputs, metrics)

  def d_update(d: Player, grads, stats) -> Player:
    updates, opt = components.d_tx.update(grads, d.opt, d.params)
    params = optax.apply_updates(d.params, updates)
    return Player(optim.clip_weights(params, components.d_clip) if components.d_clip > 0 else params, stats, opt)

  def g_update(g: Player, grads, stats) -> Player:
    updates, opt = components.g_tx.update(grads, g.opt, g.params)
    return Player(optax.apply_updates(g.params, updates), stats, opt)

  def g_loss(fake, d: Player):
    """G's loss as a function of the fakes (D fixed, or unrolled ``unrolled_steps`` updates ahead)."""
    for _ in range(components.unrolled_steps):  # differentiable look-ahead of D (its statistics discarded)
      ahead = d_grad(d, fake)
      d = d_update(d, ahead.grads, ahead.stats)
    net = nnx.merge(state.d_graphdef, d.params, d.stats, copy=True)
    net.train()
    g_real, g_labels = (real, labels) if g_batch is None else (g_batch.real, g_batch.labels)
    d_fake = _call(net, pack(aug(fake, "fake for G"), pack_size), g_labels)
    # Only relativistic losses read D(real) in G's loss; others get zeros of the same structure.
    d_real = (
      _call(net, pack(aug(g_real, "real for G"), pack_size), g_labels)
      if objective.g_uses_real
      else jax.tree.map(jnp.zeros_like, d_fake)
    )
    return objective.loss(d_real, d_fake, obj_state)[1]

  def g_grad(gen: Generated, d: Player) -> GGrad:
    loss, d_fake = jax.value_and_grad(g_loss)(gen.fake if gen.g_fake is None else gen.g_fake, d)
    (grads,) = gen.vjp(d_fake)
    return GGrad(grads, loss)

  return Round(generate, d_grad, g_grad, d_update, g_update)


def _update_augment(components: Components, aug_state, d_real):
  """The augmentation's state after D's update (ADA's p from D's raw scores on the augmented reals)."""
  if components.augment is None:
    return aug_state, {}
  return components.augment.update_state(aug_state, d_real)


def _critic_updates(state, components, real, z, keys, labels, constrain) -> Critic:
  """Critic updates ``1 .. n_critic - 1`` (a ``lax.scan`` over the leading axis of ``real``, ``z``,
  ``keys``, ``labels``): D against fakes of the current G, no G gradient."""

  def critic(carry: Critic, xs):
    real, z, key, y = xs
    y = None if y is None else constrain(y)
    r = make_round(state, components, constrain(real), z, carry.obj_state, key, constrain, y, carry.aug_state)
    fake = jax.lax.stop_gradient(_apply(state.g_graphdef, state.g.params, state.g.stats, constrain(z), y)[0])
    dg = r.d_grad(carry.d, fake)
    obj_state = components.objective.update_state(carry.obj_state, *dg.outputs)[0]
    aug_state = _update_augment(components, carry.aug_state, dg.outputs.real)[0]
    return Critic(r.d_update(carry.d, dg.grads, dg.stats), obj_state, aug_state), None

  carry = Critic(state.d, state.obj_state, state.aug_state)
  return jax.lax.scan(critic, carry, (real, z, keys, labels))[0]


def train_step(
  state: GANState, batch: dict[str, jax.Array], *, components: Components, data_sharding: Any = None
) -> tuple[GANState, dict[str, jax.Array]]:
  """One GAN training step (pure; jit it with :func:`make_train_step`).

  Args:
    state: the train state.
    batch: ``{"x": float32 [n_critic, B, ...]}``: images ``[.., H, W, C]`` in [-1, 1] or points
      ``[.., 2]``; conditional runs also ``"label"``: int32 ``[n_critic, B]`` in ``[0, num_classes)``
      (ignored by unconditional runs). With ``Objective.g_own_batch`` (RpGAN) the leading axis is
      ``n_critic + 1``, the last row G's own real batch (and labels).
    components: the run's components (objective, optimisers, update rule, penalty, step settings).
    data_sharding: sharding of per-example arrays ``[B, ...]`` (batch axis over ``'data'``), or None.

  Returns:
    The new state and float32 scalar metrics: ``d_loss``, ``g_loss``, ``d_real``/``d_fake`` (mean raw D
    output on the last critic batch, before the D update), ``d_grad_norm``, ``g_grad_norm``,
    ``penalty`` (if any) and the objective's and augmentation's own metrics.
  """
  real, labels = batch["x"], (batch["label"] if components.num_classes else None)
  constrain = (lambda x: x) if data_sharding is None else (lambda x: jax.lax.with_sharding_constraint(x, data_sharding))
  own = components.objective.g_own_batch
  n_critic, b = real.shape[0] - int(own), real.shape[1]
  if n_critic < 1:
    raise ValueError(f"batch['x'] has {real.shape[0]} real batches; this objective needs n_critic + 1 >= 2")
  keys = step_keys(state.rng, state.step)
  z = jax.random.normal(keys.z, (n_critic, b, components.latent_dim), jnp.float32)
  penalty_keys = jax.random.split(keys.penalty, n_critic)
  g_batch = None
  if own:  # G's own real batch (the last row), labels and noise
    z_g = jax.random.normal(jax.random.fold_in(keys.z, G_NOISE_STREAM), (b, components.latent_dim), jnp.float32)
    g_batch = GBatch(constrain(real[-1]), z_g, None if labels is None else constrain(labels[-1]))
    real, labels = real[:-1], (None if labels is None else labels[:-1])

  critic = Critic(state.d, state.obj_state, state.aug_state)
  if n_critic > 1:
    earlier = None if labels is None else labels[:-1]
    critic = _critic_updates(state, components, real[:-1], z[:-1], penalty_keys[:-1], earlier, constrain)
  y = None if labels is None else constrain(labels[-1])
  r = make_round(
    state,
    components,
    constrain(real[-1]),
    z[-1],
    critic.obj_state,
    penalty_keys[-1],
    constrain,
    y,
    critic.aug_state,
    g_batch,
  )
  moved = components.update_rule.step(r, state.g, critic.d, state.rule_state)
  obj_state, obj_metrics = components.objective.update_state(critic.obj_state, *moved.output.d_outputs)
  aug_state, aug_metrics = _update_augment(components, critic.aug_state, moved.output.d_outputs.real)
  metrics = {
    **moved.output.d_metrics,
    **obj_metrics,
    **aug_metrics,
    "g_loss": moved.output.g_loss,
    "g_grad_norm": optax.tree.norm(moved.output.g_grads),
  }
  return dataclasses.replace(
    state,
    step=state.step + 1,
    g=moved.g,
    d=moved.d,
    rule_state=moved.rule_state,
    obj_state=obj_state,
    aug_state=aug_state,
    g_ema=_ema(state, moved.g.params, components),
  ), metrics


def _ema(state: GANState, params, components: Components):
  """G's new EMA after the step: the scheduled decay (``components.ema_beta``) or ``ema_decay`` warmed up."""
  if components.ema_beta is not None:
    return optim.ema_update_beta(state.g_ema, params, components.ema_beta(state.step))
  return optim.ema_update(state.g_ema, params, state.step, components.ema_decay)


def multi_step(state: GANState, batches, *, step_fn) -> tuple[GANState, dict[str, jax.Array]]:
  """``steps_per_call`` train steps fused in one ``lax.scan``: ``batches`` leaves have that leading axis.

  Returns the final state and metrics stacked to ``[steps_per_call]`` per name.
  """
  return jax.lax.scan(step_fn, state, batches)


def make_train_step(
  components: Components,
  steps_per_call: int = 1,
  state_sharding=None,
  batch_sharding=None,
  data_sharding=None,
  batch_fn=None,
):
  """:func:`train_step` with ``components`` bound, jitted with the state buffers donated.

  With ``steps_per_call > 1`` the returned function takes batches with a leading axis ``steps_per_call``
  and runs that many steps in one call (metrics come back as ``[steps_per_call]`` arrays).

  ``batch_fn``: the batch is made inside the jitted call, ``fn(state, *args)`` running
  ``batch_fn(*args)`` first (the on-device data path, :mod:`jgan.data.on_device`: ``args`` are the
  dataset's arrays and a cursor, replicated on the mesh), its result constrained to ``batch_sharding``.
  """
  step_fn = functools.partial(train_step, components=components, data_sharding=data_sharding)
  fn = functools.partial(multi_step, step_fn=step_fn) if steps_per_call > 1 else step_fn
  if batch_fn is not None:
    fn = functools.partial(_with_batch_fn, step=fn, batch_fn=batch_fn, batch_sharding=batch_sharding)
  shardings: dict[str, Any] = {}
  if state_sharding is not None:
    if batch_fn is not None:
      replicated = jax.sharding.NamedSharding(state_sharding.mesh, jax.sharding.PartitionSpec())
      ins: tuple = (state_sharding, replicated, replicated, replicated)
    else:
      ins = (state_sharding, batch_sharding)
    shardings = dict(in_shardings=ins, out_shardings=(state_sharding, state_sharding))
  return jax.jit(fn, donate_argnums=(0,), **shardings)


def _with_batch_fn(state, *args, step, batch_fn, batch_sharding):
  """``step(state, batch_fn(*args))``, the batch placed on ``batch_sharding`` (rows over ``'data'``)."""
  batch = batch_fn(*args)
  if batch_sharding is not None:
    batch = jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, batch_sharding), batch)
  return step(state, batch)
