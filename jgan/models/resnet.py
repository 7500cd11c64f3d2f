"""ResNet GANs as Flax NNX modules: the SNGAN generator and discriminator (Miyato et al. 2018), class
conditioning by conditional BatchNorm and a projection discriminator (Miyato & Koyama 2018).

:class:`Generator` and :class:`Discriminator` are generic stacks of :mod:`jgan.models.resnet_blocks`;
this module's tables give the SNGAN architectures (model ``resnet``) and :mod:`jgan.models.biggan` the
BigGAN ones (model ``biggan``). The SNGAN tables follow Mimicry's ``sngan_32/48/64/128`` (Lee & Town
2020), which follow the authors' Chainer code (pfnet-research/sngan_projection), with the Chainer
code's nearest-neighbour up-sampling (Mimicry uses bilinear):

* 32 px (CIFAR-10): z (128) -> linear -> 4x4x``g_width`` (256), three up-blocks of ``g_width`` channels,
  BN-ReLU-conv3x3-tanh. D (``d_width`` 128): optimised block (down), block (down), two plain blocks,
  ReLU, global sum pooling, linear; spectral norm on every D layer.
* 48 / 64 / 128 px: Mimicry's widths ``g_width >> k`` / ``d_width >> k`` (1024 at 64 and 128 px, G 512
  and D 1024 at 48 px), starting at 6x6 (48 px) or 4x4.
* 28 px (MNIST): the 32 px layout from a 7x7 map with two up-blocks; D as at 32 px (28 -> 14 -> 7).

``g_width`` / ``d_width`` = 0 picks those reference widths (the 28 px one is the 32 px one).

Class conditioning (``num_classes > 0``): every G BatchNorm has a per-class gain and bias (starting at
1 and 0), and ``D(x, y) = linear(sum phi(x)) + <embed(y), sum phi(x)>`` with a spectrally normalised,
Glorot-initialised class embedding (as the authors' ``SNEmbedID``). Weights start Glorot-uniform, gain
sqrt(2) in the residual branches and 1 elsewhere; biases zero; BatchNorm epsilon 1e-5 (Mimicry's).
D is always spectrally normalised, layer by layer (``model.d_spectral_norm`` adds nothing). As in the
references, G's linear layer and the first convolution of each block keep their biases although a
BatchNorm follows (the normalisation removes them, and their gradient is zero up to rounding): the
published parameter counts include them.

Parameter counts of the CIFAR-10 models (G / D): conditional (10 classes) 4,304,387 / 1,055,105, equal
to PyTorch-StudioGAN's logged SNGAN-CIFAR10 counts; unconditional 4,276,739 / 1,053,825, the same less
the class parameters (see ``tests/test_models_resnet.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from jgan.models import resnet_blocks as rb
from jgan.models.layer_sets import layer_set


class GArch(NamedTuple):
  """G's shape: ``bottom`` x ``bottom`` first map, block ``i`` maps ``ins[i]`` -> ``outs[i]`` channels."""

  bottom: int
  ins: tuple[int, ...]
  outs: tuple[int, ...]


class DArch(NamedTuple):
  """D's shape: block ``i`` maps ``ins[i]`` -> ``outs[i]`` channels through ``hidden[i]``, halving the
  map if ``down[i]``; block 0 is the optimised first block (``ins[0]`` = image channels, filled in)."""

  ins: tuple[int, ...]
  outs: tuple[int, ...]
  hidden: tuple[int, ...]
  down: tuple[bool, ...]


def g_resolutions(arch: GArch) -> list[int]:
  """The side of each G block's output map."""
  return [arch.bottom * 2 ** (i + 1) for i in range(len(arch.ins))]


def d_resolutions(image_size: int, arch: DArch) -> list[int]:
  """The side of each D block's output map."""
  out, s = [], image_size
  for d in arch.down:
    s = s // 2 if d else s
    out.append(s)
  return out


class Generator(nnx.Module):
  """ResNet G: z float32 ``[B, latent_dim]`` (+ y int32 ``[B]`` if conditional) -> ``[B, S, S, channels]``
  float32 in (-1, 1), ``S = bottom * 2**len(blocks)``.

  ``hierarchical`` (BigGAN): z is split into ``len(blocks) + 1`` equal chunks; the first goes through the
  linear layer, chunk ``i + 1`` conditions block ``i``'s BatchNorms (``"linear"`` mode), joined after the
  shared class embedding ``[shared(y), chunk]`` (``shared_dim``) when conditional. Otherwise all of z
  goes through the linear layer and the BatchNorms are per-class (``"class"``) or plain (``"none"``).
  ``attn_after``: index of the block followed by a :class:`~jgan.models.resnet_blocks.SelfAttention`.
  """

  def __init__(
    self,
    arch: GArch,
    conf: rb.BlockConf,
    *,
    channels: int,
    latent_dim: int,
    num_classes: int = 0,
    hierarchical: bool = False,
    shared_dim: int = 0,
    attn_after: int | None = None,
    rngs: nnx.Rngs,
  ):
    n = len(arch.ins)
    self.bottom, self.c0, self.num_classes, self.hierarchical = arch.bottom, arch.ins[0], num_classes, hierarchical
    shared = None
    if hierarchical:
      if latent_dim % (n + 1):
        raise ValueError(
          f"model.latent_dim={latent_dim} must split into {n + 1} equal chunks (one for the input layer, one "
          f"per G block) at this image size; e.g. {(n + 1) * max(1, latent_dim // (n + 1))}"
        )
      self.chunk = latent_dim // (n + 1)
      if num_classes:  # BigGAN's shared class embedding (not spectrally normalised)
        shared = nnx.Embed(num_classes, shared_dim, embedding_init=conf.init_other, rngs=rngs)
      norm = dict(mode="linear", cond_dim=self.chunk + (shared_dim if num_classes else 0))
      z_in = self.chunk
    else:
      norm = dict(mode="class", num_classes=num_classes) if num_classes else dict(mode="none")
      z_in = latent_dim
    self.shared = shared
    lin = nnx.Linear(z_in, arch.bottom**2 * arch.ins[0], kernel_init=conf.init_other, dtype=conf.dtype, rngs=rngs)
    self.linear = rb.spectral(lin, conf, rngs)
    blocks: list[nnx.Module] = []
    for i, (cin, cout) in enumerate(zip(arch.ins, arch.outs)):
      blocks.append(rb.GBlock(cin, cout, conf, norm=norm, rngs=rngs))
      if i == attn_after:
        blocks.append(rb.SelfAttention(cout, conf, rngs=rngs))
    self.blocks = nnx.List(blocks)
    self.bn = conf.ls.batch_norm(arch.outs[-1], momentum=0.9, epsilon=conf.eps, dtype=conf.dtype, rngs=rngs)
    self.out = rb.conv(arch.outs[-1], channels, 3, conf, rngs)

  def __call__(self, z: jax.Array, y: jax.Array | None = None) -> jax.Array:
    if self.num_classes and y is None:
      raise ValueError("a conditional generator needs the class labels y int32 [B]; got y=None")
    if not self.num_classes and y is not None:
      raise ValueError("labels were given but the generator is unconditional (model.conditional=False)")
    b = z.shape[0]
    conds: list = []
    if self.hierarchical:
      zs = [z[:, i * self.chunk : (i + 1) * self.chunk] for i in range(z.shape[1] // self.chunk)]
      z = zs[0]
      shared = None if self.shared is None or y is None else self.shared(y).astype(z.dtype)
      conds = [c if shared is None else jnp.concatenate([shared, c], axis=-1) for c in zs[1:]]
    h = self.linear(z).reshape(b, self.bottom, self.bottom, self.c0)
    i = 0
    for block in self.blocks:
      if isinstance(block, rb.SelfAttention):
        h = block(h)
      else:
        h = block(h, conds[i] if self.hierarchical else y)
        i += 1
    h = self.out(nnx.relu(self.bn(h)))
    return jnp.tanh(h.astype(jnp.float32))


class Discriminator(nnx.Module):
  """ResNet D with spectral norm on every layer: images ``[B, S, S, C]`` in [-1, 1] (+ y int32 ``[B]`` if
  conditional) -> raw scores float32 ``[B]``.

  ``D(x) = out(features(x))`` (``out``: sum pooling + linear); conditional: plus the projection
  ``<embed(y), sum_{h,w} features(x)>`` (Miyato & Koyama 2018, eq. 3). ``attn_after``: index of the block
  followed by a self-attention block.
  """

  def __init__(
    self, arch: DArch, conf: rb.BlockConf, *, num_classes: int = 0, attn_after: int | None = None, rngs: nnx.Rngs
  ):
    blocks: list[nnx.Module] = []
    for i, (cin, cout, hid, down) in enumerate(zip(arch.ins, arch.outs, arch.hidden, arch.down)):
      blocks.append(rb.DBlock(cin, cout, conf, hidden=hid, down=down, first=i == 0, rngs=rngs))
      if i == attn_after:
        blocks.append(rb.SelfAttention(cout, conf, rngs=rngs))
    self.blocks = nnx.List(blocks)
    self.feature_dim = arch.outs[-1]  # channels of features(x)
    self.num_classes = num_classes
    self.out = rb.PooledLinear(self.feature_dim, conf, rngs=rngs)
    embed = None
    if num_classes:
      emb = nnx.Embed(num_classes, self.feature_dim, embedding_init=conf.init_other, rngs=rngs)
      embed = rb.spectral(emb, conf, rngs, param="embedding")
    self.embed = embed

  def features(self, x: jax.Array) -> jax.Array:
    """The last block's activations after the final ReLU, ``[B, s, s, feature_dim]`` (before pooling)."""
    h = x
    for block in self.blocks:
      h = block(h)
    return nnx.relu(h)

  def __call__(self, x: jax.Array, y: jax.Array | None = None) -> jax.Array:
    h = self.features(x)
    score = self.out(h).reshape(x.shape[0])
    if self.embed is None:
      if y is not None:
        raise ValueError("labels were given but the discriminator is unconditional (model.conditional=False)")
      return score
    if y is None:
      raise ValueError("a conditional discriminator needs the class labels y int32 [B]; got y=None")
    pooled = jnp.sum(h.astype(jnp.float32), axis=(1, 2))
    return score + jnp.sum(self.embed(y).astype(jnp.float32) * pooled, axis=-1)


# --- SNGAN (model "resnet") ---
# image size -> (bottom, G (in, out) shifts of g_width, D (in, out) shifts of d_width with down-sampling);
# channels are width >> shift (Mimicry's ngf >> k); D's hidden channels are its block's input channels.
_SNGAN = {
  28: (7, [(0, 0)] * 2, [(None, 0, True), (0, 0, True), (0, 0, False), (0, 0, False)]),
  32: (4, [(0, 0)] * 3, [(None, 0, True), (0, 0, True), (0, 0, False), (0, 0, False)]),
  48: (6, [(0, 1), (1, 2), (2, 3)], [(None, 4, True), (4, 3, True), (3, 2, True), (2, 1, True), (1, 0, False)]),
  64: (4, [(0, 1), (1, 2), (2, 3), (3, 4)], [(None, 4, True), (4, 3, True), (3, 2, True), (2, 1, True), (1, 0, True)]),
  128: (
    4,
    [(0, 0), (0, 1), (1, 2), (2, 3), (3, 4)],
    [(None, 4, True), (4, 3, True), (3, 2, True), (2, 1, True), (1, 0, True), (0, 0, False)],
  ),
}
SNGAN_SIZES = tuple(sorted(_SNGAN))
# Reference (g_width, d_width) per image size: Mimicry's ngf / ndf defaults (28 px: the 32 px ones).
SNGAN_WIDTHS = {28: (256, 128), 32: (256, 128), 48: (512, 1024), 64: (1024, 1024), 128: (1024, 1024)}
# Glorot-uniform with gain sqrt(2) (variance scale 2) in the residual branches, gain 1 elsewhere.
_XAVIER = nnx.initializers.variance_scaling(1.0, "fan_avg", "uniform")
_XAVIER_RELU = nnx.initializers.variance_scaling(2.0, "fan_avg", "uniform")


def image_shape(data_shape, model: str, sizes) -> tuple[int, int]:
  """``(S, C)`` of square image data ``[S, S, C]``; ValueError naming a bad shape or size and the choices."""
  if len(data_shape) != 3 or data_shape[0] != data_shape[1]:
    raise ValueError(f"model {model!r} needs square images [S, S, C], got data shape {tuple(data_shape)}")
  if data_shape[0] not in sizes:
    raise ValueError(
      f"data.image_size={data_shape[0]!r} is not supported by model {model!r}; valid choices: {sorted(sizes)}"
    )
  return data_shape[0], data_shape[2]


def check_width(name: str, value, reference: int) -> int:
  """A width field: 0 -> ``reference``; a positive int as is; anything else a ValueError."""
  if isinstance(value, bool) or not isinstance(value, int) or value < 0:
    raise ValueError(f"model.{name}={value!r} must be an integer >= 0 (0 = the reference width {reference})")
  return value or reference


def block_conf(cfg, dtype, *, sn: bool, init_main, init_other, eps: float) -> rb.BlockConf:
  """The :class:`~jgan.models.resnet_blocks.BlockConf` of a model section: its layer set
  (``cfg.layers``), compute ``dtype`` (None = float32) and the given settings."""
  return rb.BlockConf(layer_set(cfg.get("layers", "auto")), dtype, sn, init_main, init_other, eps)


def num_classes(cfg) -> int:
  """``cfg.num_classes`` if ``cfg.conditional``, else 0."""
  return cfg.get("num_classes", 0) if cfg.get("conditional", False) else 0


def _sngan_widths(cfg, size: int) -> tuple[int, int]:
  g_ref, d_ref = SNGAN_WIDTHS[size]
  return check_width("g_width", cfg.g_width, g_ref), check_width("d_width", cfg.d_width, d_ref)


def _shifted(width: int, shift: int, who: str) -> int:
  c = width >> shift
  if c < 1:
    raise ValueError(f"model.{who}={width} is too small for this image size (a block would have {c} channels)")
  return c


def sngan_generator(cfg, data_shape, rngs: nnx.Rngs, *, dtype=None) -> Generator:
  """The SNGAN G of ``cfg`` (model section) for ``data_shape`` ``[S, S, C]`` (module docstring);
  ``dtype``: the compute dtype (None = float32)."""
  size, ch = image_shape(data_shape, "resnet", _SNGAN)
  gw, _ = _sngan_widths(cfg, size)
  bottom, g, _ = _SNGAN[size]
  arch = GArch(bottom, tuple(_shifted(gw, a, "g_width") for a, _ in g), tuple(_shifted(gw, b, "g_width") for _, b in g))
  conf = block_conf(cfg, dtype, sn=False, init_main=_XAVIER_RELU, init_other=_XAVIER, eps=1e-5)
  return Generator(arch, conf, channels=ch, latent_dim=cfg.latent_dim, num_classes=num_classes(cfg), rngs=rngs)


def sngan_discriminator(cfg, input_shape, rngs: nnx.Rngs, *, dtype=None) -> Discriminator:
  """The SNGAN D of ``cfg`` for ``input_shape`` ``[S, S, C]`` (module docstring)."""
  size, ch = image_shape(input_shape, "resnet", _SNGAN)
  _, dw = _sngan_widths(cfg, size)
  _, _, d = _SNGAN[size]
  ins = tuple(ch if a is None else _shifted(dw, a, "d_width") for a, _, _ in d)
  outs = tuple(_shifted(dw, b, "d_width") for _, b, _ in d)
  arch = DArch(ins, outs, ins, tuple(down for _, _, down in d))  # hidden = the block's input channels
  conf = block_conf(cfg, dtype, sn=True, init_main=_XAVIER_RELU, init_other=_XAVIER, eps=1e-5)
  return Discriminator(arch, conf, num_classes=num_classes(cfg), rngs=rngs)
