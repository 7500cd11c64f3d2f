"""R3GAN's config-E networks (Huang, Gokaslan, Kuleshov, Tompkin, NeurIPS 2024; brownvc/R3GAN
``R3GAN/Networks.py``, sizes from its ``train.py`` presets) as Flax NNX modules: model ``r3gan``.

A normalisation-free ResNeXt-style network, the same stages in G and (reversed) in D:

* :class:`ResidualBlock`: ``x + conv1x1(act(gconv3x3(act(conv1x1(x)))))`` with ``C -> 2C`` channels,
  a grouped 3x3 convolution (16 channels per group in the CIFAR-10 / FFHQ tables, 32 in ImageNet's) and
  ``2C -> C``; the last 1x1 convolution starts at zero, so every block starts as the identity. The other
  two are He-initialised with gain ``sqrt(2 / (1 + 0.2^2)) * L^(-1/4)`` for ``L`` blocks in the network
  (fixup-style variance scaling); the biases are the activations' (:mod:`jgan.models.r3gan_layers`).
* G: z (with a learned linear embedding of the one-hot class joined to it, conditional runs) -> a linear
  map times a learned ``bottom x bottom`` basis (``GenerativeBasis``), blocks; each further stage a 1x1
  convolution where the width changes, x2 ``[1, 3, 3, 1]`` up-sampling and blocks; a 1x1 convolution to
  the image channels. No output non-linearity (the reference's G is linear at the end).
* D: a 1x1 convolution from the image channels; per stage blocks, then ``[1, 3, 3, 1]`` down-sampling
  and a 1x1 convolution where the width changes; the last stage ends in a depthwise convolution over the
  whole ``bottom x bottom`` map and a linear layer (``DiscriminativeBasis``) to one score, or, conditional,
  to an embedding whose dot product with the class's learned embedding is the score (projection).

The tables (:data:`ARCHS`, G's stage order; D uses them reversed) are the reference's presets: CIFAR-10
and ImageNet-32 at 32 px, FFHQ-64 and ImageNet-64 at 64 px, FFHQ-256 at 256 px. At 28 px (the digit
sets) a 32 px table runs without its 4x4 stage from a 7x7 basis (7 -> 14 -> 28; D ends in a 7x7
depthwise convolution). ``model.width`` scales every stage's width (the widest stage gets ``width``,
group sizes kept), ``model.blocks`` sets the blocks per stage; 0 keeps the table's.

Parameter counts (G / D), equal to the reference's PyTorch networks instantiated with its presets
(tests/test_models_r3gan.py): FFHQ-256 23,057,952 / 23,009,568 (published 23.06 M / 23.01 M); CIFAR-10
conditional 20,781,952 / 21,280,512, unconditional 20,732,160 / 20,683,776; FFHQ-64 22,429,824 / 22,381,440.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from jgan.models import r3gan_layers as rl
from jgan.models.layers import resolve_layers

EXPANSION = 2  # channels inside a block, relative to the stage width


class Arch(NamedTuple):
  """A reference table: the image side it was made for, and per G stage (lowest resolution first) the
  width, the grouped convolution's groups (cardinality) and the blocks."""

  size: int
  widths: tuple[int, ...]
  groups: tuple[int, ...]
  blocks: tuple[int, ...]


# brownvc/R3GAN train.py: WidthPerStage (3/4 or 6/4 of 1024, ...), CardinalityPerStage, BlocksPerStage.
ARCHS = {
  "cifar10": Arch(32, (768,) * 4, (96,) * 4, (2,) * 4),
  "imagenet32": Arch(32, (1536,) * 4, (96,) * 4, (2,) * 4),
  "ffhq64": Arch(64, (768,) * 4 + (384,), (96,) * 4 + (48,), (2,) * 5),
  "imagenet64": Arch(64, (1536,) * 5, (96,) * 5, (2,) * 5),
  "ffhq256": Arch(256, (768,) * 4 + (384, 192, 96), (96,) * 4 + (48, 24, 12), (2,) * 7),
  # jgan's own, for CPUs (not from the paper): halving widths towards the image, 16 channels per group.
  "small": Arch(32, (128, 128, 64, 32), (16, 16, 8, 4), (1,) * 4),
}
AUTO_ARCH = {28: "cifar10", 32: "cifar10", 64: "ffhq64", 256: "ffhq256"}  # model.arch = "auto"
SIZES = tuple(sorted(AUTO_ARCH))


class Net(NamedTuple):
  """One network's resolved shape: ``bottom`` (side of the first G / last D map) and per G stage the
  width, groups and blocks; ``fast`` picks the layer formulation, ``dtype`` the compute dtype."""

  bottom: int
  widths: tuple[int, ...]
  groups: tuple[int, ...]
  blocks: tuple[int, ...]
  fast: bool
  dtype: object = None


def net_for(cfg, image_size: int) -> Net:
  """The :class:`Net` of model section ``cfg`` (``arch``, ``width``, ``blocks``, ``layers``) at ``image_size``.

  Raises ValueError (one line naming the value and the valid choices) for an unsupported image size, an
  unknown table or one made for another size, or a width / block count the table cannot take.
  """
  if image_size not in AUTO_ARCH:
    raise ValueError(f"data.image_size={image_size!r} is not supported by model 'r3gan'; valid choices: {list(SIZES)}")
  name = cfg.get("arch", "auto")
  if name == "auto":
    name = AUTO_ARCH[image_size]
  if name not in ARCHS:
    raise ValueError(f"unknown model.arch={name!r}; valid choices: auto, {', '.join(ARCHS)}")
  a = ARCHS[name]
  table_size = 32 if image_size == 28 else image_size
  if a.size != table_size:
    choices = ", ".join(n for n, t in ARCHS.items() if t.size == table_size)
    raise ValueError(
      f"model.arch={name!r} is a {a.size} px network; data.image_size={image_size} takes: auto, {choices}"
    )
  widths, groups, blocks = a.widths, a.groups, a.blocks
  if image_size == 28:  # the 32 px table without its 4x4 stage, from a 7x7 basis
    widths, groups, blocks = widths[1:], groups[1:], blocks[1:]
  width, n_blocks = cfg.get("width", 0), cfg.get("blocks", 0)
  for key, v in (("width", width), ("blocks", n_blocks)):
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
      raise ValueError(f"model.{key}={v!r} must be an integer >= 0 (0 = the table's)")
  if width:
    top, per_group = max(a.widths), [EXPANSION * w // g for w, g in zip(widths, groups)]  # group sizes kept

    def fits(v: int) -> bool:
      return all(v * w % top == 0 and EXPANSION * (v * w // top) % p == 0 for w, p in zip(widths, per_group))

    if not fits(width):
      step = next(v for v in range(1, top + 1) if fits(v))
      raise ValueError(
        f"model.width={width} does not fit table {name!r} (widths {list(widths)}, {max(per_group)} channels "
        f"per group): use a multiple of {step}"
      )
    widths = tuple(width * w // top for w in widths)
    groups = tuple(EXPANSION * w // p for w, p in zip(widths, per_group))
  if n_blocks:
    blocks = (n_blocks,) * len(widths)
  fast = resolve_layers(cfg.get("layers", "auto")) == "fast"
  return Net(image_size // 2 ** (len(widths) - 1), widths, groups, blocks, fast)


def check_config(cfg, image_size: int) -> None:
  """:func:`net_for`'s checks alone (``ModelSpec.check``: :func:`jgan.config.validate` runs them)."""
  net_for(cfg, image_size)


class ResidualBlock(nnx.Module):
  """``[B, H, W, C]`` -> same: ``x + conv1x1(act(gconv3x3(act(conv1x1(x)))))`` (module docstring);
  ``scale_blocks`` is L, the network's number of blocks."""

  def __init__(self, c: int, groups: int, scale_blocks: int, net: Net, *, rngs: nnx.Rngs):
    e = EXPANSION * c
    gain = rl.ACTIVATION_GAIN * scale_blocks ** (-1.0 / (2 * 3 - 2))  # 3 linear layers: L^(-1/4)
    conv = functools.partial(rl.Conv, fast=net.fast, dtype=net.dtype, rngs=rngs)
    self.expand = conv(c, e, 1, kernel_init=rl.msr_init(gain))
    self.act1 = rl.BiasedActivation(e, fast=net.fast)
    self.grouped = conv(e, e, 3, groups=groups, kernel_init=rl.msr_init(gain))
    self.act2 = rl.BiasedActivation(e, fast=net.fast)
    self.project = conv(e, c, 1, kernel_init=rl.msr_init(0.0))

  def __call__(self, x: jax.Array) -> jax.Array:
    return x + self.project(self.act2(self.grouped(self.act1(self.expand(x)))))


def _blocks(c: int, groups: int, n: int, total: int, net: Net, rngs: nnx.Rngs) -> nnx.List:
  return nnx.List([ResidualBlock(c, groups, total, net, rngs=rngs) for _ in range(n)])


class Generator(nnx.Module):
  """R3GAN's G: z float32 ``[B, latent_dim]`` (+ y int32 ``[B]`` if conditional) -> ``[B, S, S, channels]``
  float32, unbounded (trained towards images in [-1, 1])."""

  def __init__(self, net: Net, *, channels: int, latent_dim: int, num_classes: int = 0, rngs: nnx.Rngs):
    self.num_classes, self.bottom, self.fast = num_classes, net.bottom, net.fast
    total = sum(net.blocks)
    # Conditional: the one-hot class through a bias-free linear layer (an embedding) of latent_dim, joined to z.
    self.embed = nnx.Embed(num_classes, latent_dim, embedding_init=rl.msr_init(1.0), rngs=rngs) if num_classes else None
    z_in = latent_dim * (2 if num_classes else 1)
    w0 = net.widths[0]
    self.basis = nnx.Param(nnx.initializers.normal(1.0)(rngs.params(), (net.bottom, net.bottom, w0), jnp.float32))
    self.linear = nnx.Linear(z_in, w0, use_bias=False, kernel_init=rl.msr_init(1.0), rngs=rngs)
    conv = functools.partial(rl.Conv, kernel_init=rl.msr_init(1.0), fast=net.fast, dtype=net.dtype, rngs=rngs)
    ins = (w0,) + net.widths
    # Stage i > 0 starts with a 1x1 convolution where the width changes (None: none), then up-sampling.
    self.changes = nnx.List([conv(ins[i], w, 1) if i and ins[i] != w else None for i, w in enumerate(net.widths)])
    self.blocks = nnx.List([_blocks(w, g, n, total, net, rngs) for w, g, n in zip(net.widths, net.groups, net.blocks)])
    self.out = conv(net.widths[-1], channels, 1)

  def __call__(self, z: jax.Array, y: jax.Array | None = None) -> jax.Array:
    if self.num_classes and y is None:
      raise ValueError("a conditional generator needs the class labels y int32 [B]; got y=None")
    if not self.num_classes and y is not None:
      raise ValueError("labels were given but the generator is unconditional (model.conditional=False)")
    if self.embed is not None and y is not None:
      z = jnp.concatenate([z, self.embed(y).astype(z.dtype)], axis=-1)
    h = self.basis[...][None] * self.linear(z)[:, None, None, :]
    for i, (change, blocks) in enumerate(zip(self.changes, self.blocks)):
      if i:
        h = rl.upsample2x(h if change is None else change(h), fast=self.fast)
      for block in blocks:
        h = block(h)
    return self.out(h).astype(jnp.float32)


class Discriminator(nnx.Module):
  """R3GAN's D: images ``[B, S, S, C]`` (+ y int32 ``[B]`` if conditional) -> raw scores float32 ``[B]``."""

  def __init__(self, net: Net, *, channels: int, num_classes: int = 0, rngs: nnx.Rngs):
    self.num_classes, self.fast = num_classes, net.fast
    total = sum(net.blocks)
    widths, groups, blocks = net.widths[::-1], net.groups[::-1], net.blocks[::-1]
    conv = functools.partial(rl.Conv, kernel_init=rl.msr_init(1.0), fast=net.fast, dtype=net.dtype, rngs=rngs)
    self.inp = conv(channels, widths[0], 1)
    self.blocks = nnx.List([_blocks(w, g, n, total, net, rngs) for w, g, n in zip(widths, groups, blocks)])
    # Stage i < last ends with down-sampling, then a 1x1 convolution where the width changes (None: none).
    outs = widths[1:] + widths[-1:]
    self.changes = nnx.List([conv(w, o, 1) if o != w else None for w, o in zip(widths, outs)])
    self.basis = rl.MapDepthwise(widths[-1], net.bottom, fast=net.fast, dtype=net.dtype, rngs=rngs)
    out_dim = widths[-1] if num_classes else 1  # the reference's ConditionEmbeddingDimension = D's last width
    self.linear = nnx.Linear(widths[-1], out_dim, use_bias=False, kernel_init=rl.msr_init(1.0), rngs=rngs)
    # The class embedding: the reference's bias-free linear layer on one-hot y, gain 1 / sqrt(out_dim).
    init = rl.msr_init(out_dim**-0.5)
    self.embed = nnx.Embed(num_classes, out_dim, embedding_init=init, rngs=rngs) if num_classes else None

  def __call__(self, x: jax.Array, y: jax.Array | None = None) -> jax.Array:
    h = self.inp(x)
    last = len(self.blocks) - 1
    for i, (blocks, change) in enumerate(zip(self.blocks, self.changes)):
      for block in blocks:
        h = block(h)
      if i < last:
        h = rl.downsample2x(h, fast=self.fast)
        h = h if change is None else change(h)
    h = self.linear(self.basis(h)).astype(jnp.float32)
    if self.embed is None:
      if y is not None:
        raise ValueError("labels were given but the discriminator is unconditional (model.conditional=False)")
      return h.reshape(x.shape[0])
    if y is None:
      raise ValueError("a conditional discriminator needs the class labels y int32 [B]; got y=None")
    return jnp.sum(h * self.embed(y).astype(jnp.float32), axis=-1)  # the projection


def _image(shape, who: str) -> tuple[int, int]:
  if len(shape) != 3 or shape[0] != shape[1]:
    raise ValueError(f"model 'r3gan' needs square images [S, S, C], got {who} shape {tuple(shape)}")
  return shape[0], shape[2]


def _classes(cfg) -> int:
  return cfg.get("num_classes", 0) if cfg.get("conditional", False) else 0


def generator(cfg, data_shape, rngs: nnx.Rngs, *, dtype=None) -> Generator:
  """The R3GAN G of model section ``cfg`` for ``data_shape`` ``[S, S, C]`` (``dtype``: compute dtype)."""
  size, ch = _image(data_shape, "data")
  net = net_for(cfg, size)._replace(dtype=dtype)
  return Generator(net, channels=ch, latent_dim=cfg.latent_dim, num_classes=_classes(cfg), rngs=rngs)


def discriminator(cfg, input_shape, rngs: nnx.Rngs, *, dtype=None) -> Discriminator:
  """The R3GAN D of ``cfg`` for ``input_shape`` ``[S, S, C]`` (C: image channels times PacGAN's m)."""
  size, ch = _image(input_shape, "input")
  net = net_for(cfg, size)._replace(dtype=dtype)
  return Discriminator(net, channels=ch, num_classes=_classes(cfg), rngs=rngs)
