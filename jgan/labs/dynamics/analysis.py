"""Analysis of the dynamics lab: trajectories, step Jacobians, spectral radii and closed forms.

:func:`trajectory` runs thousands of steps inside one ``jax.lax.scan``; :func:`step_jacobian` and
:func:`spectral_radius` linearise one step at the equilibrium (``jax.jacfwd``): a spectral radius
``< 1`` means local convergence at a linear rate, ``> 1`` divergence, ``= 1`` (for a normal operator) a
bounded orbit. :data:`BILINEAR_SPECTRAL_RADIUS` holds the closed forms on the bilinear game (derived
in ``docs/dynamics.md``), which the tests check against autodiff.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jgan.labs.dynamics.games import Array, Game, Params, split, vector_field
from jgan.labs.dynamics.rules import UPDATE_RULES, UpdateRule, parse_method


@functools.partial(jax.jit, static_argnames=("game", "rule", "steps"))
def trajectory(game: Game, rule: UpdateRule, start: Array, steps: int) -> Array:
  """Runs ``steps`` updates of ``rule`` on ``game`` from ``start`` inside one ``lax.scan``.

  Args:
    game: the game (static: one compilation per game / rule / steps).
    rule: the update rule (static).
    start: float32 ``[n_x + n_y]``, the joint starting point ``z_0 = (x_0, y_0)``.
    steps: T, the number of updates.

  Returns:
    The iterates ``z_0 .. z_T``, float32 ``[T + 1, n_x + n_y]`` (diverging runs may reach inf/NaN).
  """
  start = jnp.asarray(start, jnp.float32)
  params = split(game, start)
  state = rule.init(game, params)

  def body(carry, _):
    params, state = rule.step(game, *carry)
    return (params, state), jnp.concatenate(params)

  _, zs = jax.lax.scan(body, (params, state), None, length=steps)
  return jnp.concatenate([start[None], zs], axis=0)


def distance_to_equilibrium(game: Game, zs: jax.typing.ArrayLike) -> Array:
  """Euclidean distance ``||z_t - z*||`` of iterates ``zs`` ``[T + 1, n]``: ``[T + 1]`` in zs's dtype, >= 0.

  Scaled by the largest coordinate before squaring: in float32 the squares of differences below ~1e-19
  underflow (and XLA:CPU flushes denormals), so a plain norm read exactly 0 for distances of 1e-20
  that the iterates themselves represent fine. ``m * ||d / m||`` keeps every such distance to float32
  relative precision (tested against float64).
  """
  d = jnp.asarray(zs) - game.equilibrium_vector()[None]
  scale = jnp.max(jnp.abs(d), axis=-1, keepdims=True)
  safe = jnp.where(scale > 0, scale, 1.0)
  return scale[..., 0] * jnp.linalg.norm(d / safe, axis=-1)


def _step_jacobian(game: Game, rule: UpdateRule, z: Array) -> Array:
  """Traceable core of :func:`step_jacobian`: float32 ``[m, m]`` at the joint point ``z``."""
  params = split(game, z)
  full = (params, rule.init(game, params))
  leaves, treedef = jax.tree.flatten(full)
  is_float = [jnp.issubdtype(jnp.asarray(l).dtype, jnp.inexact) for l in leaves]
  shapes = [jnp.shape(l) for l, f in zip(leaves, is_float) if f]
  sizes = [math.prod(s) for s in shapes]
  flat0 = jnp.concatenate([jnp.ravel(l) for l, f in zip(leaves, is_float) if f])

  def unflatten(flat):
    parts = jnp.split(flat, np.cumsum(sizes)[:-1])
    it = iter(p.reshape(s) for p, s in zip(parts, shapes))
    return jax.tree.unflatten(treedef, [next(it) if f else l for l, f in zip(leaves, is_float)])

  def step_flat(flat):
    out_leaves = jax.tree.leaves(rule.step(game, *unflatten(flat)))
    return jnp.concatenate([jnp.ravel(l) for l, f in zip(out_leaves, is_float) if f])

  return jax.jacfwd(step_flat)(flat0)


def step_jacobian(game: Game, rule: UpdateRule, at: Array | None = None) -> np.ndarray:
  """The Jacobian of one update step as a map on the joint state, by ``jax.jacfwd`` (jit-compiled).

  The state is ``(x, y)`` plus the rule's floating-point state (e.g. optimistic GD's previous
  gradient, SGD's momentum), flattened; non-float leaves are held fixed. The rule state is
  ``rule.init`` at the evaluation point (at the equilibrium: zero gradients / momenta).

  Args:
    game: the game.
    rule: the update rule.
    at: float32 ``[n_x + n_y]``, the linearisation point; default the equilibrium.

  Returns:
    float64 ``[m, m]`` (computed in float32) with ``m = n_x + n_y + (float state size)``: 2x2 for
    memoryless rules on the games here, 4x4 for optimistic GD and SGD with momentum.
  """
  z = game.equilibrium_vector() if at is None else jnp.asarray(at, jnp.float32)
  return np.asarray(jax.jit(functools.partial(_step_jacobian, game, rule))(z), np.float64)


def step_jacobians(game: Game, spec: str, lrs: Any, at: Array | None = None) -> np.ndarray:
  """:func:`step_jacobian` of method ``spec`` for many learning rates in one compilation.

  The learning rate is traced and vmapped, so a sweep costs one compilation instead of one per rate.

  Args:
    game: the game.
    spec: a method spec (see :func:`parse_method`).
    lrs: float ``[L]`` learning rates.
    at: float32 ``[n_x + n_y]``; default the equilibrium.

  Returns:
    float64 ``[L, m, m]``.
  """
  name, kwargs = parse_method(spec)
  z = game.equilibrium_vector() if at is None else jnp.asarray(at, jnp.float32)

  def jac(lr):
    return _step_jacobian(game, UPDATE_RULES[name](lr=lr, **kwargs), z)

  return np.asarray(jax.jit(jax.vmap(jac))(jnp.asarray(lrs, jnp.float32)), np.float64)


def spectral_radius(jacobian: np.ndarray) -> float:
  """``max_i |lambda_i|`` over the eigenvalues of a square matrix ``[m, m]``; float >= 0."""
  return float(np.max(np.abs(np.linalg.eigvals(np.asarray(jacobian, np.float64)))))


def step_spectral_radius(game: Game, rule: UpdateRule) -> float:
  """The spectral radius of the step operator at the equilibrium; NaN for non-stationary rules.

  ``< 1``: locally converges (linear rate); ``> 1``: diverges; ``= 1``: neither (an orbit when the
  operator is diagonalisable with unit-modulus eigenvalues).
  """
  if not rule.stationary:
    return math.nan
  return spectral_radius(step_jacobian(game, rule))


def flow_on_grid(game: Game, xs: jax.typing.ArrayLike, ys: jax.typing.ArrayLike) -> Params:
  """The gradient-play flow ``-v(x, y)`` on a grid (scalar players only).

  Args:
    game: a game with ``n_x = n_y = 1``.
    xs: float32 ``[nx]`` grid values of x; ``ys``: float32 ``[ny]`` grid values of y.

  Returns:
    ``(u, w)``, float32 ``[ny, nx]`` each: the x and y components of ``-v`` at ``(xs[j], ys[i])``.
  """
  gx_, gy_ = jnp.meshgrid(jnp.asarray(xs, jnp.float32), jnp.asarray(ys, jnp.float32))

  def flow(x, y):
    gx, gy = vector_field(game, x[None], y[None])
    return -gx[0], -gy[0]

  return jax.jit(jax.vmap(jax.vmap(flow)))(gx_, gy_)


def _rho_simultaneous(lr: float, **_) -> float:
  return math.sqrt(1 + lr**2)


def _rho_alternating(lr: float, **_) -> float:
  # det = 1, trace = 2 - lr^2: complex unit-modulus eigenvalues for lr <= 2, real ones beyond.
  if lr <= 2:
    return 1.0
  return (lr**2 - 2 + lr * math.sqrt(lr**2 - 4)) / 2


def _rho_extragradient(lr: float, **_) -> float:
  return math.sqrt(1 - lr**2 + lr**4)


def _rho_optimistic(lr: float, **_) -> float:
  # Eigenvalues lambda = ((1 -+ 2 i lr) +- sqrt(1 - 4 lr^2)) / 2 of the 4x4 operator on (z_t, z_{t-1}).
  if lr <= 0.5:
    return math.sqrt((1 + math.sqrt(1 - 4 * lr**2)) / 2)
  return math.sqrt(1 + (2 * lr + math.sqrt(4 * lr**2 - 1)) ** 2) / 2


def _rho_consensus(lr: float, gamma: float = 1.0, **_) -> float:
  return math.sqrt((1 - lr * gamma) ** 2 + lr**2)


BILINEAR_SPECTRAL_RADIUS: dict[str, Callable[..., float]] = {
  "simultaneous": _rho_simultaneous,
  "alternating": _rho_alternating,
  "extragradient": _rho_extragradient,
  "optimistic": _rho_optimistic,
  "consensus": _rho_consensus,
}
"""Closed-form spectral radius of the step operator on ``V(x, y) = x y``: ``f(lr, **rule_kwargs)``.

* simultaneous GD: ``sqrt(1 + lr^2)`` (> 1: spiral out).
* alternating GD (x first, one step each): ``1`` for ``lr <= 2`` (orbit), else
  ``(lr^2 - 2 + lr sqrt(lr^2 - 4)) / 2``.
* extragradient: ``sqrt(1 - lr^2 + lr^4)`` (< 1 for ``0 < lr < 1``).
* optimistic GD (4x4 operator): ``sqrt((1 + sqrt(1 - 4 lr^2)) / 2)`` for ``lr <= 1/2``, else
  ``sqrt(1 + (2 lr + sqrt(4 lr^2 - 1))^2) / 2`` (< 1 for ``0 < lr < 1/sqrt(3)``).
* consensus optimisation: ``sqrt((1 - gamma lr)^2 + lr^2)``.
"""


def bilinear_spectral_radius(spec: str, lr: float) -> float:
  """The closed-form spectral radius for method ``spec`` on the bilinear game; NaN if none is known."""
  name, kwargs = parse_method(spec)
  if name not in BILINEAR_SPECTRAL_RADIUS:
    return math.nan
  if name == "alternating" and kwargs.get("y_steps", 1) != 1:
    return math.nan
  return BILINEAR_SPECTRAL_RADIUS[name](lr, **kwargs)
