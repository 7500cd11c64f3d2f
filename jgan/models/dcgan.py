"""DCGAN generator and discriminator (Radford, Metz, Chintala 2015), as Flax NNX modules.

The paper's guidelines, all followed here: strided convolutions instead of pooling (stride-2 4x4
convolutions in D, stride-2 4x4 transposed convolutions in G); BatchNorm in both networks except G's
output and D's input layer; no fully connected hidden layers (G's projection of z is a matmul reshaped
into the first feature map, D's last layer a convolution over the final map); ReLU in G with a tanh
output; LeakyReLU(0.2) in D; weights N(0, 0.02), BatchNorm scale N(1, 0.02); no bias right before
BatchNorm (its gradient is exactly zero and Adam would amplify the noise).

Supported image sizes: 28 (start 7x7, 2 up-samplings), 32 (4x4, 3) and 64 (4x4, 4). Channel widths
follow the paper: the deepest map has ``width * 2**(n_up - 1)`` channels and each up-sampling halves
them, so ``width=64`` at 64 px gives the classic 512-256-128-64 generator.

``dtype`` is the compute dtype of the convolutions, matmuls and activations (``None`` = float32, or
``jnp.bfloat16`` on accelerators). Parameters are always float32, BatchNorm statistics are computed and
kept in float32 (flax promotes the reductions), and G's images and D's logits are returned as float32.

``layers`` (``model.layers``: ``auto`` | ``fast`` | ``native``) picks the formulation of the stride-2
convolutions, BatchNorm and D's last convolution (:mod:`jgan.models.layers`); both sets have the same
parameters and compute the same function, so checkpoints move between them.

BatchNorm uses PyTorch's momentum convention (running = 0.9 running + 0.1 batch, flax momentum 0.9).
D may instead use LayerNorm or no normalisation (``d_norm``), which gradient penalties need: with
BatchNorm, D(x_i) depends on the whole batch, so per-sample input gradients are ill-defined.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jgan.models.layer_sets import LayerSet, layer_set

SUPPORTED_SIZES = {28: 7, 32: 4, 64: 4}  # image size -> spatial size of G's first feature map
NORMS = ("batch", "layer", "none")

_w_init = nnx.initializers.normal(0.02)


def _scale_init(key, shape, dtype=jnp.float32):
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def _n_up(image_size: int) -> int:
  if image_size not in SUPPORTED_SIZES:
    raise ValueError(f"DCGAN does not support image_size={image_size}; valid choices: {sorted(SUPPORTED_SIZES)}")
  s, n = SUPPORTED_SIZES[image_size], 0
  while s < image_size:
    s, n = s * 2, n + 1
  return n


def _bn(ls: LayerSet, c: int, rngs: nnx.Rngs, dtype=None) -> nnx.Module:
  return ls.batch_norm(c, momentum=0.9, epsilon=1e-5, scale_init=_scale_init, dtype=dtype, rngs=rngs)


def _norm(ls: LayerSet, kind: str, c: int, rngs: nnx.Rngs, dtype=None):
  if kind == "batch":
    return _bn(ls, c, rngs, dtype)
  if kind == "layer":
    # Normalises over (H, W, C) per sample, so it is safe with gradient penalties.
    return nnx.LayerNorm(
      c, reduction_axes=(-3, -2, -1), feature_axes=-1, scale_init=_scale_init, dtype=dtype, rngs=rngs
    )
  if kind == "none":
    return None
  raise ValueError(f"unknown normalisation {kind!r}; valid choices: {', '.join(NORMS)}")


class Generator(nnx.Module):
  """DCGAN generator: z [B, latent_dim] float32 ~ N(0, I) -> images [B, S, S, channels] float32 in (-1, 1)."""

  def __init__(
    self,
    *,
    image_size: int = 64,
    channels: int = 3,
    latent_dim: int = 100,
    width: int = 64,
    dtype=None,
    layers: str = "auto",
    rngs: nnx.Rngs,
  ):
    ls = layer_set(layers)
    n_up = _n_up(image_size)
    self.s0 = SUPPORTED_SIZES[image_size]
    self.c0 = width * 2 ** (n_up - 1)
    self.latent_dim = latent_dim
    # The projection of z: the paper's "matrix multiplication reshaped into a 4-D tensor".
    self.project = nnx.Linear(
      latent_dim, self.s0 * self.s0 * self.c0, use_bias=False, kernel_init=_w_init, dtype=dtype, rngs=rngs
    )
    self.bn0 = _bn(ls, self.c0, rngs, dtype)
    ups, bns, c = [], [], self.c0
    for i in range(n_up):
      last = i == n_up - 1
      cout = channels if last else c // 2
      ups.append(ls.up(c, cout, use_bias=last, kernel_init=_w_init, dtype=dtype, rngs=rngs))
      if not last:
        bns.append(_bn(ls, cout, rngs, dtype))
      c = cout
    self.ups = nnx.List(ups)
    self.bns = nnx.List(bns)

  def __call__(self, z: jax.Array) -> jax.Array:
    h = self.project(z).reshape(z.shape[0], self.s0, self.s0, self.c0)
    h = nnx.relu(self.bn0(h))
    for i, up in enumerate(self.ups):
      h = up(h)
      if i < len(self.bns):
        h = nnx.relu(self.bns[i](h))
    return jnp.tanh(h.astype(jnp.float32))


class Discriminator(nnx.Module):
  """DCGAN discriminator: images [B, S, S, channels] in [-1, 1] -> raw scores (logits) [B] float32.

  The stride-2 convolutions are ``nnx.Conv(..., (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))`` or,
  with ``layers="fast"`` (the default on CPU), :class:`jgan.models.layers.DownConv` (same parameters and
  outputs, faster gradients on XLA:CPU); see :func:`jgan.models.layers.resolve_layers`.

  ``d_norm`` picks the normalisation of the hidden layers: ``batch`` (the paper), ``layer`` or ``none``
  (for gradient-penalty critics). The first layer never has one. D runs on the real and the fake batch
  separately, so BatchNorm takes each batch's own mean out of D's features, and with it part of what
  would show D that G draws some classes too often: on Stacked MNIST a LayerNorm D roughly halves the
  KL of G's digit frequencies to uniform (docs/models.md, "Towards 1,000 modes").
  """

  def __init__(
    self,
    *,
    image_size: int = 64,
    channels: int = 3,
    width: int = 64,
    d_norm: str = "batch",
    dtype=None,
    layers: str = "auto",
    rngs: nnx.Rngs,
  ):
    ls = layer_set(layers)
    n_down = _n_up(image_size)
    self.s_final = SUPPORTED_SIZES[image_size]
    convs, norms, c = [], [], channels
    for i in range(n_down):
      cout = width * 2**i
      first = i == 0
      has_norm = not first and d_norm != "none"
      convs.append(
        ls.down(c, cout, use_bias=not has_norm or d_norm != "batch", kernel_init=_w_init, dtype=dtype, rngs=rngs)
      )
      norms.append(None if first else _norm(ls, d_norm, cout, rngs, dtype))
      c = cout
    self.convs = nnx.List(convs)
    self.norms = nnx.List(norms)
    self.feature_dim = c  # channels of features(x) (a projection discriminator reads it)
    # The final "conv over the whole map" (kernel = map size, VALID) is one logit per image; in float32,
    # so the loss sees float32 logits whatever the compute dtype.
    self.out = ls.map_conv(
      c, 1, (self.s_final, self.s_final), padding="VALID", kernel_init=_w_init, dtype=jnp.float32, rngs=rngs
    )

  def features(self, x: jax.Array) -> jax.Array:
    """Penultimate activations [B, s_final, s_final, C] in the compute dtype (before the output conv)."""
    h = x
    for conv, norm in zip(self.convs, self.norms):
      h = conv(h)
      if norm is not None:
        h = norm(h)
      h = nnx.leaky_relu(h, 0.2)
    return h

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.out(self.features(x)).reshape(x.shape[0])
