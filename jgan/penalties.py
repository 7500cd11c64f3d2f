"""Regularisers of the discriminator: one registry, one signature.

Every penalty is a pure function

    penalty(d_fn, real, fake, rng, **params) -> scalar float32 (>= 0)

* ``d_fn``: maps a batch of inputs ``[B, ...]`` to D's *raw* per-sample outputs ``[B]`` (logits /
  critic values) with D's parameters closed over, so that the caller's ``jax.grad`` with respect to
  those parameters differentiates through the penalty (double back-propagation).
* ``real`` / ``fake``: float ``[B, ...]`` batches D just scored. They are wrapped in
  ``stop_gradient``: a penalty regularises D only, never G.
* ``rng``: a PRNG key (used by the gradient penalty's interpolation; ignored by R1/R2).
* ``**params``: the penalty's weights, keyword-only with published defaults.

The train step adds the returned value to D's loss. Penalties registered here can go with *any*
objective; WGAN-GP's penalty is also wired into ``jgan.objectives.wgan_gp`` (its ``d_penalty``) and is
the same function.

A penalty's weight can follow a cosine schedule over the run (``penalty.final_scale``, R3GAN's gamma
schedule; :func:`jgan.schedules.scale_schedule`): the train step multiplies the returned value by it.

Lazy regularisation (Karras et al. 2020, StyleGAN2): when the train step evaluates a penalty only
every ``k`` D updates, *the caller* multiplies the returned value by ``k`` so that the expected
regularisation strength per step is unchanged. The functions here always return the per-step value.

Per-sample gradient penalties and BatchNorm: the functions below obtain per-sample input gradients
as ``grad(sum_i D(x_i))`` with respect to the batch. That equals the per-sample gradients only when
``D(x_i)`` depends on ``x_i`` alone. With BatchNorm in train mode D(x_i) depends on the whole batch, so
the penalty is ill-defined (and silently wrong). Critics regularised with GP / R1 / R2 must use no BN
(LayerNorm, spectral norm or nothing), as in Gulrajani et al. 2017.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jgan.registry import Registry

Array = jax.Array
DFn = Callable[[Array], Array]


def _input_gradients(d_fn: DFn, x: Array) -> Array:
  """``grad_x D(x)`` per sample, ``[B, ...]`` like ``x``: the gradient of ``sum_i D(x_i)``.

  Equals the per-sample gradients because ``D(x_i)`` depends on ``x_i`` only (no BatchNorm, see the
  module docstring).
  """
  return jax.grad(lambda y: jnp.sum(d_fn(y)))(x)


def _squared_norms(g: Array) -> Array:
  """Per-sample squared Euclidean norms of ``g`` ``[B, ...]`` over all non-batch axes -> ``[B]``."""
  return jnp.sum(jnp.square(g).reshape(g.shape[0], -1), axis=1)


def gradient_norms(d_fn: DFn, x: Array) -> Array:
  """Per-sample input-gradient norms ``||grad_x D(x_i)||_2``.

  Args:
    d_fn: ``[B, ...] -> [B]`` raw per-sample outputs.
    x: float ``[B, ...]`` inputs.

  Returns:
    float ``[B]``, values in ``[0, inf)``. The square root is guarded (``sqrt`` of 0 would give an
    infinite derivative): where the gradient is exactly 0 the norm is 0 and its derivative is 0.
  """
  sq = _squared_norms(_input_gradients(d_fn, x))
  positive = sq > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def gradient_penalty(
  d_fn: DFn, real: Array, fake: Array, rng: Array, *, weight: float = 10.0, one_sided: bool = False
) -> Array:
  """WGAN-GP's gradient penalty (Gulrajani et al. 2017, Algorithm 1).

  ``x_hat = eps * real + (1 - eps) * fake`` with ``eps ~ U[0, 1]`` drawn once per sample from ``rng``;
  then

      two-sided:  weight * E[(||grad D(x_hat)||_2 - 1)^2]
      one-sided:  weight * E[max(0, ||grad D(x_hat)||_2 - 1)^2]   (Petzka et al. 2018's "LP" form)

  Args:
    d_fn: ``[B, ...] -> [B]`` raw critic values (no BatchNorm, see the module docstring).
    real, fake: float ``[B, ...]`` batches of the same shape.
    rng: PRNG key for ``eps``.
    weight: lambda, 10 in the paper.
    one_sided: penalise only gradient norms above 1.

  Returns:
    scalar float32 in ``[0, inf)``; 0 exactly when every interpolate has gradient norm 1 (or <= 1 when
    one-sided).
  """
  real = jax.lax.stop_gradient(real)
  fake = jax.lax.stop_gradient(fake)
  if real.shape != fake.shape:
    raise ValueError(f"gradient_penalty needs real and fake of one shape, got {real.shape} and {fake.shape}")
  b = real.shape[0]
  eps = jax.random.uniform(rng, (b,), dtype=real.dtype)
  eps = eps.reshape((b,) + (1,) * (real.ndim - 1))  # same rank as real: no implicit rank promotion
  x_hat = eps * real + (1.0 - eps) * fake
  excess = gradient_norms(d_fn, x_hat) - 1.0
  if one_sided:
    excess = jax.nn.relu(excess)
  return (weight * jnp.mean(jnp.square(excess))).astype(jnp.float32)


def r1(d_fn: DFn, real: Array, fake: Array, rng: Array, *, gamma: float = 10.0) -> Array:
  """R1 (Mescheder, Geiger, Nowozin 2018, eq. 9): ``gamma/2 * E_real[||grad_x D(x)||^2]``.

  Penalises D's input gradient on the data, which makes the GAN game locally convergent near
  equilibrium. ``fake`` and ``rng`` are ignored.

  Args:
    d_fn: ``[B, ...] -> [B]`` raw D outputs (logits; no BatchNorm).
    real: float ``[B, ...]``.
    gamma: the weight; 10 is the paper's default for its image experiments.

  Returns:
    scalar float32 in ``[0, inf)``; 0 for a D that is constant in x, ``gamma/2 * ||w||^2`` for
    ``D(x) = <w, x> + c``.
  """
  del fake, rng
  real = jax.lax.stop_gradient(real)
  return (0.5 * gamma * jnp.mean(_squared_norms(_input_gradients(d_fn, real)))).astype(jnp.float32)


def r2(d_fn: DFn, real: Array, fake: Array, rng: Array, *, gamma: float = 10.0) -> Array:
  """R2 (Mescheder et al. 2018, eq. 10): ``gamma/2 * E_fake[||grad_x D(x)||^2]``, R1 on generated samples.

  ``real`` and ``rng`` are ignored; shapes, range and the linear-D value as in :func:`r1`.
  """
  del real, rng
  fake = jax.lax.stop_gradient(fake)
  return (0.5 * gamma * jnp.mean(_squared_norms(_input_gradients(d_fn, fake)))).astype(jnp.float32)


def r1_r2(d_fn: DFn, real: Array, fake: Array, rng: Array, *, gamma: float = 0.05) -> Array:
  """R1 + R2 (R3GAN, Huang et al. 2024): ``gamma/2 * (E_real[||grad_x D(x)||^2] + E_fake[||grad_x D(x)||^2])``.

  Both zero-centred penalties at once, as R3GAN's reference computes them every step
  (brownvc/R3GAN ``R3GAN/Trainer.py``: ``(Gamma / 2) * (R1Penalty + R2Penalty)``); with RpGAN this is the
  paper's well-posed loss. ``rng`` is ignored. The default gamma is the paper's CIFAR-10 start value
  (0.05, cosine-scheduled to 0.005 there: ``penalty.final_scale = 0.1``).

  Returns:
    scalar float32 in ``[0, inf)``: ``r1(...) + r2(...)`` with the same gamma; ``gamma * ||w||^2`` for a
    linear ``D(x) = <w, x> + c``.
  """
  del rng
  real, fake = jax.lax.stop_gradient(real), jax.lax.stop_gradient(fake)
  sq_real = jnp.mean(_squared_norms(_input_gradients(d_fn, real)))
  sq_fake = jnp.mean(_squared_norms(_input_gradients(d_fn, fake)))
  return (0.5 * gamma * (sq_real + sq_fake)).astype(jnp.float32)


PENALTIES: Registry[Callable[..., Array]] = Registry(
  "penalty",
  {
    "gradient_penalty": gradient_penalty,
    "r1": r1,
    "r2": r2,
    "r1_r2": r1_r2,
  },
  keyword_only=True,
)  # a penalty's parameters are its keyword-only weights
# Keys of the config section ``penalty`` that the train step reads (not the penalty's own parameters): the
# name, lazy regularisation's ``every`` and the weight schedule's ``final_scale`` (jgan.schedules).
STEP_FIELDS = ("name", "every", "final_scale")
register = PENALTIES.register  # register(name, fn): fn(d_fn, real, fake, rng, *, weights...) -> scalar
check_penalty_name = PENALTIES.check
penalty_params = PENALTIES.defaults  # penalty_params(name) -> {weight: published default}


def make_penalty(name: str, **params) -> Callable[[DFn, Array, Array, Array], Array]:
  """``(d_fn, real, fake, rng) -> scalar``: penalty ``name`` with ``params`` bound.

  Unknown names or parameter names raise a ValueError listing the valid ones.
  """
  PENALTIES.check_params(name, params)
  return functools.partial(PENALTIES[name], **params)
