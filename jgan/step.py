"""The pure train step: ``train_step(state, batch) -> (state, metrics)``.

One call performs ``n_critic`` discriminator updates, one generator update and the EMA update.

* Randomness: ``key = fold_in(state.rng, state.step)`` split by purpose, so a resumed run draws exactly
  the numbers the uninterrupted run drew. Noise is drawn for the *global* batch, so 1 and N devices
  see the same ``z``.
* Real data: ``batch["image"]`` (or ``batch["x"]``) is ``[n_critic, B, ...]``: a fresh real batch for
  every critic update, as in WGAN's Algorithm 1.
* The G update reuses the ``z`` and generator forward pass of the last critic update (as PyTorch's DCGAN
  example does): ``jax.vjp`` keeps G's forward, and only the new D's gradient w.r.t. the fakes is
  pulled back. This saves one G forward pass per step without changing the maths.
* Models are NNX modules used functionally: ``nnx.merge(graphdef, params, stats, copy=True)`` inside
  the traced function, updated BatchNorm stats read back with ``nnx.state(model, nnx.BatchStat)``.
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
    data_sharding: Any = None,
) -> tuple[GANState, dict[str, jax.Array]]:
  """One GAN training step (pure; jit it with :func:`make_train_step`).

  Args:
    state: the train state.
    batch: ``{"image": float32 [n_critic, B, H, W, C] in [-1, 1]}`` or ``{"x": float32 [n_critic, B, 2]}``
      (other keys such as ``"label"`` are ignored).
    objective, g_tx, d_tx: the objective and the two optax optimisers.
    latent_dim: size of z; z ~ N(0, I) float32 [B, latent_dim].
    ema_decay: decay of the EMA of G's parameters (with warm-up, see ``optim.ema_decay_at``).
    d_clip: if > 0, WGAN weight clipping of every D parameter to ``[-d_clip, d_clip]`` after each update.
    penalty: ``None`` or ``(d_fn, real, fake, rng) -> scalar`` from ``jgan.penalties`` (R1, R2, GP), added
      to D's loss on steps where ``step % penalty_every == 0``, scaled by ``penalty_every`` (lazy
      regularisation, Karras et al. 2020: the same expected penalty at a fraction of the cost).
    data_sharding: sharding for per-example arrays ``[B, ...]`` (batch axis over ``'data'``), or None.

  Returns:
    The new state and float32 scalar metrics: ``d_loss``, ``g_loss``, ``d_real``/``d_fake`` (mean raw D
    output on the last critic batch, before the D update), ``d_grad_norm``, ``g_grad_norm`` and the
    objective's own metrics.
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

  def d_update(d_params, d_stats, d_opt, obj_state, real, fake, pen_key):
    def loss_fn(p):
      d = nnx.merge(state.d_graphdef, p, d_stats, copy=True)
      d.train()
      d_real, d_fake = d(real), d(fake)
      d_loss, _ = objective.loss(d_real, d_fake, obj_state)
      d_fn = lambda x: _apply(state.d_graphdef, p, d_stats, x)[0]
      k_obj, k_pen = jax.random.split(pen_key)
      if objective.d_penalty is not None:
        d_loss = d_loss + objective.d_penalty(d_fn, real, fake, k_obj)
      pen = jnp.zeros((), jnp.float32)
      if penalty is not None:
        pen = jax.lax.cond(state.step % penalty_every == 0,
                           lambda: penalty(d_fn, real, fake, k_pen) * penalty_every,
                           lambda: jnp.zeros((), jnp.float32))
      return d_loss + pen, (d_real, d_fake, nnx.state(d, nnx.Not(nnx.Param)), pen)

    (d_loss, (d_real, d_fake, new_stats, pen)), grads = jax.value_and_grad(loss_fn, has_aux=True)(d_params)
    updates, d_opt = d_tx.update(grads, d_opt, d_params)
    d_params = optax.apply_updates(d_params, updates)
    if d_clip > 0:
      d_params = optim.clip_weights(d_params, d_clip)
    obj_state, obj_metrics = objective.update_state(obj_state, d_real, d_fake)
    metrics = {"d_loss": d_loss, "d_real": _mean_out(d_real), "d_fake": _mean_out(d_fake),
               "d_grad_norm": optax.tree.norm(grads), **obj_metrics}
    if penalty is not None:
      metrics["penalty"] = pen
    return d_params, new_stats, d_opt, obj_state, metrics

  # Critic updates 1 .. n_critic-1 (only when n_critic > 1): fakes from the current G, no G gradient.
  def critic_body(carry, xs):
    d_params, d_stats, d_opt, obj_state = carry
    real, z, pen_key = xs
    fake, _ = g_forward(state.g_params, z)
    d_params, d_stats, d_opt, obj_state, _ = d_update(
        d_params, d_stats, d_opt, obj_state, constrain(real), jax.lax.stop_gradient(fake), pen_key)
    return (d_params, d_stats, d_opt, obj_state), None

  carry = (state.d_params, state.d_stats, state.d_opt, state.obj_state)
  if n_critic > 1:
    carry, _ = jax.lax.scan(critic_body, carry, (real_all[:-1], z_all[:-1], pen_keys[:-1]))
  d_params, d_stats, d_opt, obj_state = carry

  # Last critic update; keep G's forward pass (vjp) for the G update.
  real, z = constrain(real_all[-1]), z_all[-1]
  fake, g_vjp, g_stats = jax.vjp(lambda p: g_forward(p, z), state.g_params, has_aux=True)
  d_params, d_stats, d_opt, obj_state, metrics = d_update(
      d_params, d_stats, d_opt, obj_state, real, jax.lax.stop_gradient(fake), pen_keys[-1])

  # G update against the updated D.
  def g_loss_of_fake(f):
    d = nnx.merge(state.d_graphdef, d_params, d_stats, copy=True)
    d.train()
    d_fake = d(f)
    # Only relativistic losses read D(real) in G's loss; others get zeros of the same structure.
    d_real = d(real) if objective.g_uses_real else jax.tree.map(jnp.zeros_like, d_fake)
    return objective.loss(d_real, d_fake, obj_state)[1]

  g_loss, dfake = jax.value_and_grad(g_loss_of_fake)(fake)
  (g_grads,) = g_vjp(dfake)
  updates, g_opt = g_tx.update(g_grads, state.g_opt, state.g_params)
  g_params = optax.apply_updates(state.g_params, updates)
  g_ema = optim.ema_update(state.g_ema, g_params, state.step, ema_decay)

  metrics = {**metrics, "g_loss": g_loss, "g_grad_norm": optax.tree.norm(g_grads)}
  new_state = state.replace(
      step=state.step + 1, g_params=g_params, g_stats=g_stats, d_params=d_params, d_stats=d_stats,
      g_opt=g_opt, d_opt=d_opt, g_ema=g_ema, obj_state=obj_state)
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
  step_fn = functools.partial(
      train_step,
      objective=objective,
      g_tx=optim.make_optimizer(config.optim.g),
      d_tx=optim.make_optimizer(config.optim.d),
      latent_dim=config.model.latent_dim,
      ema_decay=config.optim.ema_decay,
      d_clip=config.optim.d_clip,
      penalty=make_penalty(config.penalty),
      penalty_every=config.penalty.every,
      data_sharding=data_sharding,
  )
  fn = step_fn
  if config.train.steps_per_call > 1:
    fn = functools.partial(multi_step, step_fn=step_fn)
  shardings = {}
  if state_sharding is not None:
    shardings = dict(in_shardings=(state_sharding, batch_sharding), out_shardings=(state_sharding, state_sharding))
  return jax.jit(fn, donate_argnums=(0,), **shardings)
