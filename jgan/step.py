"""The pure train step: ``train_step(state, batch) -> (state, metrics)``.

One call performs ``n_critic`` discriminator updates, one generator update and the EMA update.

* Randomness: ``key = fold_in(state.rng, state.step)`` split by purpose, so a resumed run draws exactly
  the numbers the uninterrupted run drew. Noise is drawn for the *global* batch, so 1 and N devices
  see the same ``z``.
* Real data: ``batch["image"]`` (or ``batch["x"]``) is ``[n_critic, B, ...]``: a fresh real batch for
  every critic update, as in WGAN's Algorithm 1.
* The G update reuses the ``z`` and generator forward pass of the last critic update (as PyTorch's DCGAN
  example does): ``jax.vjp`` keeps G's forward, and only the gradient of G's loss w.r.t. the fakes is
  pulled back. G's loss is a function of the fakes alone, also when it looks ahead through unrolled D
  updates (Metz et al. 2016), so this saves one G forward pass per step without changing the maths.
* Update rules (``train.update_rule``) for the last critic update and the G update: ``alternating`` (D
  first, then G against the new D: the usual GAN step), ``simultaneous`` (both from the same point),
  ``extragradient`` (Korpelevich 1976; Gidel et al. 2019: both players take a look-ahead step with
  their optimisers, then update the original point with the gradients found there) and ``optimistic``
  (simultaneous with gradients ``2 g_t - g_{t-1}``, set up in ``optim.make_optimizers``). Earlier critic
  updates (``n_critic > 1``) are plain D updates.
* PacGAN packing (Lin et al. 2018, ``model.pack = m``): D scores groups of ``m`` samples at once.
* Models are NNX modules used functionally: ``nnx.merge(graphdef, params, stats, copy=True)`` inside
  the traced function, updated statistics read back with ``nnx.state(model, nnx.Not(nnx.Param))``.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jgan import objectives as objectives_lib
from jgan import optim
from jgan import penalties as penalties_lib
from jgan.state import GANState


def _apply(graphdef, params, stats, x, *, train: bool = True):
  """Runs a module functionally; returns (output, new non-param state)."""
  m = nnx.merge(graphdef, params, stats, copy=True)
  m.train() if train else m.eval()
  y = m(x)
  return y, nnx.state(m, nnx.Not(nnx.Param))


def _real(batch) -> jax.Array:
  return batch["image"] if "image" in batch else batch["x"]


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


def train_step(
    state: GANState,
    batch: dict[str, jax.Array],
    *,
    objective: objectives_lib.Objective,
    g_tx: optax.GradientTransformation,
    d_tx: optax.GradientTransformation,
    latent_dim: int,
    ema_decay: float,
    d_clip: float = 0.0,
    penalty: Any = None,
    penalty_every: int = 1,
    update_rule: str = "alternating",
    unrolled_steps: int = 0,
    pack_size: int = 1,
    data_sharding: Any = None,
) -> tuple[GANState, dict[str, jax.Array]]:
  """One GAN training step (pure; jit it with :func:`make_train_step`).

  Args:
    state: the train state.
    batch: ``{"image": float32 [n_critic, B, H, W, C] in [-1, 1]}`` or ``{"x": float32 [n_critic, B, 2]}``
      (other keys such as ``"label"`` are ignored).
    objective, g_tx, d_tx: the objective and the two optax optimisers (from ``optim.make_optimizers``).
    latent_dim: size of z; z ~ N(0, I) float32 [B, latent_dim].
    ema_decay: decay of the EMA of G's parameters (with warm-up, see ``optim.ema_decay_at``).
    d_clip: if > 0, WGAN weight clipping of every D parameter to ``[-d_clip, d_clip]`` after each update.
    penalty: ``None`` or ``(d_fn, real, fake, rng) -> scalar`` from ``jgan.penalties`` (R1, R2, GP), added
      to D's loss on steps where ``step % penalty_every == 0``, scaled by ``penalty_every`` (lazy
      regularisation, Karras et al. 2020: the same expected penalty at a fraction of the cost).
    update_rule: ``alternating`` | ``simultaneous`` | ``extragradient`` | ``optimistic`` (module docstring).
    unrolled_steps: k > 0 makes G's loss look k D updates ahead, differentiating through them (Unrolled
      GAN, Metz et al. 2016); the real D takes its normal single update.
    pack_size: PacGAN's m; ``B`` must divide by it.
    data_sharding: sharding for per-example arrays ``[B, ...]`` (batch axis over ``'data'``), or None.

  Returns:
    The new state and float32 scalar metrics: ``d_loss``, ``g_loss``, ``d_real``/``d_fake`` (mean raw D
    output on the last critic batch, before the D update), ``d_grad_norm``, ``g_grad_norm``,
    ``penalty`` (if any) and the objective's own metrics.
  """
  real_all = _real(batch)
  n_critic, b = real_all.shape[0], real_all.shape[1]
  key = jax.random.fold_in(state.rng, state.step)
  k_z, k_pen = jax.random.split(key)
  z_all = jax.random.normal(k_z, (n_critic, b, latent_dim), jnp.float32)
  pen_keys = jax.random.split(k_pen, n_critic)

  def constrain(x):
    return x if data_sharding is None else jax.lax.with_sharding_constraint(x, data_sharding)

  def g_forward(g_params, z):
    return _apply(state.g_graphdef, g_params, state.g_stats, constrain(z))

  def d_loss_fn(p, d_stats, obj_state, real, fake, pen_key):
    """D's loss at params ``p`` on (unpacked) real and fake batches; aux: outputs, stats, penalty."""
    real, fake = pack(real, pack_size), pack(fake, pack_size)
    d = nnx.merge(state.d_graphdef, p, d_stats, copy=True)
    d.train()
    d_real, d_fake = d(real), d(fake)
    d_loss, _ = objective.loss(d_real, d_fake, obj_state)
    d_fn = lambda x: _apply(state.d_graphdef, p, d_stats, x)[0]
    k_obj, k_reg = jax.random.split(pen_key)
    if objective.d_penalty is not None:
      d_loss = d_loss + objective.d_penalty(d_fn, real, fake, k_obj)
    pen = jnp.zeros((), jnp.float32)
    if penalty is not None:
      pen = jax.lax.cond(state.step % penalty_every == 0,
                         lambda: penalty(d_fn, real, fake, k_reg) * penalty_every,
                         lambda: jnp.zeros((), jnp.float32))
    return d_loss + pen, (d_real, d_fake, nnx.state(d, nnx.Not(nnx.Param)), pen)

  def d_grads(d_params, d_stats, obj_state, real, fake, pen_key):
    (d_loss, (d_real, d_fake, new_stats, pen)), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
        d_params, d_stats, obj_state, real, fake, pen_key)
    metrics = {"d_loss": d_loss, "d_real": _mean_out(d_real), "d_fake": _mean_out(d_fake),
               "d_grad_norm": optax.tree.norm(grads)}
    if penalty is not None:
      metrics["penalty"] = pen
    return grads, new_stats, (d_real, d_fake), metrics

  def apply_d(d_params, d_opt, grads):
    updates, d_opt = d_tx.update(grads, d_opt, d_params)
    d_params = optax.apply_updates(d_params, updates)
    return (optim.clip_weights(d_params, d_clip) if d_clip > 0 else d_params), d_opt

  def apply_g(g_params, g_opt, grads):
    updates, g_opt = g_tx.update(grads, g_opt, g_params)
    return optax.apply_updates(g_params, updates), g_opt

  def g_loss_of_fake(fake, d_params, d_stats, d_opt, obj_state, real, pen_key):
    """G's loss as a function of the fakes (D fixed, or unrolled ``unrolled_steps`` updates ahead)."""
    for _ in range(unrolled_steps):  # differentiable look-ahead of D (its statistics/state discarded)
      grads, d_stats, _, _ = d_grads(d_params, d_stats, obj_state, real, fake, pen_key)
      d_params, d_opt = apply_d(d_params, d_opt, grads)
    d = nnx.merge(state.d_graphdef, d_params, d_stats, copy=True)
    d.train()
    d_fake = d(pack(fake, pack_size))
    # Only relativistic losses read D(real) in G's loss; others get zeros of the same structure.
    d_real = d(pack(real, pack_size)) if objective.g_uses_real else jax.tree.map(jnp.zeros_like, d_fake)
    return objective.loss(d_real, d_fake, obj_state)[1]

  def g_grads(g_vjp, fake, d_params, d_stats, d_opt, obj_state, real, pen_key):
    g_loss, dfake = jax.value_and_grad(g_loss_of_fake)(fake, d_params, d_stats, d_opt, obj_state, real,
                                                       pen_key)
    (grads,) = g_vjp(dfake)
    return grads, g_loss

  # Critic updates 1 .. n_critic-1 (only when n_critic > 1): fakes from the current G, no G gradient.
  def critic_body(carry, xs):
    d_params, d_stats, d_opt, obj_state = carry
    real, z, pen_key = xs
    fake = jax.lax.stop_gradient(g_forward(state.g_params, z)[0])
    grads, d_stats, (d_real, d_fake), _ = d_grads(d_params, d_stats, obj_state, constrain(real), fake, pen_key)
    d_params, d_opt = apply_d(d_params, d_opt, grads)
    obj_state, _ = objective.update_state(obj_state, d_real, d_fake)
    return (d_params, d_stats, d_opt, obj_state), None

  carry = (state.d_params, state.d_stats, state.d_opt, state.obj_state)
  if n_critic > 1:
    carry, _ = jax.lax.scan(critic_body, carry, (real_all[:-1], z_all[:-1], pen_keys[:-1]))
  d_params, d_stats, d_opt, obj_state = carry

  # The last critic update and the G update, combined by the update rule.
  real, z, pen_key = constrain(real_all[-1]), z_all[-1], pen_keys[-1]
  fake, g_vjp, g_stats = jax.vjp(lambda p: g_forward(p, z), state.g_params, has_aux=True)
  sg_fake = jax.lax.stop_gradient(fake)
  gd, new_d_stats, (d_real, d_fake), metrics = d_grads(d_params, d_stats, obj_state, real, sg_fake, pen_key)
  g_params, g_opt = state.g_params, state.g_opt
  if update_rule == "alternating":
    new_d, new_d_opt = apply_d(d_params, d_opt, gd)
    gg, g_loss = g_grads(g_vjp, fake, new_d, new_d_stats, new_d_opt, obj_state, real, pen_key)
  elif update_rule in ("simultaneous", "optimistic"):
    gg, g_loss = g_grads(g_vjp, fake, d_params, d_stats, d_opt, obj_state, real, pen_key)
    new_d, new_d_opt = apply_d(d_params, d_opt, gd)
  elif update_rule == "extragradient":
    gg, g_loss = g_grads(g_vjp, fake, d_params, d_stats, d_opt, obj_state, real, pen_key)
    look_d, _ = apply_d(d_params, d_opt, gd)  # look-ahead point; its optimiser states are discarded
    look_g, _ = apply_g(g_params, g_opt, gg)
    look_fake, look_vjp, g_stats = jax.vjp(lambda p: g_forward(p, z), look_g, has_aux=True)
    gd, new_d_stats, _, _ = d_grads(look_d, d_stats, obj_state, real, jax.lax.stop_gradient(look_fake), pen_key)
    gg, g_loss = g_grads(look_vjp, look_fake, look_d, d_stats, d_opt, obj_state, real, pen_key)
    new_d, new_d_opt = apply_d(d_params, d_opt, gd)
  else:
    raise ValueError(f"unknown update_rule {update_rule!r}; valid choices: {', '.join(optim.UPDATE_RULES)}")
  obj_state, obj_metrics = objective.update_state(obj_state, d_real, d_fake)
  g_params, g_opt = apply_g(g_params, g_opt, gg)
  g_ema = optim.ema_update(state.g_ema, g_params, state.step, ema_decay)

  metrics = {**metrics, **obj_metrics, "g_loss": g_loss, "g_grad_norm": optax.tree.norm(gg)}
  new_state = state.replace(
      step=state.step + 1, g_params=g_params, g_stats=g_stats, d_params=new_d, d_stats=new_d_stats,
      g_opt=g_opt, d_opt=new_d_opt, g_ema=g_ema, obj_state=obj_state)
  return new_state, metrics


def multi_step(state: GANState, batches, *, step_fn) -> tuple[GANState, dict[str, jax.Array]]:
  """``k`` train steps fused in one ``lax.scan``: ``batches`` leaves have a leading axis ``k``.

  Returns the final state and metrics stacked to ``[k]`` per name.
  """
  return jax.lax.scan(step_fn, state, batches)


def make_penalty(penalty_cfg):
  """The penalty function of ``config.penalty`` (``name`` plus its parameters), or None for ``"none"``."""
  params = {k: v for k, v in penalty_cfg.items() if k not in ("name", "every")}
  return None if penalty_cfg.name == "none" else penalties_lib.make_penalty(penalty_cfg.name, **params)


def make_train_step(config, state_sharding=None, batch_sharding=None, data_sharding=None):
  """Binds the config into :func:`train_step` and jits it with the state buffers donated.

  With ``config.train.steps_per_call = k > 1`` the returned function takes batches with a leading axis
  ``k`` and runs ``k`` steps in one call (metrics come back as ``[k]`` arrays).
  """
  objective = objectives_lib.make_objective(**config.objective)
  g_tx, d_tx = optim.make_optimizers(config)
  step_fn = functools.partial(
      train_step,
      objective=objective,
      g_tx=g_tx,
      d_tx=d_tx,
      latent_dim=config.model.latent_dim,
      ema_decay=config.optim.ema_decay,
      d_clip=config.optim.d_clip,
      penalty=make_penalty(config.penalty),
      penalty_every=config.penalty.every,
      update_rule=config.train.update_rule,
      unrolled_steps=config.train.unrolled_steps,
      pack_size=config.model.pack,
      data_sharding=data_sharding,
  )
  fn = step_fn
  if config.train.steps_per_call > 1:
    fn = functools.partial(multi_step, step_fn=step_fn)
  shardings = {}
  if state_sharding is not None:
    shardings = dict(in_shardings=(state_sharding, batch_sharding), out_shardings=(state_sharding, state_sharding))
  return jax.jit(fn, donate_argnums=(0,), **shardings)
