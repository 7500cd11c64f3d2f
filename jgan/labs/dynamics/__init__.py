"""Game-dynamics lab: why GAN training does not converge, and what makes it converge.

GAN training is a two-player game, not a minimisation. This package makes the point measurable on the
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

Modules: :mod:`~jgan.labs.dynamics.games` (games and their vector fields),
:mod:`~jgan.labs.dynamics.rules` (update rules), :mod:`~jgan.labs.dynamics.analysis` (trajectories,
Jacobians, spectral radii, closed forms) and :mod:`~jgan.labs.dynamics.report` (tables and figures).
Everything public is re-exported here: ``from jgan.labs import dynamics; dynamics.trajectory(...)``.
"""

from jgan.labs.dynamics.analysis import (  # noqa: F401
  BILINEAR_SPECTRAL_RADIUS,
  bilinear_spectral_radius,
  distance_to_equilibrium,
  flow_on_grid,
  spectral_radius,
  step_jacobian,
  step_jacobians,
  step_spectral_radius,
  trajectory,
)
from jgan.labs.dynamics.games import (  # noqa: F401
  GAMES,
  Game,
  Params,
  bilinear,
  dirac,
  logit_objectives,
  make_game,
  split,
  vector_field,
)
from jgan.labs.dynamics.rules import (  # noqa: F401
  UPDATE_RULES,
  UpdateRule,
  alternating,
  check_optax_name,
  consensus,
  extragradient,
  is_optax_optimizer,
  make_update_rule,
  method_choices,
  optax_rule,
  optimistic,
  parse_method,
  simultaneous,
)
