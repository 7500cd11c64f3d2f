"""The original GAN's multi-layer perceptrons (Goodfellow et al. 2014), as Flax NNX modules.

For 2-D toy data (``data_shape == (2,)``: linear output) and flattened images (``(H, W, C)``: tanh output
reshaped to the image). Hidden layers use ReLU in G and LeakyReLU(0.2) in D (the paper used maxout in D;
LeakyReLU is the common modern stand-in and what the mode-collapse benchmarks' reference code uses).

``dtype`` is the compute dtype of the hidden layers (``None`` = float32, or ``jnp.bfloat16``); parameters
stay float32 and the output layers compute in float32, so samples and scores are float32.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx


class Generator(nnx.Module):
  """z [B, latent_dim] -> samples [B, *data_shape] float32; 2-D points unbounded, images in (-1, 1)."""

  def __init__(
    self,
    *,
    data_shape: tuple[int, ...],
    latent_dim: int = 2,
    width: int = 128,
    depth: int = 2,
    dtype=None,
    rngs: nnx.Rngs,
  ):
    self.data_shape = tuple(data_shape)
    self.latent_dim = latent_dim
    self.is_image = len(self.data_shape) == 3
    sizes = [latent_dim] + [width] * depth
    self.hidden = nnx.List([nnx.Linear(a, b, dtype=dtype, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
    self.out = nnx.Linear(sizes[-1], math.prod(self.data_shape), dtype=jnp.float32, rngs=rngs)

  def __call__(self, z: jax.Array) -> jax.Array:
    h = z
    for layer in self.hidden:
      h = nnx.relu(layer(h))
    x = self.out(h)
    if self.is_image:
      x = jnp.tanh(x)
    return x.reshape((z.shape[0],) + self.data_shape)


class Discriminator(nnx.Module):
  """samples [B, *data_shape] -> raw scores [B] float32."""

  def __init__(self, *, data_shape: tuple[int, ...], width: int = 128, depth: int = 2, dtype=None, rngs: nnx.Rngs):
    sizes = [math.prod(data_shape)] + [width] * depth
    self.hidden = nnx.List([nnx.Linear(a, b, dtype=dtype, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
    self.out = nnx.Linear(sizes[-1], 1, dtype=jnp.float32, rngs=rngs)
    self.feature_dim = sizes[-1]  # size of features(x) (a projection discriminator reads it)

  def features(self, x: jax.Array) -> jax.Array:
    """Last hidden activations [B, width] in the compute dtype."""
    h = x.reshape(x.shape[0], -1)
    for layer in self.hidden:
      h = nnx.leaky_relu(layer(h), 0.2)
    return h

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.out(self.features(x))[:, 0]
