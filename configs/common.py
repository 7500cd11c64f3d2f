"""Shared defaults of every jgan experiment (DCGAN recipe of Radford et al. 2015).

Every field a run reads is listed here, so ``--config.KEY=VALUE`` overrides are type-checked and a
misspelt key fails at parse time. Experiment files start from ``get_config()`` and change what differs.
"""

import ml_collections


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
  c.model.compute_dtype = "float32"  # float32 | bfloat16 (activations; parameters stay float32)

  c.objective = ml_collections.ConfigDict()
  c.objective.name = "non_saturating"  # see jgan.objectives.OBJECTIVES; its parameters go beside it

  c.optim = ml_collections.ConfigDict()
  c.optim.g = ml_collections.ConfigDict(dict(name="adam", lr=2e-4, b1=0.5, b2=0.999))
  c.optim.d = ml_collections.ConfigDict(dict(name="adam", lr=2e-4, b1=0.5, b2=0.999))
  c.optim.d_clip = 0.0  # WGAN weight clipping of D's parameters (0 = off)
  c.optim.ema_decay = 0.999  # EMA of G's parameters (used for samples and evaluation)

  c.train = ml_collections.ConfigDict()
  c.train.steps = 5000  # G updates
  c.train.batch_size = 64  # global batch per D update
  c.train.n_critic = 1  # D updates per G update
  c.train.steps_per_call = 1  # >1 fuses that many steps into one jitted lax.scan
  c.train.log_every = 50
  c.train.sample_every = 500  # sample grid of fixed z (0 = only at the end)
  c.train.num_samples = 64  # images in a sample grid, or points in a 2-D scatter
  c.train.progress = True  # progress bar

  c.parallel = ml_collections.ConfigDict()
  c.parallel.num_devices = 0  # 0 = all devices

  return c
