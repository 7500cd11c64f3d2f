"""Parameter counts of R3GAN's reference networks, from the reference's own structure (no jgan code).

Written from brownvc/R3GAN (commit 19a7ddf): ``R3GAN/Networks.py`` (the module tree), ``R3GAN/FusedOperators.py``
(``BiasedActivation``: one bias per channel), ``R3GAN/Resamplers.py`` (the low-pass kernel is a buffer, not a
parameter) and ``train.py`` (the presets, typed in below with the reference's own expressions). Every module
is counted as PyTorch counts ``sum(p.numel() for p in module.parameters())``:

* ``nn.Conv2d(cin, cout, k, groups=g, bias=False)``: ``cout * (cin / g) * k * k``;
* ``nn.Linear(din, dout, bias=False)``: ``din * dout``;
* ``BiasedActivation(c)``: ``c``; ``GenerativeBasis(din, c)``: ``c * 4 * 4`` (the basis) + ``din * c``;
* ``DiscriminativeBasis(c, dout)``: a depthwise 4x4 conv (``c * 1 * 4 * 4``) + ``c * dout``.

Run ``python -m tests.reference.r3gan_counts`` to print the table; tests/test_models_r3gan.py compares jgan's
networks with it. The reference's networks take and give 3-channel images (``Convolution(3, ...)``).
"""

from __future__ import annotations

# The presets of brownvc/R3GAN train.py, as written there (G's stage order; D takes them reversed).
PRESETS = {
  "CIFAR10": dict(
    WidthPerStage=[3 * x // 4 for x in [1024, 1024, 1024, 1024]],
    BlocksPerStage=[2 * x for x in [1, 1, 1, 1]],
    CardinalityPerStage=[3 * x for x in [32, 32, 32, 32]],
    NoiseDimension=64,
  ),
  "FFHQ-64": dict(
    WidthPerStage=[3 * x // 4 for x in [1024, 1024, 1024, 1024, 512]],
    BlocksPerStage=[2 * x for x in [1, 1, 1, 1, 1]],
    CardinalityPerStage=[3 * x for x in [32, 32, 32, 32, 16]],
    NoiseDimension=64,
  ),
  "FFHQ-256": dict(
    WidthPerStage=[3 * x // 4 for x in [1024, 1024, 1024, 1024, 512, 256, 128]],
    BlocksPerStage=[2 * x for x in [1, 1, 1, 1, 1, 1, 1]],
    CardinalityPerStage=[3 * x for x in [32, 32, 32, 32, 16, 8, 4]],
    NoiseDimension=64,
  ),
  "ImageNet-32": dict(
    WidthPerStage=[6 * x // 4 for x in [1024, 1024, 1024, 1024]],
    BlocksPerStage=[2 * x for x in [1, 1, 1, 1]],
    CardinalityPerStage=[3 * x for x in [32, 32, 32, 32]],
    NoiseDimension=64,
  ),
  "ImageNet-64": dict(
    WidthPerStage=[6 * x // 4 for x in [1024, 1024, 1024, 1024, 1024]],
    BlocksPerStage=[2 * x for x in [1, 1, 1, 1, 1]],
    CardinalityPerStage=[3 * x for x in [32, 32, 32, 32, 32]],
    NoiseDimension=64,
  ),
}
EXPANSION_FACTOR = 2  # c.G_kwargs.ExpansionFactor = c.D_kwargs.ExpansionFactor = 2
KERNEL_SIZE = 3  # Generator / Discriminator default KernelSize


def conv2d(cin: int, cout: int, k: int, groups: int = 1) -> int:
  assert cin % groups == 0 and cout % groups == 0
  return cout * (cin // groups) * k * k


def linear(din: int, dout: int) -> int:
  return din * dout


def residual_block(c: int, cardinality: int) -> int:
  e = c * EXPANSION_FACTOR
  layers = conv2d(c, e, 1) + conv2d(e, e, KERNEL_SIZE, cardinality) + conv2d(e, c, 1)
  return layers + 2 * e  # NonLinearity1, NonLinearity2: BiasedActivation(e)


def resample_layer(cin: int, cout: int) -> int:
  """UpsampleLayer / DownsampleLayer: a 1x1 Convolution only where the width changes (kernel: a buffer)."""
  return conv2d(cin, cout, 1) if cin != cout else 0


def generator(WidthPerStage, BlocksPerStage, CardinalityPerStage, NoiseDimension, c_dim: int = 0) -> int:
  """R3GAN.Networks.Generator; conditional (``c_dim > 0``): ConditionEmbeddingDimension = NoiseDimension."""
  w, b, g = WidthPerStage, BlocksPerStage, CardinalityPerStage
  embed = NoiseDimension if c_dim else 0
  n = 4 * 4 * w[0] + linear(NoiseDimension + embed, w[0])  # stage 0's GenerativeBasis
  n += b[0] * residual_block(w[0], g[0])
  for x in range(len(w) - 1):  # GeneratorStage(w[x], w[x + 1], g[x + 1], b[x + 1], ...)
    n += resample_layer(w[x], w[x + 1]) + b[x + 1] * residual_block(w[x + 1], g[x + 1])
  n += conv2d(w[-1], 3, 1)  # AggregationLayer
  if c_dim:
    n += linear(c_dim, embed)  # EmbeddingLayer
  return n


def discriminator(WidthPerStage, BlocksPerStage, CardinalityPerStage, NoiseDimension, c_dim: int = 0) -> int:
  """R3GAN.Networks.Discriminator with the reversed G lists (train.py); conditional:
  ConditionEmbeddingDimension = G's WidthPerStage[0]."""
  del NoiseDimension
  w, b, g = WidthPerStage[::-1], BlocksPerStage[::-1], CardinalityPerStage[::-1]
  out = WidthPerStage[0] if c_dim else 1
  n = conv2d(3, w[0], 1)  # ExtractionLayer
  for x in range(len(w) - 1):  # DiscriminatorStage(w[x], w[x + 1], g[x], b[x], ...)
    n += b[x] * residual_block(w[x], g[x]) + resample_layer(w[x], w[x + 1])
  n += b[-1] * residual_block(w[-1], g[-1])
  n += conv2d(w[-1], w[-1], 4, groups=w[-1]) + linear(w[-1], out)  # DiscriminativeBasis
  if c_dim:
    n += linear(c_dim, out)  # EmbeddingLayer
  return n


def counts(preset: str, c_dim: int = 0) -> tuple[int, int]:
  """``(G, D)`` parameters of the reference's networks for ``preset`` (``c_dim`` classes, 0: unconditional)."""
  p = PRESETS[preset]
  return generator(**p, c_dim=c_dim), discriminator(**p, c_dim=c_dim)


if __name__ == "__main__":
  for name, c_dim in (("CIFAR10", 10), ("CIFAR10", 0), ("FFHQ-64", 0), ("FFHQ-256", 0)):
    g, d = counts(name, c_dim)
    print(f"{name:9s} c_dim={c_dim:2d}  G {g:>11,}  D {d:>11,}")
