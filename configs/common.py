"""Shared defaults of every jgan experiment (DCGAN recipe of Radford et al. 2015).

Every field a run reads is listed here, so ``--config.KEY=VALUE`` overrides are type-checked and a
misspelt key fails at parse time. Experiment files start from ``get_config()`` and change what differs.
"""

import ml_collections

# Per-objective training recipes from each objective's paper, applied by `set_objective`. Learning
# rates are relative to the experiment's base rate (2e-4 for DCGAN), so a recipe also fits small models
# with a different base rate. Keys: optimiser (name, betas, lr_scale), critic updates per G update,
# WGAN weight clipping, D normalisation / spectral norm, auto-encoder energy, objective parameters.
OBJECTIVE_RECIPES = {
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
    "began": dict(opt="adam", b1=0.5, b2=0.999, lr_scale=0.5, ae_energy="l1", d_norm="none",
                  params=dict(gamma=0.7)),
}
# Everything else (minimax, non_saturating, the f-GAN family, least_squares, relativistic) uses the
# DCGAN recipe: Adam 2e-4, beta1 0.5 (Nowozin et al. and Mao et al. trained with the same settings).


def set_objective(c: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
  """Switches config ``c`` to objective ``name`` with its parameters (overridable) and its recipe."""
  from jgan import objectives  # imported here: configs stay loadable without importing JAX at top level

  objectives.check_objective_name(name)
  recipe = OBJECTIVE_RECIPES.get(name, {})
  params = {**objectives.objective_params(name), **recipe.get("params", {})}
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


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.name = "mnist5k"  # see jgan.data.DATASETS
  c.data.image_size = 28  # output side in px (images only)
  c.data.split = ""  # "" = the dataset's train split
  c.data.data_dir = ""  # "" = TFDS's default (TFDS_DATA_DIR or ~/tensorflow_datasets)
  c.data.worker_count = 0  # Grain worker processes (part of the reproducibility config)

  c.model = ml_collections.ConfigDict()
  c.model.name = "dcgan"  # see jgan.models.MODELS
  c.model.latent_dim = 100
  c.model.g_width = 64  # DCGAN: channels of G's last hidden map; MLP: hidden units
  c.model.d_width = 64  # DCGAN: channels of D's first map; MLP: hidden units
  c.model.d_norm = "batch"  # DCGAN D hidden-layer norm: batch | layer | none
  c.model.depth = 2  # MLP hidden layers
  c.model.pack = 1  # PacGAN (Lin et al. 2018): D judges groups of m samples
  c.model.d_spectral_norm = False  # spectral normalisation of every D layer (Miyato et al. 2018)
  c.model.ae_code_dim = 64  # auto-encoder D (EBGAN, BEGAN): code size
  c.model.ae_energy = "l2"  # auto-encoder D energy: l2 (mean squared error, EBGAN) | l1 (BEGAN)
  c.model.compute_dtype = "float32"  # float32 | bfloat16 (activations; parameters stay float32)

  c.objective = ml_collections.ConfigDict()
  c.objective.name = "non_saturating"  # see jgan.objectives.OBJECTIVES; its parameters go beside it

  c.penalty = ml_collections.ConfigDict()
  c.penalty.name = "none"  # none | see jgan.penalties.PENALTIES (r1, r2, gradient_penalty)
  c.penalty.every = 1  # lazy regularisation: apply every k D updates' steps, scaled by k

  c.optim = ml_collections.ConfigDict()
  c.optim.g = ml_collections.ConfigDict(dict(name="adam", lr=2e-4, b1=0.5, b2=0.999))
  c.optim.d = ml_collections.ConfigDict(dict(name="adam", lr=2e-4, b1=0.5, b2=0.999))
  c.optim.lr_schedule = "constant"  # constant | linear | cosine: both rates decay to 0 over train.steps
  c.optim.d_clip = 0.0  # WGAN weight clipping of D's parameters (0 = off)
  c.optim.ema_decay = 0.999  # EMA of G's parameters (used for samples and evaluation)

  c.train = ml_collections.ConfigDict()
  c.train.steps = 5000  # G updates
  c.train.batch_size = 64  # global batch per D update
  c.train.n_critic = 1  # D updates per G update
  c.train.steps_per_call = 1  # >1 fuses that many steps into one jitted lax.scan
  c.train.update_rule = "alternating"  # alternating | simultaneous | extragradient | optimistic
  c.train.unrolled_steps = 0  # Unrolled GAN (Metz et al. 2016): G looks k D updates ahead
  c.train.log_every = 50
  c.train.sample_every = 500  # sample grid of fixed z (0 = only at the end)
  c.train.num_samples = 64  # images in a sample grid, or points in a 2-D scatter
  c.train.progress = True  # progress bar

  c.parallel = ml_collections.ConfigDict()
  c.parallel.num_devices = 0  # 0 = all devices

  # Checkpoints in <workdir>/checkpoints (see jgan.checkpoint). A run on a workdir with checkpoints
  # resumes from the latest; a changed config field that alters the result is refused unless
  # allow_config_change (train.steps, log_every, progress, sample_every, num_samples may change).
  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.every_steps = 1000  # also saved at the end and on SIGTERM/SIGINT (0 = only then)
  c.checkpoint.max_to_keep = 3  # the last K checkpoints are kept
  c.checkpoint.best_metric = ""  # an eval metric: also keep the best keep_best checkpoints by it ("" = off)
  c.checkpoint.best_mode = "max"  # max | min: which values of best_metric are better
  c.checkpoint.keep_best = 1
  c.checkpoint.async_save = True  # write in a background thread (always waited for before exit)
  c.checkpoint.allow_config_change = False  # resume even if result-changing fields differ

  # Evaluation metrics (jgan.evaluation, docs/evaluation.md): during training every every_steps G
  # updates, and by `python launch.py eval --workdir DIR` afterwards (results in <workdir>/evals.jsonl).
  c.evals = ml_collections.ConfigDict()
  c.evals.metrics = ""  # comma list of jgan.metrics.METRICS, e.g. "mnist_fid5k,mnist_modes5k" ("" = none)
  c.evals.every_steps = 0  # 0 = not during training
  c.evals.num_samples = 0  # generated (and real) samples of every metric (0 = each metric's own count)
  c.evals.batch_size = 250  # samples per generator / feature-extractor call
  c.evals.real_split = ""  # real data compared with ("" = the dataset's train split)
  c.evals.classifier_path = ""  # mnist_* metrics ("" = $JGAN_CLASSIFIER or ~/.cache/jgan/classifier_mnist5k)
  c.evals.inception_weights = ""  # fid10k etc. ("" = $JGAN_INCEPTION_WEIGHTS or ~/.cache/jgan/pt_inception-...pth)
  c.evals.cache_dir = ""  # real-feature cache ("" = <workdir>/eval_cache)

  return c
