"""Game-dynamics lab: why GAN training does not converge, and what makes it converge.

GAN training is a two-player game, not a minimisation. This module makes the point measurable on the
smallest games that show it:

* ``GAMES["bilinear"]``: ``V(x, y) = x y``; ``x`` minimises ``V``, ``y`` maximises it. The only
  equilibrium is ``(0, 0)``.
* ``GAMES["dirac"]``: the Dirac-GAN of Mescheder, Geiger & Nowozin 2018 ("Which training methods for
  GANs actually converge?"). Data is a point mass at 0, the generator a point mass at ``theta``, the
  discriminator is linear, ``D(x) = psi x``. Any objective of :data:`jgan.objectives.OBJECTIVES` with
  ``d_output == "logit"`` can be plugged in, with R1 / R2 penalties, instance noise and WGAN weight
  clipping as options. The equilibrium is ``(theta, psi) = (0, 0)``.

A :class:`Game` is a pair of pure losses ``losses(x, y) -> (loss_x, loss_y)``, each player minimising
its own (zero-sum games have ``loss_y = -loss_x``). Its *simultaneous gradient* (the game's vector
field) is ``v(x, y) = (d loss_x / dx, d loss_y / dy)``; plain gradient play moves against it.

An :class:`UpdateRule` (registry :data:`UPDATE_RULES`, or any optax optimiser by name through
:func:`make_update_rule`) is a pure step ``(params, rule_state) -> (params, rule_state)``.
:func:`trajectory` runs thousands of steps inside one ``jax.lax.scan``; :func:`step_jacobian` and
:func:`spectral_radius` linearise one step at the equilibrium (``jax.jacfwd``): a spectral radius
``< 1`` means local convergence at a linear rate, ``> 1`` divergence, ``= 1`` (for a normal operator) a
bounded orbit. :data:`BILINEAR_SPECTRAL_RADIUS` holds the closed forms on the bilinear game (derived
in ``docs/dynamics.md``), which the tests check against autodiff.

Everything is float32 and shape-static: each player's parameters are float32 vectors ``[n_x]`` and
``[n_y]`` (``n_x = n_y = 1`` for both games here), the joint vector is ``z = concat(x, y)``
``[n_x + n_y]``.
"""

from __future__ import annotations

import ast
import functools
import inspect
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import special

from jgan import objectives as objectives_lib

Array = jax.Array
Params = tuple[Array, Array]  # (x [n_x], y [n_y]), float32


# --------------------------------------------------------------------------------------------------
# Games.


class Game(NamedTuple):
  """A two-player differentiable game as pure functions.

  Attributes:
    name: a label for tables and plots.
    losses: ``(x, y) -> (loss_x, loss_y)``; ``x`` float32 ``[n_x]``, ``y`` float32 ``[n_y]``; both
      losses are float32 scalars, each *minimised* by its own player.
    equilibrium: ``(x*, y*)`` as tuples of Python floats (hashable, so a game can be a static jit
      argument).
    project_y: ``None`` or a map ``y -> y`` applied after every update of ``y`` (weight clipping).
    labels: axis names of the two players, e.g. ``("theta", "psi")``.
  """

  name: str
  losses: Callable[[Array, Array], tuple[Array, Array]]
  equilibrium: tuple[tuple[float, ...], tuple[float, ...]]
  project_y: Callable[[Array], Array] | None = None
  labels: tuple[str, str] = ("x", "y")

  @property
  def n_x(self) -> int:
    """Number of parameters of player x."""
    return len(self.equilibrium[0])

  def equilibrium_vector(self) -> Array:
    """The equilibrium as one float32 vector ``[n_x + n_y]``."""
    return jnp.asarray(self.equilibrium[0] + self.equilibrium[1], jnp.float32)


def bilinear() -> Game:
  """The bilinear game ``V(x, y) = x y`` (x minimises, y maximises); equilibrium ``(0, 0)``.

  ``loss_x = x y``, ``loss_y = -x y`` for float32 ``x, y`` of shape ``[1]``. The vector field is
  ``v(x, y) = (y, -x)``: a pure rotation, so gradient play has no force pulling it to the equilibrium.
  """

  def losses(x, y):
    v = jnp.sum(x * y)
    return v, -v

  return Game(name="bilinear", losses=losses, equilibrium=((0.0,), (0.0,)), labels=("x", "y"))


def _normal_quantiles(n: int) -> np.ndarray:
  """``n`` equal-weight points standing for N(0, 1), float32 ``[n]``: mean 0, mean square exactly 1.

  The quantiles ``Phi^-1((i + 1/2) / n)``, rescaled so that their second moment is 1 (unscaled it is
  0.980 for n = 64): the Dirac-GAN's linearisation at the equilibrium depends on the noise only through
  ``E[eps^2] = sigma^2``, so with the rescaling it is exact for any n.
  """
  q = special.ndtri((np.arange(n) + 0.5) / n)
  return (q / np.sqrt(np.mean(q**2))).astype(np.float32)


def _mean_grad_sq(d_fn: Callable[[Array], Array], points: Array) -> Array:
  """``E_points ||grad_x D(x)||^2`` for ``points`` ``[B, d]`` and ``d_fn: [B, d] -> [B]``; scalar >= 0."""
  grads = jax.vmap(jax.grad(lambda p: d_fn(p[None])[0]))(points)
  return jnp.mean(jnp.sum(grads**2, axis=-1))


def dirac(
    objective: str = "non_saturating",
    objective_params: dict[str, Any] | None = None,
    r1: float = 0.0,
    r2: float = 0.0,
    instance_noise: float = 0.0,
    clip: float | None = None,
    noise_points: int = 64,
) -> Game:
  """The Dirac-GAN (Mescheder et al. 2018, Sec. 2.2) with any logit objective of jgan.

  Data: a point mass at 0. Generator: a point mass at ``theta`` (player x). Discriminator:
  ``D(x) = psi x`` (player y). Without noise D's outputs are ``d_real = psi * 0`` and
  ``d_fake = psi * theta``, float32 ``[1]``; ``loss_x`` is the objective's ``g_loss`` and ``loss_y`` its
  ``d_loss`` plus penalties. Linearised at ``(0, 0)``, saturating/non-saturating GANs give the vector
  field ``v ~ (-f'(0) psi, f'(0) theta)`` with ``f'(0) = 1/2``: the bilinear rotation again.

  Args:
    objective: a name in ``jgan.objectives.OBJECTIVES`` whose objective has ``d_output == "logit"``.
      An objective state (``init_state()``) is held fixed; an objective ``d_penalty`` is added to
      ``d_loss`` with ``d_fn = lambda x: psi * x[..., 0]`` and a fixed PRNG key (for a linear D the
      gradient is ``psi`` everywhere, so where a penalty samples its points does not matter).
    objective_params: keyword arguments for the objective's factory.
    r1: gamma of the R1 penalty ``gamma/2 E_real ||grad_x D(x)||^2`` (= ``gamma/2 psi^2`` here), added
      to D's loss; computed by autodiff of ``d_fn`` so the closed form is checked, not assumed.
    r2: gamma of the R2 penalty, the same on the fake points.
    instance_noise: sigma >= 0. Real and fake points are perturbed by N(0, sigma^2). The expectation
      over the noise is taken deterministically, by an equal-weight quantile rule: the ``noise_points``
      points ``sigma * Phi^-1((i + 1/2) / B)`` (rescaled to second moment ``sigma^2``) stand for the
      noise distribution, so the batch mean of the objective is a quadrature of its expectation, for
      any objective, and the dynamics stay deterministic. Fake points use a fixed permutation of the
      same nodes so that real/fake pairs are (nearly) uncorrelated for objectives that pair them.
      Linearised at ``(0, 0)`` instance noise acts like R1 with ``gamma = sigma^2 / 2`` for the
      (non-)saturating GAN (``d^2 d_loss / d psi^2 = 2 * sigmoid'(0) * sigma^2``).
    clip: ``None`` or c > 0: WGAN weight clipping, ``psi <- clip(psi, -c, c)`` after every D step.
    noise_points: B, the number of quadrature points for instance noise.

  Returns:
    A :class:`Game` on ``(theta [1], psi [1])`` with equilibrium ``(0, 0)``.
  """
  obj = objectives_lib.make_objective(objective, **(objective_params or {}))
  if obj.d_output != "logit":
    raise ValueError(
        f"objective {objective!r} has d_output {obj.d_output!r}; the Dirac-GAN needs a logit objective; "
        f"valid choices: {', '.join(logit_objectives())}"
    )
  if instance_noise < 0 or r1 < 0 or r2 < 0:
    raise ValueError(f"instance_noise, r1, r2 must be >= 0, got {instance_noise}, {r1}, {r2}")
  if clip is not None and clip <= 0:
    raise ValueError(f"clip must be None or > 0, got {clip}")
  obj_state = obj.init_state()
  if instance_noise > 0:
    nodes = instance_noise * _normal_quantiles(noise_points)
    eps_real = jnp.asarray(nodes)[:, None]  # [B, 1]
    eps_fake = jnp.asarray(nodes[np.random.default_rng(0).permutation(noise_points)])[:, None]
  else:
    eps_real = eps_fake = jnp.zeros((1, 1), jnp.float32)

  def losses(theta, psi):
    real = eps_real  # the data point 0, plus noise: [B, 1]
    fake = theta[0] + eps_fake  # [B, 1]

    def d_fn(pts):
      return psi[0] * pts[..., 0]

    d_loss, g_loss = obj.loss(d_fn(real), d_fn(fake), obj_state)
    if obj.d_penalty is not None:
      d_loss = d_loss + obj.d_penalty(d_fn, real, fake, jax.random.key(0))
    if r1:
      d_loss = d_loss + 0.5 * r1 * _mean_grad_sq(d_fn, real)
    if r2:
      d_loss = d_loss + 0.5 * r2 * _mean_grad_sq(d_fn, fake)
    return g_loss, d_loss

  project_y = None if clip is None else (lambda psi: jnp.clip(psi, -clip, clip))
  parts = [objective] + [
      f"{k}={v:g}" for k, v in (("r1", r1), ("r2", r2), ("noise", instance_noise)) if v
  ]
  if clip is not None:
    parts.append(f"clip={clip:g}")
  return Game(
      name="dirac(" + ", ".join(parts) + ")",
      losses=losses,
      equilibrium=((0.0,), (0.0,)),
      project_y=project_y,
      labels=("theta", "psi"),
  )


GAMES: dict[str, Callable[..., Game]] = {
    "bilinear": bilinear,
    "dirac": dirac,
}


def logit_objectives() -> list[str]:
  """Names in ``jgan.objectives.OBJECTIVES`` usable in the Dirac-GAN (``d_output == "logit"``)."""
  names = []
  for name in sorted(objectives_lib.OBJECTIVES):
    try:
      if objectives_lib.make_objective(name).d_output == "logit":
        names.append(name)
    except Exception:  # an objective without defaults for every parameter is just not listed
      continue
  return names


def _check_params(kind: str, name: str, fn: Callable[..., Any], params: dict[str, Any]) -> None:
  """Raises ValueError if ``params`` holds names ``fn`` does not take (unless it takes ``**kwargs``)."""
  sig = inspect.signature(fn).parameters
  if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.values()):
    return
  unknown = sorted(set(params) - set(sig))
  if unknown:
    raise ValueError(f"{kind} {name!r} got unknown parameter(s) {unknown}; valid parameters: {sorted(sig)}")


def make_game(name: str, **params) -> Game:
  """Builds ``GAMES[name](**params)``; a bad name or parameter raises a one-line ValueError listing choices."""
  if name not in GAMES:
    raise ValueError(f"unknown game {name!r}; valid choices: {', '.join(GAMES)}")
  _check_params("game", name, GAMES[name], params)
  return GAMES[name](**params)


def vector_field(game: Game, x: Array, y: Array) -> Params:
  """The simultaneous gradient ``v(x, y) = (d loss_x / dx, d loss_y / dy)``: float32 ``([n_x], [n_y])``.

  Gradient play follows ``-v``; for the bilinear game ``v = (y, -x)``.
  """
  gx = jax.grad(lambda x_: game.losses(x_, y)[0])(x)
  gy = jax.grad(lambda y_: game.losses(x, y_)[1])(y)
  return gx, gy


def _project(game: Game, y: Array) -> Array:
  return y if game.project_y is None else game.project_y(y)


def split(game: Game, z: Array) -> Params:
  """Splits a joint vector ``z`` ``[n_x + n_y]`` into ``(x [n_x], y [n_y])``."""
  return z[: game.n_x], z[game.n_x :]


# --------------------------------------------------------------------------------------------------
# Update rules.


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
    return (x - lr * gx, _project(game, y - lr * gy)), state

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
      y = _project(game, y - lr * vector_field(game, x, y)[1])
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
    xh, yh = x - lr * gx, _project(game, y - lr * gy)
    gx, gy = vector_field(game, xh, yh)
    return (x - lr * gx, _project(game, y - lr * gy)), state

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
    y = _project(game, y - lr * (2 * gy - prev[1]))
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
    return (x - lr * (gx + gamma * lx), _project(game, y - lr * (gy + gamma * ly))), state

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
  _check_params("optax optimiser", optimizer, getattr(optax, optimizer), kwargs)
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
    y = _project(game, optax.apply_updates(y, uy))
    return (x, y), (sx, sy)

  label = ("alt_" if alternating else "") + optimizer
  if kwargs:
    label += ":" + ":".join(f"{k}={v}" for k, v in sorted(kwargs.items()))
  return UpdateRule(name=label, init=init, step=step, stationary=optimizer in _STATIONARY_OPTAX)


UPDATE_RULES: dict[str, Callable[..., UpdateRule]] = {
    "simultaneous": simultaneous,
    "alternating": alternating,
    "extragradient": extragradient,
    "optimistic": optimistic,
    "consensus": consensus,
    "optax": optax_rule,
}


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
    _check_params("method", name, UPDATE_RULES[name], {"lr": None, **kwargs})
    return name, kwargs
  base, alt = (name[4:], True) if name.startswith("alt_") else (name, False)
  if is_optax_optimizer(base):
    _check_params("optax optimiser", base, getattr(optax, base), kwargs)
    return "optax", {"optimizer": base, "alternating": alt, **kwargs}
  raise ValueError(f"unknown method {name!r}; valid choices: {method_choices()}")


def make_update_rule(spec: str, lr: float) -> UpdateRule:
  """Builds the update rule described by ``spec`` (see :func:`parse_method`) with learning rate ``lr``."""
  name, kwargs = parse_method(spec)
  rule = UPDATE_RULES[name](lr=lr, **kwargs)
  return rule._replace(name=spec.strip())


# --------------------------------------------------------------------------------------------------
# Trajectories and analysis.


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


def distance_to_equilibrium(game: Game, zs: Array) -> Array:
  """Euclidean distance ``||z_t - z*||`` of iterates ``zs`` ``[T + 1, n]``: float32 ``[T + 1]``, >= 0."""
  return jnp.linalg.norm(zs - game.equilibrium_vector()[None], axis=-1)


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


def flow_on_grid(game: Game, xs: Array, ys: Array) -> Params:
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


# --------------------------------------------------------------------------------------------------
# Closed forms on the bilinear game (derivations in docs/dynamics.md).


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
