"""Auto-encoder discriminators for energy-based objectives (EBGAN, BEGAN).

D maps a batch ``[B, *data_shape]`` to ``{"energy": float32 [B] >= 0, "code": float32 [B, code_dim]}``:
the energy is the per-sample reconstruction error, averaged over pixels/coordinates so its scale does
not depend on the image size — ``"l2"`` (mean squared error, EBGAN) or ``"l1"`` (mean absolute error,
BEGAN) — and the code is the encoder's output (EBGAN's pull-away term acts on it).

The DCGAN variant encodes with DCGAN D's convolution stack and decodes with DCGAN G's up-sampling stack;
the MLP variant uses MLPs both ways.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jgan.models import dcgan, mlp

ENERGIES = ("l1", "l2")


def _energy(x: jax.Array, rec: jax.Array, kind: str) -> jax.Array:
  diff = (rec - x).reshape(x.shape[0], -1).astype(jnp.float32)
  return jnp.mean(jnp.abs(diff), axis=1) if kind == "l1" else jnp.mean(diff * diff, axis=1)


def _check_energy(kind: str) -> None:
  if kind not in ENERGIES:
    raise ValueError(f"unknown model.ae_energy={kind!r}; valid choices: {', '.join(ENERGIES)}")


class DCGANAutoEncoder(nnx.Module):
  """images [B, S, S, C] in [-1, 1] -> {"energy": [B], "code": [B, code_dim]}."""

  def __init__(
    self,
    *,
    image_size: int,
    channels: int,
    width: int = 64,
    code_dim: int = 64,
    d_norm: str = "batch",
    energy: str = "l2",
    rngs: nnx.Rngs,
  ):
    _check_energy(energy)
    self.energy_kind = energy
    self.encoder = dcgan.Discriminator(image_size=image_size, channels=channels, width=width, d_norm=d_norm, rngs=rngs)
    s = dcgan.SUPPORTED_SIZES[image_size]
    enc_c = self.encoder.feature_dim
    # Replace D's logit head by a linear code layer over the final feature map.
    self.encoder.out = None  # type: ignore[assignment]  # the logit head is replaced by to_code
    self.to_code = nnx.Linear(s * s * enc_c, code_dim, rngs=rngs)
    self.decoder = dcgan.Generator(
      image_size=image_size, channels=channels, latent_dim=code_dim, width=width, rngs=rngs
    )

  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    code = self.to_code(self.encoder.features(x).reshape(x.shape[0], -1))
    rec = self.decoder(code)
    return {"energy": _energy(x, rec, self.energy_kind), "code": code.astype(jnp.float32)}


class MLPAutoEncoder(nnx.Module):
  """samples [B, *data_shape] -> {"energy": [B], "code": [B, code_dim]} with MLP encoder and decoder."""

  def __init__(
    self,
    *,
    data_shape: tuple[int, ...],
    width: int = 128,
    depth: int = 2,
    code_dim: int = 16,
    energy: str = "l2",
    rngs: nnx.Rngs,
  ):
    _check_energy(energy)
    self.energy_kind = energy
    self.encoder = mlp.Discriminator(data_shape=data_shape, width=width, depth=depth, rngs=rngs)
    self.encoder.out = nnx.Linear(width, code_dim, rngs=rngs)
    self.decoder = mlp.Generator(data_shape=data_shape, latent_dim=code_dim, width=width, depth=depth, rngs=rngs)
    self.numel = math.prod(data_shape)

  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    code = self.encoder.out(self.encoder.features(x))
    rec = self.decoder(code)
    return {"energy": _energy(x, rec, self.energy_kind), "code": code.astype(jnp.float32)}


def dcgan_autoencoder(cfg, input_shape: tuple[int, ...], rngs: nnx.Rngs) -> DCGANAutoEncoder:
  """The DCGAN-stack auto-encoder D for D's ``input_shape`` ``(S, S, C)`` (model ``dcgan``'s fields)."""
  s, _, c = input_shape
  return DCGANAutoEncoder(
    image_size=s,
    channels=c,
    width=cfg.d_width,
    code_dim=cfg.ae_code_dim,
    d_norm=cfg.d_norm,
    energy=cfg.ae_energy,
    rngs=rngs,
  )


def mlp_autoencoder(cfg, input_shape: tuple[int, ...], rngs: nnx.Rngs) -> MLPAutoEncoder:
  """The MLP auto-encoder D for D's ``input_shape`` (model ``mlp``'s fields)."""
  return MLPAutoEncoder(
    data_shape=input_shape,
    width=cfg.d_width,
    depth=cfg.depth,
    code_dim=cfg.ae_code_dim,
    energy=cfg.ae_energy,
    rngs=rngs,
  )
