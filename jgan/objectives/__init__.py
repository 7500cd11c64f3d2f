"""Adversarial objectives: one registry, one interface.

Every objective is built by a small factory ``OBJECTIVES[name](**params) -> Objective`` (optax style:
the factory's keyword arguments are the objective's parameters, its defaults are the published ones).
``OBJECTIVES`` is a :class:`jgan.registry.Registry`; ``jgan.objectives.register(name, factory)`` adds
one from user code, and the config section ``objective`` then takes its parameters.
An :class:`Objective` holds pure functions over D's *raw* outputs:

* ``loss(d_real, d_fake, obj_state) -> (d_loss, g_loss)``: scalar float32 losses, both to be
  *minimised* (D by the discriminator's update, G by the generator's). ``d_real`` / ``d_fake`` are D's
  outputs on a real / generated batch: float32 ``[B]`` raw scores (logits, critic values or f-GAN's
  pre-activation ``V(x)``) for ``d_output == "logit"``, or for ``d_output == "energy"`` a dict with
  ``"energy"`` ``[B]`` (>= 0, e.g. an autoencoder's reconstruction error) and ``"code"`` ``[B, k]``
  (a bare ``[B]`` energy array is accepted where no code is needed, e.g. as a placeholder ``d_real``).
* ``init_state() -> obj_state``: the objective's own state, carried in the train state (``()`` for
  stateless objectives; BEGAN's ``k_t`` for example).
* ``update_state(obj_state, d_real, d_fake) -> (obj_state, metrics)``: called once per D update with the
  outputs that D update saw; returns the new state and scalar metrics to log (e.g. BEGAN's M_global).
* ``g_uses_real``: whether ``g_loss`` depends on ``d_real`` (relativistic losses), so the G update has to
  run D on the real batch as well.
* ``g_own_batch``: G's update draws a batch of its own (a fresh real batch, fresh noise and, conditional,
  that batch's labels) instead of reusing the last critic update's (RpGAN as R3GAN trains it).
* ``d_penalty``: ``None`` or a function ``(d_fn, real, fake, rng) -> scalar`` that the train step adds to
  ``d_loss`` (WGAN-GP's gradient penalty is part of that objective). ``d_fn`` maps a batch of inputs
  ``[B, ...]`` to D's per-sample raw outputs ``[B]``; ``real`` / ``fake`` are the batches D just scored.
  Penalties that can go with *any* objective (R1, R2, ...) live in ``jgan.penalties.PENALTIES``.

Registered families (each factory's docstring has the math and the reference):

* ``minimax``, ``non_saturating`` -- Goodfellow et al. 2014.
* f-GAN (Nowozin, Cseke, Tomioka 2016), one objective per divergence of its Table 2:
  ``total_variation``, ``kl``, ``reverse_kl``, ``pearson``, ``neyman``, ``squared_hellinger``,
  ``jeffrey``, ``jensen_shannon``, ``gan``. D outputs ``V(x)``; ``T = g_f(V)``; the variational bound
  ``F = E_P[T] - E_Q[f*(T)] <= D_f(P || Q)`` is maximised by D. :data:`F_DIVERGENCES` holds ``f``,
  ``g_f``, ``f*`` and its domain.
* ``wasserstein`` (Arjovsky et al. 2017), ``wgan_gp`` (Gulrajani et al. 2017).
* ``least_squares`` (Mao et al. 2017), ``hinge`` (Lim & Ye 2017; Miyato et al. 2018),
  ``relativistic`` (Jolicoeur-Martineau 2018).
* ``ebgan`` (Zhao, Mathieu, LeCun 2016) and ``began`` (Berthelot et al. 2017) with
  ``d_output == "energy"``; BEGAN carries ``k_t`` as objective state.
* ``rpgan`` (R3GAN, Huang et al. 2024): relativistic pairing with ``g_own_batch``: G's update draws its
  own real batch and noise (the train step's data has one more real batch per step).

Any logit objective takes LeCam regularisation (Tseng et al. 2021, :mod:`jgan.objectives.lecam`):
``lecam.with_lecam(objective, weight, decay)``, which a run applies when its config's ``lecam.weight`` > 0.

Conventions: ``P`` is the data distribution (``d_real``), ``Q`` the generator's (``d_fake``); losses
are computed in (at least) float32 whatever the dtype of D's outputs.
"""

from __future__ import annotations

from collections.abc import Callable

from jgan.objectives import lecam  # noqa: F401
from jgan.objectives.base import Array, Objective  # noqa: F401
from jgan.objectives.classic import (
  hinge,
  least_squares,
  minimax,
  non_saturating,
  relativistic,
  rpgan,
  wasserstein,
  wgan_gp,
)
from jgan.objectives.energy import began, ebgan, pull_away_term  # noqa: F401
from jgan.objectives.fgan import (  # noqa: F401
  F_DIVERGENCES,
  FDivergence,
  gan,
  jeffrey,
  jensen_shannon,
  kl,
  neyman,
  pearson,
  reverse_kl,
  squared_hellinger,
  total_variation,
)
from jgan.objectives.lambertw import lambertw, wright_omega  # noqa: F401

# Re-exported: the public API of the package lives in its submodules.
from jgan.registry import Registry

OBJECTIVES: Registry[Callable[..., Objective]] = Registry(
  "objective",
  {
    "minimax": minimax,
    "non_saturating": non_saturating,
    # f-GAN, one per row of Nowozin et al.'s Table 2
    "total_variation": total_variation,
    "kl": kl,
    "reverse_kl": reverse_kl,
    "pearson": pearson,
    "neyman": neyman,
    "squared_hellinger": squared_hellinger,
    "jeffrey": jeffrey,
    "jensen_shannon": jensen_shannon,
    "gan": gan,
    "wasserstein": wasserstein,
    "wgan_gp": wgan_gp,
    "least_squares": least_squares,
    "hinge": hinge,
    "relativistic": relativistic,
    "rpgan": rpgan,
    "ebgan": ebgan,
    "began": began,
  },
)
register = OBJECTIVES.register  # register(name, factory): a user objective, config section objective.*
objective_params = OBJECTIVES.defaults  # objective_params(name) -> {parameter: published default}
check_objective_name = OBJECTIVES.check
make_objective = OBJECTIVES.build  # make_objective(name, **params) -> Objective; unknown parameters refused
