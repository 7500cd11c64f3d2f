"""How the two players of one train step move: ``UPDATE_RULES`` (``train.update_rule``).

A train step ends with one discriminator update and one generator update; an update rule decides
which point each player's gradient is taken at. A rule is an :class:`UpdateRule`: ``init(g_params,
d_params) -> rule_state`` (what it remembers between steps, carried in the train state) and
``step(r, g, d, rule_state) -> (g, d, rule_state, RoundOutput)``, where ``g`` and ``d`` are
:class:`jgan.state.Player` (parameters, statistics, optimiser state) and ``r`` is the step's
:class:`Round`: the functions it combines, with the batch, the noise and the objective bound.

Registered rules (``z = (theta_G, phi_D)``, ``g_D``, ``g_G`` the players' loss gradients):

* ``alternating``: D first, then G against the new D (the usual GAN step);
* ``simultaneous``: both gradients at ``z_t``;
* ``extragradient`` (Korpelevich 1976; Gidel et al. 2019): both players take a look-ahead step with
  their optimisers, then the original point is updated with the gradients found at the look-ahead
  point (its optimiser states are discarded);
* ``optimistic`` (Daskalakis et al. 2018): simultaneous, with the gradient ``2 g_t - g_{t-1}`` fed to
  each optimiser (``g_{-1} = 0``); the rule state is both players' previous gradients.

Adding a rule is one function and one line in :data:`UPDATE_RULES` (``jgan.update_rules.register``
from user code); ``tests/test_update_rules.py`` checks every rule against direct autodiff.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jgan.registry import Registry
from jgan.state import Player

Array = jax.Array


class DOutputs(NamedTuple):
  """D's raw outputs on the last critic batch (before its update): ``real``, ``fake`` ``[B]`` (or energy dicts)."""

  real: Any
  fake: Any


class Round(NamedTuple):
  """The functions an update rule combines in one step (built by :mod:`jgan.step` for each step).

  * ``generate(g_params) -> (fake, vjp, g_stats)``: G's samples of the step's ``z`` ``[B, ...]``, the
    pull-back ``vjp(d_fake) -> (g_grads,)`` of G's forward pass and G's new statistics;
  * ``d_grad(d, fake) -> (grads, d_stats, DOutputs, metrics)``: D's loss gradient at player ``d`` on
    the real batch and ``fake`` (treated as constants), with D's new statistics;
  * ``g_grad(vjp, fake, d) -> (grads, g_loss)``: G's loss gradient against player ``d``, pulled back
    through ``vjp``;
  * ``d_update(d, grads, d_stats) -> Player`` / ``g_update(g, grads, g_stats) -> Player``: one optimiser
    step of that player (WGAN weight clipping included for D).
  """

  generate: Callable[[Any], tuple[Array, Callable, Any]]
  d_grad: Callable[[Player, Array], tuple[Any, Any, DOutputs, dict]]
  g_grad: Callable[[Callable, Array, Player], tuple[Any, Array]]
  d_update: Callable[[Player, Any, Any], Player]
  g_update: Callable[[Player, Any, Any], Player]


class RoundOutput(NamedTuple):
  """What the step logs and feeds to the objective: D's outputs and metrics, G's loss and gradient."""

  d_outputs: DOutputs
  d_metrics: dict
  g_loss: Array
  g_grads: Any


class UpdateRule(NamedTuple):
  """An update rule as pure functions (see the module docstring)."""

  init: Callable[[Any, Any], Any]
  step: Callable[[Round, Player, Player, Any], tuple[Player, Player, Any, RoundOutput]]


def _no_state(g_params, d_params):
  del g_params, d_params
  return ()


def _alternating(r: Round, g: Player, d: Player, s):
  fake, vjp, g_stats = r.generate(g.params)
  gd, d_stats, out, m = r.d_grad(d, jax.lax.stop_gradient(fake))
  d = r.d_update(d, gd, d_stats)
  gg, g_loss = r.g_grad(vjp, fake, d)  # against the updated D
  return r.g_update(g, gg, g_stats), d, s, RoundOutput(out, m, g_loss, gg)


def _simultaneous(r: Round, g: Player, d: Player, s):
  fake, vjp, g_stats = r.generate(g.params)
  gd, d_stats, out, m = r.d_grad(d, jax.lax.stop_gradient(fake))
  gg, g_loss = r.g_grad(vjp, fake, d)  # against the same D
  return r.g_update(g, gg, g_stats), r.d_update(d, gd, d_stats), s, RoundOutput(out, m, g_loss, gg)


def _extragradient(r: Round, g: Player, d: Player, s):
  fake, vjp, _ = r.generate(g.params)
  gd, _, out, m = r.d_grad(d, jax.lax.stop_gradient(fake))
  gg, _ = r.g_grad(vjp, fake, d)
  # The look-ahead point: one optimiser step of each player, keeping their statistics.
  look_d = Player(r.d_update(d, gd, d.stats).params, d.stats, d.opt)
  look_g = r.g_update(g, gg, g.stats)
  look_fake, look_vjp, g_stats = r.generate(look_g.params)
  gd, d_stats, _, _ = r.d_grad(look_d, jax.lax.stop_gradient(look_fake))
  gg, g_loss = r.g_grad(look_vjp, look_fake, look_d)
  # The original point moves with the look-ahead gradients.
  return r.g_update(g, gg, g_stats), r.d_update(d, gd, d_stats), s, RoundOutput(out, m, g_loss, gg)


def _optimistic_init(g_params, d_params):
  zeros = lambda p: jax.tree.map(jnp.zeros_like, p)
  return zeros(g_params), zeros(d_params)


def _optimistic(r: Round, g: Player, d: Player, s):
  (prev_g, prev_d), extrapolate = s, lambda now, prev: jax.tree.map(lambda a, b: 2.0 * a - b, now, prev)
  fake, vjp, g_stats = r.generate(g.params)
  gd, d_stats, out, m = r.d_grad(d, jax.lax.stop_gradient(fake))
  gg, g_loss = r.g_grad(vjp, fake, d)
  d = r.d_update(d, extrapolate(gd, prev_d), d_stats)
  g = r.g_update(g, extrapolate(gg, prev_g), g_stats)
  return g, d, (gg, gd), RoundOutput(out, m, g_loss, gg)


UPDATE_RULES: Registry[UpdateRule] = Registry(
  "update rule",
  {
    "alternating": UpdateRule(_no_state, _alternating),
    "simultaneous": UpdateRule(_no_state, _simultaneous),
    "extragradient": UpdateRule(_no_state, _extragradient),
    "optimistic": UpdateRule(_optimistic_init, _optimistic),
  },
  sort_choices=False,
)
register = UPDATE_RULES.register
