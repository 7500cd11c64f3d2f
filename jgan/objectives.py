"""Adversarial objectives: one registry, one interface.

Every objective is built by a small factory ``OBJECTIVES[name](**params) -> Objective`` (optax style:
the factory's keyword arguments are the objective's parameters, its defaults are the published ones).
An :class:`Objective` holds pure functions over D's *raw* outputs:

* ``loss(d_real, d_fake, obj_state) -> (d_loss, g_loss)``: scalar float32 losses, both to be
  *minimised* (D by the discriminator's update, G by the generator's). ``d_real`` / ``d_fake`` are D's
  outputs on a real / generated batch: float32 ``[B]`` raw scores (logits, critic values or f-GAN's
  pre-activation ``V(x)``) for ``d_output == "logit"``, or for ``d_output == "energy"`` a dict with
  ``"energy"`` ``[B]`` (>= 0, e.g. an autoencoder's reconstruction error) and ``"code"`` ``[B, k]``.
* ``init_state() -> obj_state``: the objective's own state, carried in the train state (``()`` for
  stateless objectives; BEGAN's ``k_t`` for example).
* ``update_state(obj_state, d_real, d_fake) -> (obj_state, metrics)``: called once per D update with the
  outputs that D update saw; returns the new state and scalar metrics to log (e.g. BEGAN's M_global).
* ``g_uses_real``: whether ``g_loss`` depends on ``d_real`` (relativistic losses), so the G update has to
  run D on the real batch as well.
* ``d_penalty``: ``None`` or a function ``(d_fn, real, fake, rng) -> scalar`` that the train step adds to
  ``d_loss`` (WGAN-GP's gradient penalty is part of that objective). ``d_fn`` maps a batch of inputs
  ``[B, ...]`` to D's per-sample raw outputs ``[B]``; ``real`` / ``fake`` are the batches D just scored.
  Penalties that can go with *any* objective (R1, R2, ...) live in ``jgan.penalties.PENALTIES``.

f-GAN objectives additionally expose their output activation ``g_f`` and conjugate ``f*`` through
:data:`F_DIVERGENCES` (added with the f-GAN family).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


class Objective(NamedTuple):
  """A GAN objective as pure functions (see the module docstring for shapes and meaning)."""

  loss: Callable[[Any, Any, Any], tuple[Array, Array]]
  init_state: Callable[[], Any] = lambda: ()
  update_state: Callable[[Any, Any, Any], tuple[Any, dict]] = lambda s, r, f: (s, {})
  d_output: str = "logit"
  g_uses_real: bool = False
  d_penalty: Callable[..., Array] | None = None


def minimax() -> Objective:
  """The original (saturating) GAN of Goodfellow et al. 2014.

  With ``D(x) = sigmoid(logit)``: ``d_loss = -E[log D(x)] - E[log(1 - D(G(z)))]`` and
  ``g_loss = E[log(1 - D(G(z)))]`` (G minimises what D maximises). Computed from logits with
  ``log_sigmoid`` so large logits do not overflow. Losses are in ``[0, inf)`` / ``(-inf, 0]``.
  """

  def loss(d_real, d_fake, obj_state):
    del obj_state
    d_loss = -jnp.mean(jax.nn.log_sigmoid(d_real)) - jnp.mean(jax.nn.log_sigmoid(-d_fake))
    g_loss = jnp.mean(jax.nn.log_sigmoid(-d_fake))
    return d_loss, g_loss

  return Objective(loss=loss)


def non_saturating() -> Objective:
  """The non-saturating GAN (Goodfellow et al. 2014, Sec. 3): G maximises ``log D(G(z))``.

  ``d_loss`` is the minimax one; ``g_loss = -E[log D(G(z))] = E[softplus(-logit_fake)]`` in ``[0, inf)``,
  whose gradient does not vanish when D confidently rejects the samples early in training.
  """

  def loss(d_real, d_fake, obj_state):
    del obj_state
    d_loss = -jnp.mean(jax.nn.log_sigmoid(d_real)) - jnp.mean(jax.nn.log_sigmoid(-d_fake))
    g_loss = -jnp.mean(jax.nn.log_sigmoid(d_fake))
    return d_loss, g_loss

  return Objective(loss=loss)


OBJECTIVES: dict[str, Callable[..., Objective]] = {
    "minimax": minimax,
    "non_saturating": non_saturating,
}


def objective_params(name: str) -> dict[str, Any]:
  """The parameters of objective ``name`` with their default values (from the factory's signature)."""
  check_objective_name(name)
  sig = inspect.signature(OBJECTIVES[name])
  return {k: p.default for k, p in sig.parameters.items()}


def check_objective_name(name: str) -> None:
  """Raises ValueError naming ``name`` and the registered objectives if it is not one of them."""
  if name not in OBJECTIVES:
    raise ValueError(f"unknown objective {name!r}; valid choices: {', '.join(sorted(OBJECTIVES))}")


def make_objective(name: str, **params) -> Objective:
  """Builds objective ``name`` with ``params``; unknown parameter names raise a ValueError listing the valid ones."""
  valid = objective_params(name)
  unknown = sorted(set(params) - set(valid))
  if unknown:
    raise ValueError(
        f"objective {name!r} got unknown parameter(s) {unknown}; valid parameters: {sorted(valid) or 'none'}"
    )
  return OBJECTIVES[name](**params)
