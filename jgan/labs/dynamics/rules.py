"""Update rules of the dynamics lab: one step of a learning dynamic on a :class:`~.games.Game`.

An :class:`UpdateRule` (registry :data:`UPDATE_RULES`, or any optax optimiser by name through
:func:`make_update_rule`) is a pure step ``(params, rule_state) -> (params, rule_state)`` over
``params = (x [n_x], y [n_y])`` float32.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jgan.labs.dynamics.games import Game, Params, project, vector_field
from jgan.registry import Registry, check_call_params


class UpdateRule(NamedTuple):
  """One step of a learning dynamic on a :class:`Game`, as pure functions.

  Attributes:
    name: a label, e.g. ``"extragradient"`` or ``"adam:b1=0.5"``.
    init: ``(game, params) -> rule_state`` (``()`` for memoryless rules).
    step: ``(game, params, rule_state) -> (params, rule_state)``; ``params = (x [n_x], y [n_y])``.
    stationary: whether ``step`` is a fixed map of ``(params, rule_state)``, so that its Jacobian at
      the equilibrium decides local convergence. False for adaptive optimisers (Adam, RMSProp, ...):
      their step size depends on running second moments, which vanish at the equilibrium.
  """

  name: str
  init: Callable[[Game, Params], Any]
  step: Callable[[Game, Params, Any], tuple[Params, Any]]
  stationary: bool = True


def _no_state(game, params):
  del game, params
  return ()


def simultaneous(lr: float) -> UpdateRule:
  """Simultaneous gradient descent: ``z_{t+1} = z_t - lr v(z_t)``.

  On the bilinear game the step is ``[[1, -lr], [lr, 1]]``, eigenvalues ``1 +- i lr``, spectral radius
  ``sqrt(1 + lr^2) > 1``: it spirals outward for every ``lr > 0``.
  """

  def step(game, params, state):
    x, y = params
    gx, gy = vector_field(game, x, y)
    return (x - lr * gx, project(game, y - lr * gy)), state

  return UpdateRule(name="simultaneous", init=_no_state, step=step)


def alternating(lr: float, first: str = "x", y_steps: int = 1) -> UpdateRule:
  """Alternating gradient descent: one player steps, then the other sees its new parameters.

  With ``first="x"``: ``x' = x - lr v_x(x, y)``, then ``y_steps`` times ``y <- y - lr v_y(x', y)``. On
  the bilinear game (``y_steps=1``) the step is ``[[1, -lr], [lr, 1 - lr^2]]``: determinant 1, trace
  ``2 - lr^2``, so for ``lr < 2`` the eigenvalues are complex with modulus exactly 1 — a closed orbit.

  Args:
    lr: learning rate > 0.
    first: ``"x"`` or ``"y"``, the player that moves first (GAN practice updates D, here y, first).
    y_steps: number of y (discriminator / critic) steps per x step (WGAN's n_critic).
  """
  if first not in ("x", "y"):
    raise ValueError(f"alternating: first must be 'x' or 'y', got {first!r}")

  def x_step(game, x, y):
    return x - lr * vector_field(game, x, y)[0]

  def y_step(game, x, y):
    for _ in range(y_steps):
      y = project(game, y - lr * vector_field(game, x, y)[1])
    return y

  def step(game, params, state):
    x, y = params
    if first == "x":
      x = x_step(game, x, y)
      y = y_step(game, x, y)
    else:
      y = y_step(game, x, y)
      x = x_step(game, x, y)
    return (x, y), state

  return UpdateRule(name="alternating", init=_no_state, step=step)


def extragradient(lr: float) -> UpdateRule:
  """Extragradient (Korpelevich 1976): step with the gradient at a look-ahead point.

  ``z_half = z - lr v(z)``, ``z' = z - lr v(z_half)``. On the bilinear game ``v(z) = J z`` with
  ``J = [[0, 1], [-1, 0]]`` (``J^2 = -I``), so the step is ``I - lr J + lr^2 J^2 = (1 - lr^2) I - lr J``,
  eigenvalues ``(1 - lr^2) -+ i lr``, spectral radius ``sqrt(1 - lr^2 + lr^4) < 1`` for ``0 < lr < 1``.
  """

  def step(game, params, state):
    x, y = params
    gx, gy = vector_field(game, x, y)
    xh, yh = x - lr * gx, project(game, y - lr * gy)
    gx, gy = vector_field(game, xh, yh)
    return (x - lr * gx, project(game, y - lr * gy)), state

  return UpdateRule(name="extragradient", init=_no_state, step=step)


def optimistic(lr: float) -> UpdateRule:
  """Optimistic gradient descent (Daskalakis, Ilyas, Syrgkanis & Zeng 2018).

  ``z_{t+1} = z_t - 2 lr v(z_t) + lr v(z_{t-1})``: the rule state is the previous gradient
  ``v(z_{t-1})``, initialised to ``v(z_0)`` (so the first step is plain gradient descent). As a linear
  map on ``(z_t, v(z_{t-1}))`` — similar to the map on ``(z_t, z_{t-1})`` when ``v`` is invertible —
  its step operator is 4x4 on the bilinear game (spectral radius in :data:`BILINEAR_SPECTRAL_RADIUS`).
  """

  def init(game, params):
    return vector_field(game, *params)

  def step(game, params, prev):
    x, y = params
    gx, gy = vector_field(game, x, y)
    x = x - lr * (2 * gx - prev[0])
    y = project(game, y - lr * (2 * gy - prev[1]))
    return (x, y), (gx, gy)

  return UpdateRule(name="optimistic", init=init, step=step)


def consensus(lr: float, gamma: float = 1.0) -> UpdateRule:
  """Consensus optimisation (Mescheder, Nowozin & Geiger 2017, "The Numerics of GANs").

  Both players also descend ``L(z) = 1/2 ||v(z)||^2``: ``z' = z - lr (v(z) + gamma grad L(z))`` with
  ``grad L = (dv/dz)^T v``. On the bilinear game ``grad L = z``, so the step is
  ``(1 - lr gamma) I - lr J``, spectral radius ``sqrt((1 - lr gamma)^2 + lr^2)``.
  """

  def step(game, params, state):
    x, y = params

    def half_sq_norm(p):
      gx, gy = vector_field(game, *p)
      return 0.5 * (jnp.sum(gx**2) + jnp.sum(gy**2))

    gx, gy = vector_field(game, x, y)
    lx, ly = jax.grad(half_sq_norm)((x, y))
    return (x - lr * (gx + gamma * lx), project(game, y - lr * (gy + gamma * ly))), state

  return UpdateRule(name="consensus", init=_no_state, step=step)


# Optimisers whose step is a fixed (time-invariant) map of (params, optimiser state).
_STATIONARY_OPTAX = ("sgd",)


def optax_rule(lr: float, optimizer: str = "adam", alternating: bool = False, **kwargs) -> UpdateRule:
  """Any optax optimiser, one instance per player (as in GAN training), simultaneous or alternating.

  Each player runs ``getattr(optax, optimizer)(learning_rate=lr, **kwargs)`` on the gradient of its
  own loss. Simultaneous: both gradients at ``(x, y)``. Alternating: x steps first, then y with the
  gradient at ``(x', y)``.

  Args:
    lr: learning rate > 0.
    optimizer: the name of an optax optimiser taking ``learning_rate`` (adam, sgd, rmsprop, ...).
    alternating: alternate the players instead of moving them simultaneously.
    **kwargs: the optimiser's other arguments, e.g. ``b1=0.5`` or ``momentum=0.9``.
  """
  check_optax_name(optimizer)
  check_call_params("optax optimiser", optimizer, getattr(optax, optimizer), kwargs)
  tx = getattr(optax, optimizer)(learning_rate=lr, **kwargs)

  def init(game, params):
    del game
    return tx.init(params[0]), tx.init(params[1])

  def step(game, params, state):
    (x, y), (sx, sy) = params, state
    gx, gy = vector_field(game, x, y)
    ux, sx = tx.update(gx, sx, x)
    x = optax.apply_updates(x, ux)
    if alternating:
      gy = vector_field(game, x, y)[1]
    uy, sy = tx.update(gy, sy, y)
    y = project(game, optax.apply_updates(y, uy))
    return (x, y), (sx, sy)

  label = ("alt_" if alternating else "") + optimizer
  if kwargs:
    label += ":" + ":".join(f"{k}={v}" for k, v in sorted(kwargs.items()))
  return UpdateRule(name=label, init=init, step=step, stationary=optimizer in _STATIONARY_OPTAX)


UPDATE_RULES: Registry[Callable[..., UpdateRule]] = Registry(
  "method",
  {
    "simultaneous": simultaneous,
    "alternating": alternating,
    "extragradient": extragradient,
    "optimistic": optimistic,
    "consensus": consensus,
    "optax": optax_rule,
  },
  sort_choices=False,
)


def is_optax_optimizer(name: str) -> bool:
  """Whether ``optax.<name>`` is an optimiser factory taking ``learning_rate``."""
  fn = getattr(optax, name, None)
  if not callable(fn) or name.startswith("_"):
    return False
  try:
    return "learning_rate" in inspect.signature(fn).parameters
  except (TypeError, ValueError):
    return False


def check_optax_name(name: str) -> None:
  """Raises ValueError if ``name`` is not an optax optimiser taking ``learning_rate``."""
  if not is_optax_optimizer(name):
    raise ValueError(f"unknown optax optimiser {name!r}; valid choices include: adam, adamw, sgd, rmsprop, adagrad")


def method_choices() -> str:
  """The valid method names, for error messages."""
  rules = [k for k in UPDATE_RULES if k != "optax"]
  return ", ".join(rules) + ", or an optax optimiser (adam, sgd, rmsprop, ...) optionally prefixed 'alt_'"


def _parse_value(text: str) -> Any:
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def parse_method(spec: str) -> tuple[str, dict[str, Any]]:
  """Parses ``"name[:key=value[:key=value...]]"`` into ``(factory name, kwargs)`` without building it.

  ``name`` is a key of :data:`UPDATE_RULES` (``"optax"`` excluded) or an optax optimiser name, optionally
  prefixed ``alt_`` for alternating updates; e.g. ``"consensus:gamma=10"``, ``"alt_adam:b1=0.5"``,
  ``"sgd:momentum=0.9"``. Values are Python literals. Raises ValueError naming the bad part and the
  valid choices.
  """
  name, *items = spec.strip().split(":")
  kwargs: dict[str, Any] = {}
  for item in items:
    key, sep, value = item.partition("=")
    if not sep or not key:
      raise ValueError(f"bad method option {item!r} in {spec!r}; expected key=value")
    kwargs[key] = _parse_value(value)
  if name in UPDATE_RULES and name != "optax":
    UPDATE_RULES.check_params(name, {"lr": None, **kwargs})
    return name, kwargs
  base, alt = (name[4:], True) if name.startswith("alt_") else (name, False)
  if is_optax_optimizer(base):
    check_call_params("optax optimiser", base, getattr(optax, base), kwargs)
    return "optax", {"optimizer": base, "alternating": alt, **kwargs}
  raise ValueError(f"unknown method {name!r}; valid choices: {method_choices()}")


def make_update_rule(spec: str, lr: float) -> UpdateRule:
  """Builds the update rule described by ``spec`` (see :func:`parse_method`) with learning rate ``lr``."""
  name, kwargs = parse_method(spec)
  rule = UPDATE_RULES[name](lr=lr, **kwargs)
  return rule._replace(name=spec.strip())
