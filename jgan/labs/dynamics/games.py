"""Games of the dynamics lab: the bilinear game and the Dirac-GAN, as pure losses, and their vector field.

A :class:`Game` is a pair of pure losses ``losses(x, y) -> (loss_x, loss_y)``, each player minimising
its own (zero-sum games have ``loss_y = -loss_x``). Its *simultaneous gradient* (the game's vector
field) is ``v(x, y) = (d loss_x / dx, d loss_y / dy)``; plain gradient play moves against it. Each
player's parameters are float32 vectors ``[n_x]`` and ``[n_y]`` (``n_x = n_y = 1`` for both games).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

from jgan import objectives as objectives_lib
from jgan.registry import Registry

Array = jax.Array
Params = tuple[Array, Array]  # (x [n_x], y [n_y]), float32


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
  parts = [objective] + [f"{k}={v:g}" for k, v in (("r1", r1), ("r2", r2), ("noise", instance_noise)) if v]
  if clip is not None:
    parts.append(f"clip={clip:g}")
  return Game(
    name="dirac(" + ", ".join(parts) + ")",
    losses=losses,
    equilibrium=((0.0,), (0.0,)),
    project_y=project_y,
    labels=("theta", "psi"),
  )


GAMES: Registry[Callable[..., Game]] = Registry(
  "game",
  {
    "bilinear": bilinear,
    "dirac": dirac,
  },
)


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


make_game = GAMES.build  # make_game(name, **params) -> Game; a bad name or parameter is refused


def vector_field(game: Game, x: Array, y: Array) -> Params:
  """The simultaneous gradient ``v(x, y) = (d loss_x / dx, d loss_y / dy)``: float32 ``([n_x], [n_y])``.

  Gradient play follows ``-v``; for the bilinear game ``v = (y, -x)``.
  """
  gx = jax.grad(lambda x_: game.losses(x_, y)[0])(x)
  gy = jax.grad(lambda y_: game.losses(x, y_)[1])(y)
  return gx, gy


def project(game: Game, y: Array) -> Array:
  """``y`` projected onto the game's feasible set for the second player (itself when unconstrained)."""
  return y if game.project_y is None else game.project_y(y)


def split(game: Game, z: Array) -> Params:
  """Splits a joint vector ``z`` ``[n_x + n_y]`` into ``(x [n_x], y [n_y])``."""
  return z[: game.n_x], z[game.n_x :]
