"""Building blocks of the ResNet GANs (:mod:`jgan.models.resnet`: SNGAN; :mod:`jgan.models.biggan`).

* :class:`ConditionalBatchNorm`: BatchNorm whose gain and bias are the layer's own (``"none"``: plain
  BatchNorm), looked up per class (``"class"``: the categorical conditional BatchNorm of Miyato &
  Koyama 2018, gain 1 and bias 0 at the start) or computed from a conditioning vector (``"linear"``:
  BigGAN's ``gain = 1 + W_g c``, ``bias = W_b c``, with ``c`` = [shared class embedding, chunk of z]).
* :class:`GBlock`: G's up-sampling residual block, ``BN-ReLU-up-conv3x3-BN-ReLU-conv3x3`` plus an
  up-sampled 1x1 convolution as the shortcut (Miyato et al. 2018, appendix B; Brock et al. 2019, Fig. 15).
* :class:`DBlock`: D's pre-activation residual block ``ReLU-conv3x3-ReLU-conv3x3[-avgpool]`` with a 1x1
  shortcut when the shape changes, or the "optimised" first block ``conv3x3-ReLU-conv3x3-avgpool`` with
  an ``avgpool-conv1x1`` shortcut (no ReLU on the image).
* :class:`SelfAttention`: the non-local block of SAGAN / BigGAN (1x1 theta, phi, g, o; phi and g
  max-pooled 2x2; ``x + sigma * o(...)`` with ``sigma`` starting at 0, so the block starts as identity).
* :class:`PooledLinear`: D's head, global *sum* pooling then a linear layer to one score.

Every convolution is ``layers.conv`` of the chosen :class:`jgan.models.layer_sets.LayerSet` (``model.layers``:
the fast forms fuse the up-sampling / pooling into the convolution, the native ones are Flax's
``nnx.Conv`` around ``jnp`` resampling; same parameters either way), and every BatchNorm is
``layers.batch_norm``. Spectral normalisation (:class:`jgan.models.spectral.SpectralNorm`, the optimiser
updating the raw weight, ``u`` an ``nnx.BatchStat``) is applied here, per layer, when ``BlockConf.sn``.
BatchNorm uses PyTorch's momentum 0.1 (flax momentum 0.9).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from jgan.models.layer_sets import LayerSet
from jgan.models.spectral import SpectralNorm

NORM_MODES = ("none", "class", "linear")


class BlockConf(NamedTuple):
  """How a network's layers are built: layer set, compute dtype, spectral norm, initialisers, BN epsilon.

  ``init_main`` initialises the 3x3 convolutions of the residual branches; ``init_other`` every other
  weight (shortcuts, linear layers, attention, embeddings except a class BatchNorm's, which start at
  gain 1 and bias 0).
  """

  ls: LayerSet
  dtype: Any
  sn: bool
  init_main: Callable[..., jax.Array]
  init_other: Callable[..., jax.Array]
  eps: float


def spectral(layer: nnx.Module, conf: BlockConf, rngs: nnx.Rngs, param: str = "kernel") -> nnx.Module:
  """``layer`` wrapped in :class:`SpectralNorm` (normalising its ``param``) if ``conf.sn``, else as is."""
  return SpectralNorm(layer, param=param, rngs=rngs) if conf.sn else layer


def conv(cin: int, cout: int, k: int, conf: BlockConf, rngs: nnx.Rngs, *, init=None, **kw) -> nnx.Module:
  """A stride-1 'SAME' k x k convolution of ``conf``'s layer set (``kw``: resample, use_bias)."""
  layer = conf.ls.conv(cin, cout, k, kernel_init=init or conf.init_other, dtype=conf.dtype, rngs=rngs, **kw)
  return spectral(layer, conf, rngs)


class ConditionalBatchNorm(nnx.Module):
  """BatchNorm over ``[B, H, W, C]`` with a per-example gain and bias (see the module docstring).

  ``mode="class"``: ``cond`` int32 ``[B]`` in ``[0, num_classes)``; ``mode="linear"``: ``cond`` float32
  ``[B, cond_dim]``; ``mode="none"``: ``cond`` is ignored. Output ``[B, H, W, C]`` in the compute dtype.
  """

  def __init__(
    self, c: int, conf: BlockConf, *, mode: str = "none", num_classes: int = 0, cond_dim: int = 0, rngs: nnx.Rngs
  ):
    if mode not in NORM_MODES:
      raise ValueError(f"unknown conditional BatchNorm mode {mode!r}; valid choices: {', '.join(NORM_MODES)}")
    self.mode = mode
    affine = mode == "none"  # the conditional modes bring their own gain and bias
    self.bn = conf.ls.batch_norm(
      c, use_scale=affine, use_bias=affine, momentum=0.9, epsilon=conf.eps, dtype=conf.dtype, rngs=rngs
    )
    gain: nnx.Module | None = None
    bias: nnx.Module | None = None
    if mode == "class":  # Miyato & Koyama's CategoricalConditionalBatchNormalization: gamma 1, beta 0
      gain = nnx.Embed(num_classes, c, embedding_init=nnx.initializers.ones, rngs=rngs)
      bias = nnx.Embed(num_classes, c, embedding_init=nnx.initializers.zeros, rngs=rngs)
    elif mode == "linear":  # BigGAN: no bias in these linear layers; the gain is 1 + W_g c
      lin = lambda: nnx.Linear(cond_dim, c, use_bias=False, kernel_init=conf.init_other, dtype=conf.dtype, rngs=rngs)
      gain, bias = spectral(lin(), conf, rngs), spectral(lin(), conf, rngs)
    self.gain, self.bias = gain, bias

  def __call__(self, x: jax.Array, cond: jax.Array | None = None) -> jax.Array:
    h = self.bn(x)
    if self.gain is None or self.bias is None:
      return h
    if cond is None:
      raise ValueError(f"a conditional BatchNorm (mode={self.mode!r}) needs its conditioning input; got None")
    gain, bias = self.gain(cond), self.bias(cond)
    if self.mode == "linear":
      gain = 1.0 + gain
    return h * gain[:, None, None, :].astype(h.dtype) + bias[:, None, None, :].astype(h.dtype)


class GBlock(nnx.Module):
  """G's residual block: ``[B, H, W, cin]`` -> ``[B, 2H, 2W, cout]`` (nearest-neighbour up-sampling).

  ``residual = conv3x3(ReLU(BN(conv3x3(up(ReLU(BN(x)))))))``, ``shortcut = conv1x1(up(x))``; the
  BatchNorms are :class:`ConditionalBatchNorm` with ``norm`` (``mode``, ``num_classes``, ``cond_dim``).
  """

  def __init__(self, cin: int, cout: int, conf: BlockConf, *, norm: dict, rngs: nnx.Rngs):
    self.bn1 = ConditionalBatchNorm(cin, conf, **norm, rngs=rngs)
    self.c1 = conv(cin, cout, 3, conf, rngs, init=conf.init_main, resample="up")
    self.bn2 = ConditionalBatchNorm(cout, conf, **norm, rngs=rngs)
    self.c2 = conv(cout, cout, 3, conf, rngs, init=conf.init_main)
    self.shortcut = conv(cin, cout, 1, conf, rngs, resample="up")

  def __call__(self, x: jax.Array, cond: jax.Array | None = None) -> jax.Array:
    h = self.c1(nnx.relu(self.bn1(x, cond)))
    h = self.c2(nnx.relu(self.bn2(h, cond)))
    return h + self.shortcut(x)


class DBlock(nnx.Module):
  """D's residual block: ``[B, H, W, cin]`` -> ``[B, H', W', cout]`` (``H' = H / 2`` if ``down``).

  Plain: ``residual = [pool](conv3x3(ReLU(conv3x3(ReLU(x)))))`` through ``hidden`` channels, shortcut
  ``[pool](conv1x1(x))`` if the shape changes, else ``x``. ``first`` (the "optimised" block on the image,
  always down-sampling): ``residual = pool(conv3x3(ReLU(conv3x3(x))))``, ``shortcut = conv1x1(pool(x))``.
  """

  def __init__(
    self, cin: int, cout: int, conf: BlockConf, *, hidden: int, down: bool, first: bool = False, rngs: nnx.Rngs
  ):
    self.first = first
    down = down or first
    hidden = cout if first else hidden
    resample = "down" if down else None
    self.c1 = conv(cin, hidden, 3, conf, rngs, init=conf.init_main)
    self.c2 = conv(hidden, cout, 3, conf, rngs, init=conf.init_main, resample=resample)
    self.shortcut = conv(cin, cout, 1, conf, rngs, resample=resample) if (first or down or cin != cout) else None

  def __call__(self, x: jax.Array) -> jax.Array:
    h = self.c2(nnx.relu(self.c1(x if self.first else nnx.relu(x))))
    return h + (x if self.shortcut is None else self.shortcut(x))


def _max_pool2x(x: jax.Array) -> jax.Array:
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class SelfAttention(nnx.Module):
  """Non-local block ``[B, H, W, C]`` -> ``[B, H, W, C]`` (H, W even; C divisible by 8).

  ``theta = conv1x1(x)`` (C/8), ``phi = maxpool(conv1x1(x))`` (C/8), ``g = maxpool(conv1x1(x))`` (C/2),
  ``beta = softmax(theta phi^T)`` over the HW/4 pooled positions, ``out = x + sigma conv1x1(beta g)``;
  the four 1x1 convolutions have no bias and ``sigma`` (a scalar) starts at 0.
  """

  def __init__(self, c: int, conf: BlockConf, *, rngs: nnx.Rngs):
    if c % 8:
      raise ValueError(f"self-attention needs a channel count divisible by 8, got {c}")
    self.theta = conv(c, c // 8, 1, conf, rngs, use_bias=False)
    self.phi = conv(c, c // 8, 1, conf, rngs, use_bias=False)
    self.g = conv(c, c // 2, 1, conf, rngs, use_bias=False)
    self.o = conv(c // 2, c, 1, conf, rngs, use_bias=False)
    self.sigma = nnx.Param(jnp.zeros((), jnp.float32))

  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    if h % 2 or w % 2:
      raise ValueError(f"self-attention max-pools 2x2 and needs even sizes, got {h}x{w}")
    theta = self.theta(x).reshape(b, h * w, c // 8)
    phi = _max_pool2x(self.phi(x)).reshape(b, h * w // 4, c // 8)
    beta = jax.nn.softmax(jnp.einsum("bqc,bkc->bqk", theta, phi).astype(jnp.float32), axis=-1).astype(x.dtype)
    g = _max_pool2x(self.g(x)).reshape(b, h * w // 4, c // 2)
    o = self.o(jnp.einsum("bqk,bkc->bqc", beta, g).reshape(b, h, w, c // 2))
    return x + self.sigma[...].astype(o.dtype) * o


class PooledLinear(nnx.Module):
  """D's head: features ``[B, H, W, C]`` -> global sum over H, W -> linear -> scores float32 ``[B, 1]``."""

  def __init__(self, c: int, conf: BlockConf, *, rngs: nnx.Rngs):
    self.linear = spectral(nnx.Linear(c, 1, kernel_init=conf.init_other, dtype=jnp.float32, rngs=rngs), conf, rngs)

  def __call__(self, h: jax.Array) -> jax.Array:
    return self.linear(jnp.sum(h.astype(jnp.float32), axis=(1, 2)))
