"""How the two players of one train step move: ``UPDATE_RULES`` (``train.update_rule``).

A train step ends with one discriminator update and one generator update; an update rule decides
which point each player's gradient is taken at. A rule is an :class:`UpdateRule`: ``init(g_params,
d_params) -> rule_state`` (what it remembers between steps, carried in the train state) and
``step(r, g, d, rule_state) -> Moved(g, d, rule_state, output)``, where ``g`` and ``d`` are
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


class Generated(NamedTuple):
  """G's samples of the step's ``z``: ``fake`` ``[B, ...]``, the pull-back ``vjp(d_fake) -> (g_grads,)`` of
  G's forward pass, and G's new statistics (BatchNorm). ``g_fake``: the samples of G's own batch when
  its update draws one (``Objective.g_own_batch``; ``vjp`` is then theirs), else None: ``fake`` is used."""

  fake: Array
  vjp: Callable
  stats: Any
  g_fake: Array | None = None


class DGrad(NamedTuple):
  """D's loss gradient at one point: ``grads``, D's new ``stats``, its raw ``outputs`` on the batches
  (:class:`DOutputs`) and the step's D ``metrics`` (``d_loss``, ``d_real``, ``d_fake``, ``d_grad_norm``,
  ``penalty``)."""

  grads: Any
  stats: Any
  outputs: DOutputs
  metrics: dict


class GGrad(NamedTuple):
  """G's loss gradient pulled back through G's forward pass, and G's ``loss``."""

  grads: Any
  loss: Array


class Round(NamedTuple):
  """The functions an update rule combines in one step (built by :mod:`jgan.step` for each step).

  * ``generate(g_params) -> Generated``: G's samples of the step's ``z``;
  * ``d_grad(d, fake) -> DGrad``: D's loss gradient at player ``d`` on the real batch and ``fake``
    (treated as constants), with D's new statistics;
  * ``g_grad(gen, d) -> GGrad``: G's loss gradient against player ``d`` at ``gen``'s samples, pulled back
    through ``gen.vjp``;
  * ``d_update(d, grads, d_stats) -> Player`` / ``g_update(g, grads, g_stats) -> Player``: one optimiser
    step of that player (WGAN weight clipping included for D).
  """

  generate: Callable[[Any], Generated]
  d_grad: Callable[[Player, Array], DGrad]
  g_grad: Callable[[Generated, Player], GGrad]
  d_update: Callable[[Player, Any, Any], Player]
  g_update: Callable[[Player, Any, Any], Player]


class RoundOutput(NamedTuple):
  """What the step logs and feeds to the objective: D's outputs and metrics, G's loss and gradient."""

  d_outputs: DOutputs
  d_metrics: dict
  g_loss: Array
  g_grads: Any


class Moved(NamedTuple):
  """What an update rule's ``step`` returns: both players after the step, the rule's new state and the
  :class:`RoundOutput`."""

  g: Player
  d: Player
  rule_state: Any
  output: RoundOutput


class UpdateRule(NamedTuple):
  """An update rule as pure functions (see the module docstring)."""

  init: Callable[[Any, Any], Any]
  step: Callable[[Round, Player, Player, Any], Moved]


def _no_state(g_params, d_params):
  del g_params, d_params
  return ()


def _alternating(r: Round, g: Player, d: Player, s) -> Moved:
  gen = r.generate(g.params)
  dg = r.d_grad(d, jax.lax.stop_gradient(gen.fake))
  d = r.d_update(d, dg.grads, dg.stats)
  gg = r.g_grad(gen, d)  # against the updated D
  return Moved(r.g_update(g, gg.grads, gen.stats), d, s, RoundOutput(dg.outputs, dg.metrics, gg.loss, gg.grads))


def _simultaneous(r: Round, g: Player, d: Player, s) -> Moved:
  gen = r.generate(g.params)
  dg = r.d_grad(d, jax.lax.stop_gradient(gen.fake))
  gg = r.g_grad(gen, d)  # against the same D
  new_g, new_d = r.g_update(g, gg.grads, gen.stats), r.d_update(d, dg.grads, dg.stats)
  return Moved(new_g, new_d, s, RoundOutput(dg.outputs, dg.metrics, gg.loss, gg.grads))


def _extragradient(r: Round, g: Player, d: Player, s) -> Moved:
  gen = r.generate(g.params)
  dg = r.d_grad(d, jax.lax.stop_gradient(gen.fake))
  gg = r.g_grad(gen, d)
  # The look-ahead point: one optimiser step of each player, keeping their statistics.
  look_d = Player(r.d_update(d, dg.grads, d.stats).params, d.stats, d.opt)
  look_g = r.g_update(g, gg.grads, g.stats)
  look = r.generate(look_g.params)
  look_dg = r.d_grad(look_d, jax.lax.stop_gradient(look.fake))
  look_gg = r.g_grad(look, look_d)
  # The original point moves with the look-ahead gradients.
  new_g, new_d = r.g_update(g, look_gg.grads, look.stats), r.d_update(d, look_dg.grads, look_dg.stats)
  return Moved(new_g, new_d, s, RoundOutput(dg.outputs, dg.metrics, look_gg.loss, look_gg.grads))


def _optimistic_init(g_params, d_params):
  zeros = lambda p: jax.tree.map(jnp.zeros_like, p)
  return zeros(g_params), zeros(d_params)


def _optimistic(r: Round, g: Player, d: Player, s) -> Moved:
  (prev_g, prev_d), extrapolate = s, lambda now, prev: jax.tree.map(lambda a, b: 2.0 * a - b, now, prev)
  gen = r.generate(g.params)
  dg = r.d_grad(d, jax.lax.stop_gradient(gen.fake))
  gg = r.g_grad(gen, d)
  d = r.d_update(d, extrapolate(dg.grads, prev_d), dg.stats)
  g = r.g_update(g, extrapolate(gg.grads, prev_g), gen.stats)
  return Moved(g, d, (gg.grads, dg.grads), RoundOutput(dg.outputs, dg.metrics, gg.loss, gg.grads))


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
