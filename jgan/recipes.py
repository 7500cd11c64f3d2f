"""Training recipes of the objectives: each paper's optimiser, critic steps and D architecture.

``set_objective(config, name)`` switches a config's objective section to ``name`` with its default
parameters and applies the recipe of :data:`OBJECTIVE_RECIPES` (objectives without one keep the DCGAN
recipe). Experiment files take it as their argument: ``configs/smoke.py:wgan_gp``.
"""

from typing import Any

import ml_collections

from jgan import objectives

# Per-objective training recipes from each objective's paper, applied by `set_objective`. Learning
# rates are relative to the experiment's base rate (2e-4 for DCGAN), so a recipe also fits small models
# with a different base rate. Keys: optimiser (name, betas, lr_scale), critic updates per G update,
# WGAN weight clipping, D normalisation / spectral norm, auto-encoder energy, objective parameters.
OBJECTIVE_RECIPES: dict[str, dict[str, Any]] = {
  # Arjovsky et al. 2017, Algorithm 1: RMSProp 5e-5, clip 0.01, 5 critic steps.
  "wasserstein": dict(opt="rmsprop", lr_scale=0.25, n_critic=5, d_clip=0.01),
  # Gulrajani et al. 2017: Adam 1e-4, betas (0.5, 0.9) (their MNIST/LSUN settings), 5 critic steps,
  # no BatchNorm in the critic (the per-sample gradient penalty needs it; LayerNorm instead).
  "wgan_gp": dict(opt="adam", b1=0.5, b2=0.9, lr_scale=0.5, n_critic=5, d_norm="layer"),
  # Miyato et al. 2018 / Lim & Ye 2017: hinge loss with a spectrally normalised D (no BatchNorm).
  "hinge": dict(opt="adam", b1=0.5, b2=0.999, lr_scale=1.0, d_norm="none", d_spectral_norm=True),
  # Zhao et al. 2016: auto-encoder D with MSE energy and pull-away term 0.1. The margin must sit a
  # little above the energy D reaches on real data (here a per-pixel mean: ~0.03-0.05 on MNIST after a
  # few hundred steps). Measured on the demo DCGAN (mnist5k, 1,500 steps): margin 0.1 gives digits;
  # 0.3 and 1.0 leave G at grey noise (D can hold every fake far above the real energies, and G's
  # gradient towards "reconstructible" images does not reach digits).
  "ebgan": dict(opt="adam", b1=0.5, b2=0.999, lr_scale=1.0, ae_energy="l2", params=dict(margin=0.1)),
  # Berthelot et al. 2017: Adam 1e-4, L1 auto-encoder without BatchNorm, lambda_k 0.001. gamma 0.7,
  # the top of the paper's 0.3-0.7 range: on the demo DCGAN (mnist5k, 3,000 steps) the paper's 0.5
  # collapsed to faint blobs (k_t -> 0), 0.7 gives smooth digits, 1.0 more varied but rougher ones.
  "began": dict(opt="adam", b1=0.5, b2=0.999, lr_scale=0.5, ae_energy="l1", d_norm="none", params=dict(gamma=0.7)),
}
# Everything else (minimax, non_saturating, the f-GAN family, least_squares, relativistic) uses the
# DCGAN recipe: Adam 2e-4, beta1 0.5 (Nowozin et al. and Mao et al. trained with the same settings).


def set_objective(c: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
  """Switches config ``c`` to objective ``name`` with its parameters (overridable) and its recipe."""
  recipe = OBJECTIVE_RECIPES.get(name, {})
  params = {**objectives.objective_params(name), **recipe.get("params", {})}  # checks the name
  c.objective = ml_collections.ConfigDict(dict(name=name, **params))
  base_lr = c.optim.d.lr
  if recipe:
    for who in ("g", "d"):
      o = dict(name=recipe["opt"], lr=base_lr * recipe["lr_scale"])
      if recipe["opt"] == "adam":
        o.update(b1=recipe["b1"], b2=recipe["b2"])
      c.optim[who] = ml_collections.ConfigDict(o)
  c.train.n_critic = recipe.get("n_critic", c.train.n_critic)
  c.optim.d_clip = recipe.get("d_clip", c.optim.d_clip)
  for key in ("d_norm", "d_spectral_norm", "ae_energy"):
    if key in recipe:
      c.model[key] = recipe[key]
  return c
