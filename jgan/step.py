"""The pure train step: ``train_step(state, batch) -> (state, metrics)``, and its jitted form.

One call performs ``n_critic`` discriminator updates, one generator update and the EMA update.

* Randomness: ``key = fold_in(state.rng, state.step)`` split by purpose, so a resumed run draws exactly
  the numbers the uninterrupted run drew. Noise is drawn for the *global* batch, so 1 and N devices
  see the same ``z``.
* Real data: ``batch["x"]`` is ``[n_critic, B, ...]``: a fresh real batch for every critic update,
  as in WGAN's Algorithm 1.
* Critic updates ``1 .. n_critic - 1`` are plain D updates against the current G; the last one and the
  G update are combined by the update rule (:mod:`jgan.update_rules`) from the functions of a
  :class:`~jgan.update_rules.Round` built here.
* The G update reuses the ``z`` and generator forward pass of the last critic update (as PyTorch's DCGAN
  example does): ``jax.vjp`` keeps G's forward, and only the gradient of G's loss w.r.t. the fakes is
  pulled back. G's loss is a function of the fakes alone, also when it looks ahead through unrolled D
  updates (Metz et al. 2016), so this saves one G forward pass per step without changing the maths.
* PacGAN packing (Lin et al. 2018, ``model.pack = m``): D scores groups of ``m`` samples at once.
* Augmentation of D's inputs (``parts.augment``, :mod:`jgan.augment`: DiffAugment, ADA): every batch D
  sees, real or fake, in D's and G's losses, is augmented first (with its own key), so G is trained
  through the differentiable augmentation; the penalties see the same augmented batches (as in
  StyleGAN2-ADA, whose R1 is taken on the augmented reals). After each D update the augmentation's state
  (ADA's p) is updated from D's raw scores on the augmented real batch.
* Class-conditional runs (``parts.num_classes > 0``): ``batch["label"]`` ``[n_critic, B]`` reaches D
  with its real batch, and each critic update's fakes are generated for *the same labels*, so D(x, y)
  sees real and fake batches with one class distribution (the data's), and the penalties, which call
  D on real, fake and interpolated batches, pair every row with one label.
* Models are NNX modules used functionally: ``nnx.merge(graphdef, params, stats, copy=True)`` inside
  the traced function, updated statistics read back with ``nnx.state(model, nnx.Not(nnx.Param))``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jgan import optim
from jgan.components import Components
from jgan.state import GANState, Player
from jgan.update_rules import DOutputs, Round


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
  parts: Components,
  real: jax.Array,
  z: jax.Array,
  obj_state: Any,
  key: jax.Array,
  constrain=lambda x: x,
  labels: jax.Array | None = None,
  aug_state: Any = (),
) -> Round:
  """The :class:`Round` of one critic update on ``real`` ``[B, ...]`` with noise ``z`` ``[B, latent_dim]``.

  ``obj_state`` is the objective's state at this update, ``key`` its penalty key, ``constrain`` the
  sharding constraint of per-example arrays, ``labels`` int32 ``[B]`` the real batch's classes (also
  the fakes' classes) in conditional runs, else None; ``aug_state`` the augmentation's state.
  """
  objective, m = parts.objective, parts.pack

  def aug(x, i: int):
    """D's view of the unpacked batch ``x``: augmented with key ``fold_in(key, 100 + i)`` (or as is)."""
    if parts.augment is None:
      return x
    return parts.augment.apply(x, jax.random.fold_in(key, 100 + i), aug_state)

  def generate(g_params):
    return jax.vjp(lambda p: _apply(state.g_graphdef, p, state.g.stats, constrain(z), labels), g_params, has_aux=True)

  def d_loss(p, d_stats, fake):
    """D's loss at params ``p`` on (unpacked) real and fake batches; aux: outputs, stats, penalty."""
    real_p, fake_p = pack(aug(real, 1), m), pack(aug(fake, 2), m)
    d = nnx.merge(state.d_graphdef, p, d_stats, copy=True)
    d.train()
    d_real, d_fake = _call(d, real_p, labels), _call(d, fake_p, labels)
    loss, _ = objective.loss(d_real, d_fake, obj_state)
    d_fn = lambda x: _apply(state.d_graphdef, p, d_stats, x, labels)[0]
    k_obj, k_reg = jax.random.split(key)
    if objective.d_penalty is not None:
      loss = loss + objective.d_penalty(d_fn, real_p, fake_p, k_obj)
    pen = jnp.zeros((), jnp.float32)
    if parts.penalty is not None:  # lazy regularisation (Karras et al. 2020): every k-th step, times k
      pen = jax.lax.cond(
        state.step % parts.penalty_every == 0,
        lambda: parts.penalty(d_fn, real_p, fake_p, k_reg) * parts.penalty_every,
        lambda: jnp.zeros((), jnp.float32),
      )
    return loss + pen, (DOutputs(d_real, d_fake), nnx.state(d, nnx.Not(nnx.Param)), pen)

  def d_grad(d: Player, fake):
    (loss, (out, stats, pen)), grads = jax.value_and_grad(d_loss, has_aux=True)(d.params, d.stats, fake)
    metrics = {
      "d_loss": loss,
      "d_real": _mean_out(out.real),
      "d_fake": _mean_out(out.fake),
      "d_grad_norm": optax.tree.norm(grads),
    }
    if parts.penalty is not None:
      metrics["penalty"] = pen
    return grads, stats, out, metrics

  def d_update(d: Player, grads, stats) -> Player:
    updates, opt = parts.d_tx.update(grads, d.opt, d.params)
    params = optax.apply_updates(d.params, updates)
    return Player(optim.clip_weights(params, parts.d_clip) if parts.d_clip > 0 else params, stats, opt)

  def g_update(g: Player, grads, stats) -> Player:
    updates, opt = parts.g_tx.update(grads, g.opt, g.params)
    return Player(optax.apply_updates(g.params, updates), stats, opt)

  def g_loss(fake, d: Player):
    """G's loss as a function of the fakes (D fixed, or unrolled ``unrolled_steps`` updates ahead)."""
    for _ in range(parts.unrolled_steps):  # differentiable look-ahead of D (its statistics discarded)
      grads, stats, _, _ = d_grad(d, fake)
      d = d_update(d, grads, stats)
    net = nnx.merge(state.d_graphdef, d.params, d.stats, copy=True)
    net.train()
    d_fake = _call(net, pack(aug(fake, 3), m), labels)
    # Only relativistic losses read D(real) in G's loss; others get zeros of the same structure.
    d_real = (
      _call(net, pack(aug(real, 4), m), labels) if objective.g_uses_real else jax.tree.map(jnp.zeros_like, d_fake)
    )
    return objective.loss(d_real, d_fake, obj_state)[1]

  def g_grad(vjp, fake, d: Player):
    loss, d_fake = jax.value_and_grad(g_loss)(fake, d)
    (grads,) = vjp(d_fake)
    return grads, loss

  return Round(generate, d_grad, g_grad, d_update, g_update)


def train_step(
  state: GANState, batch: dict[str, jax.Array], *, parts: Components, data_sharding: Any = None
) -> tuple[GANState, dict[str, jax.Array]]:
  """One GAN training step (pure; jit it with :func:`make_train_step`).

  Args:
    state: the train state.
    batch: ``{"x": float32 [n_critic, B, ...]}``: images ``[.., H, W, C]`` in [-1, 1] or points
      ``[.., 2]``; conditional runs also ``"label"``: int32 ``[n_critic, B]`` in ``[0, num_classes)``
      (ignored by unconditional runs).
    parts: the run's components (objective, optimisers, update rule, penalty, step settings).
    data_sharding: sharding of per-example arrays ``[B, ...]`` (batch axis over ``'data'``), or None.

  Returns:
    The new state and float32 scalar metrics: ``d_loss``, ``g_loss``, ``d_real``/``d_fake`` (mean raw D
    output on the last critic batch, before the D update), ``d_grad_norm``, ``g_grad_norm``,
    ``penalty`` (if any) and the objective's own metrics.
  """
  real_all = batch["x"]
  n_critic, b = real_all.shape[0], real_all.shape[1]
  labels_all = batch["label"] if parts.num_classes else None
  k_z, k_pen = jax.random.split(jax.random.fold_in(state.rng, state.step))
  z_all = jax.random.normal(k_z, (n_critic, b, parts.latent_dim), jnp.float32)
  pen_keys = jax.random.split(k_pen, n_critic)
  constrain = (lambda x: x) if data_sharding is None else (lambda x: jax.lax.with_sharding_constraint(x, data_sharding))
  update_objective = parts.objective.update_state

  def update_aug(aug_state, d_real):
    if parts.augment is None:
      return aug_state, {}
    return parts.augment.update_state(aug_state, d_real)

  def critic(carry, xs):  # critic updates 1 .. n_critic - 1: fakes of the current G, no G gradient
    d, obj_state, aug_state = carry
    real, z, key, y = xs
    y = None if y is None else constrain(y)
    r = make_round(state, parts, constrain(real), z, obj_state, key, constrain, y, aug_state)
    fake = jax.lax.stop_gradient(_apply(state.g_graphdef, state.g.params, state.g.stats, constrain(z), y)[0])
    grads, stats, out, _ = r.d_grad(d, fake)
    new_carry = (r.d_update(d, grads, stats), update_objective(obj_state, *out)[0], update_aug(aug_state, out.real)[0])
    return new_carry, None

  (d, obj_state, aug_state) = (state.d, state.obj_state, state.aug_state)
  if n_critic > 1:
    ys = None if labels_all is None else labels_all[:-1]
    (d, obj_state, aug_state), _ = jax.lax.scan(
      critic, (d, obj_state, aug_state), (real_all[:-1], z_all[:-1], pen_keys[:-1], ys)
    )
  y_last = None if labels_all is None else constrain(labels_all[-1])
  r = make_round(
    state, parts, constrain(real_all[-1]), z_all[-1], obj_state, pen_keys[-1], constrain, y_last, aug_state
  )
  g, d, rule_state, out = parts.update_rule.step(r, state.g, d, state.rule_state)
  obj_state, obj_metrics = update_objective(obj_state, *out.d_outputs)
  aug_state, aug_metrics = update_aug(aug_state, out.d_outputs.real)
  metrics = {
    **out.d_metrics,
    **obj_metrics,
    **aug_metrics,
    "g_loss": out.g_loss,
    "g_grad_norm": optax.tree.norm(out.g_grads),
  }
  return dataclasses.replace(
    state,
    step=state.step + 1,
    g=g,
    d=d,
    rule_state=rule_state,
    obj_state=obj_state,
    aug_state=aug_state,
    g_ema=optim.ema_update(state.g_ema, g.params, state.step, parts.ema_decay),
  ), metrics


def multi_step(state: GANState, batches, *, step_fn) -> tuple[GANState, dict[str, jax.Array]]:
  """``k`` train steps fused in one ``lax.scan``: ``batches`` leaves have a leading axis ``k``.

  Returns the final state and metrics stacked to ``[k]`` per name.
  """
  return jax.lax.scan(step_fn, state, batches)


def make_train_step(
  parts: Components, steps_per_call: int = 1, state_sharding=None, batch_sharding=None, data_sharding=None
):
  """:func:`train_step` with ``parts`` bound, jitted with the state buffers donated.

  With ``steps_per_call = k > 1`` the returned function takes batches with a leading axis ``k`` and runs
  ``k`` steps in one call (metrics come back as ``[k]`` arrays).
  """
  step_fn = functools.partial(train_step, parts=parts, data_sharding=data_sharding)
  fn = functools.partial(multi_step, step_fn=step_fn) if steps_per_call > 1 else step_fn
  shardings: dict[str, Any] = {}
  if state_sharding is not None:
    shardings = dict(in_shardings=(state_sharding, batch_sharding), out_shardings=(state_sharding, state_sharding))
  return jax.jit(fn, donate_argnums=(0,), **shardings)
