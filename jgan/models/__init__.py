"""Model registry: ``MODELS[name](model_config, data_shape, rngs) -> (generator, discriminator)``.

``data_shape`` is one sample's shape: ``(H, W, C)`` for images, ``(2,)`` for 2-D points. Generators map
``z [B, latent_dim]`` to ``[B, *data_shape]``; discriminators map ``[B, *data_shape]`` to raw scores ``[B]``.
"""

from __future__ import annotations

from typing import Callable

import jax.numpy as jnp
from flax import nnx

from jgan.models import autoencoder, dcgan, mlp, spectral

# ``model.compute_dtype`` -> the dtype the layers compute in (None = float32 everywhere). Parameters,
# normalisation statistics, G's outputs and D's scores stay float32 in every case.
COMPUTE_DTYPES = {"float32": None, "bfloat16": jnp.bfloat16}


def compute_dtype(cfg):
  """``cfg.compute_dtype`` (default "float32") as a layer ``dtype``; ValueError listing the valid names."""
  name = cfg.get("compute_dtype", "float32")
  if name not in COMPUTE_DTYPES:
    raise ValueError(f"unknown compute_dtype {name!r}; valid choices: {', '.join(COMPUTE_DTYPES)}")
  return COMPUTE_DTYPES[name]


def _dcgan(cfg, data_shape, rngs: nnx.Rngs):
  if len(data_shape) != 3 or data_shape[0] != data_shape[1]:
    raise ValueError(f"model 'dcgan' needs square images [S, S, C], got data shape {tuple(data_shape)}")
  s, _, c = data_shape
  dtype = compute_dtype(cfg)
  g = dcgan.Generator(image_size=s, channels=c, latent_dim=cfg.latent_dim, width=cfg.g_width, dtype=dtype,
                      rngs=rngs)
  d = dcgan.Discriminator(image_size=s, channels=c, width=cfg.d_width, d_norm=cfg.d_norm, dtype=dtype,
                          rngs=rngs)
  return g, d


def _mlp(cfg, data_shape, rngs: nnx.Rngs):
  dtype = compute_dtype(cfg)
  g = mlp.Generator(data_shape=data_shape, latent_dim=cfg.latent_dim, width=cfg.g_width, depth=cfg.depth,
                    dtype=dtype, rngs=rngs)
  d = mlp.Discriminator(data_shape=data_shape, width=cfg.d_width, depth=cfg.depth, dtype=dtype, rngs=rngs)
  return g, d


MODELS: dict[str, Callable] = {"dcgan": _dcgan, "mlp": _mlp}


def make_models(model_cfg, data_shape: tuple[int, ...], rngs: nnx.Rngs, d_output: str = "logit"):
  """Builds ``(G, D)`` for ``model_cfg.name``; unknown names raise ValueError listing the valid ones.

  ``d_output`` is what the objective needs from D (``Objective.d_output``): ``"logit"`` for the model's
  own discriminator, ``"energy"`` for an auto-encoder D (see :mod:`jgan.models.autoencoder`).
  With ``model_cfg.d_spectral_norm`` every conv/linear layer of D is spectrally normalised; with
  ``model_cfg.pack = m`` D takes ``m`` samples joined along the last axis (PacGAN).
  """
  if model_cfg.name not in MODELS:
    raise ValueError(f"unknown model {model_cfg.name!r}; valid choices: {', '.join(sorted(MODELS))}")
  g, d = MODELS[model_cfg.name](model_cfg, tuple(data_shape), rngs)
  # PacGAN: D sees m samples joined along the last axis (see jgan.step.pack).
  m = model_cfg.get("pack", 1)
  d_shape = tuple(data_shape[:-1]) + (data_shape[-1] * m,)
  if d_output == "energy":
    d = autoencoder.make_autoencoder(model_cfg, d_shape, rngs)
  elif m > 1:
    _, d = MODELS[model_cfg.name](model_cfg, d_shape, rngs)
  if model_cfg.get("d_spectral_norm", False):
    spectral.wrap_layers(d, rngs)
  return g, d
