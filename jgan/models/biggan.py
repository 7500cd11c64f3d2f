"""BigGAN-style ResNet GAN (Brock et al. 2019), model ``biggan``: the SNGAN stacks of
:mod:`jgan.models.resnet` with BigGAN's changes.

* Shared class embedding + hierarchical z: z is split into one chunk per G block plus one for the input
  layer; block ``i``'s conditional BatchNorms get ``gain = 1 + W_g c``, ``bias = W_b c`` from
  ``c = [shared(y), chunk_i]`` (the embedding, ``shared_dim`` wide, is shared by all blocks).
  Unconditional (``model.conditional=False``): ``c = chunk_i`` (no embedding), so every chunk of z still
  reaches its block (StudioGAN's unconditional variant feeds the chunks nowhere).
* Projection D, spectral norm on every layer of G and D (except G's shared embedding), orthogonal
  initialisation of every weight, BatchNorm epsilon 1e-4.
* A self-attention (non-local) block after the G block and after the first D block whose output map is
  ``attn_res`` x ``attn_res`` (-1: the reference, half the image size, i.e. 16 at 32 px and 64 at 128 px
  as in BigGAN; 0: none).

Architectures: PyTorch-StudioGAN's ``big_resnet`` (the 2021 CIFAR-10 BigGAN run whose log is cited
below), channels = width x multiplier: 32 px G 4,4,4 from a 4x4 map, D 2,2,2,2 (down, down, -, -);
64 / 128 px as BigGAN's (G 16..1, D 1..16); 28 px the 32 px layout from a 7x7 map with two G blocks.
``g_width`` / ``d_width`` = 0 picks the reference width 96 (StudioGAN's CIFAR-10 ``g_conv_dim`` /
``d_conv_dim``; BigGAN's ``ch`` at 128 px).

CIFAR-10 (32 px, 10 classes, z 80 = 4 x 20, shared 128, width 96, attention at 16 px): G has 9,416,196
and D 2,415,170 parameters, equal to the counts in StudioGAN's log
``logs/CIFAR10/BigGAN-train-2021_01_15_14_48_48.log`` (see ``tests/test_models_resnet.py``).
"""

from __future__ import annotations

from flax import nnx

from jgan.models import resnet

# image size -> (bottom, G (in, out) multipliers, D (in, out, down)); D's in of block 0 is the image.
_ARCH = {
  28: (7, [(4, 4)] * 2, [(None, 2, True), (2, 2, True), (2, 2, False), (2, 2, False)]),
  32: (4, [(4, 4)] * 3, [(None, 2, True), (2, 2, True), (2, 2, False), (2, 2, False)]),
  64: (
    4,
    [(16, 8), (8, 4), (4, 2), (2, 1)],
    [(None, 1, True), (1, 2, True), (2, 4, True), (4, 8, True), (8, 16, False)],
  ),
  128: (
    4,
    [(16, 16), (16, 8), (8, 4), (4, 2), (2, 1)],
    [(None, 1, True), (1, 2, True), (2, 4, True), (4, 8, True), (8, 16, True), (16, 16, False)],
  ),
}
SIZES = tuple(sorted(_ARCH))
REFERENCE_WIDTH = 96
_ORTHO = nnx.initializers.orthogonal()


def _archs(size: int, channels: int, gw: int, dw: int) -> tuple[resnet.GArch, resnet.DArch]:
  bottom, g, d = _ARCH[size]
  garch = resnet.GArch(bottom, tuple(gw * a for a, _ in g), tuple(gw * b for _, b in g))
  ins = tuple(channels if a is None else dw * a for a, _, _ in d)
  outs = tuple(dw * b for _, b, _ in d)
  return garch, resnet.DArch(ins, outs, outs, tuple(down for _, _, down in d))  # hidden = output channels


def attention_blocks(cfg, size: int, garch: resnet.GArch, darch: resnet.DArch) -> tuple[int | None, int | None]:
  """``(G block, D block)`` followed by self-attention for ``cfg.attn_res`` (None: no attention).

  ValueError naming a resolution that is not the (even) output side of both a G and a D block, with
  the valid choices.
  """
  res = cfg.attn_res
  g_res, d_res = resnet.g_resolutions(garch), resnet.d_resolutions(size, darch)
  valid = sorted(r for r in set(g_res) & set(d_res) if r % 2 == 0)
  if isinstance(res, bool) or not isinstance(res, int) or res < -1 or (res > 0 and res not in valid):
    raise ValueError(
      f"model.attn_res={res!r} is not a self-attention resolution of model 'biggan' at {size} px; valid "
      f"choices: -1 (reference: {size // 2}), 0 (none), {', '.join(map(str, valid))}"
    )
  if res == 0:
    return None, None
  res = size // 2 if res == -1 else res
  return g_res.index(res), d_res.index(res)


def _setup(cfg, shape, dtype):
  size, ch = resnet.image_shape(shape, "biggan", _ARCH)
  gw = resnet.check_width("g_width", cfg.g_width, REFERENCE_WIDTH)
  dw = resnet.check_width("d_width", cfg.d_width, REFERENCE_WIDTH)
  garch, darch = _archs(size, ch, gw, dw)
  conf = resnet.block_conf(cfg, dtype, sn=True, init_main=_ORTHO, init_other=_ORTHO, eps=1e-4)
  return size, ch, garch, darch, conf


def generator(cfg, data_shape, rngs: nnx.Rngs, *, dtype=None) -> resnet.Generator:
  """The BigGAN G of ``cfg`` (model section: ``g_width``, ``shared_dim``, ``attn_res``, ``latent_dim``)
  for ``data_shape`` ``[S, S, C]``; ``dtype`` the compute dtype (None = float32)."""
  size, ch, garch, darch, conf = _setup(cfg, data_shape, dtype)
  shared = cfg.shared_dim
  if isinstance(shared, bool) or not isinstance(shared, int) or shared < 1:
    raise ValueError(f"model.shared_dim={shared!r} must be a positive integer (the shared class embedding's size)")
  g_attn, _ = attention_blocks(cfg, size, garch, darch)
  return resnet.Generator(
    garch,
    conf,
    channels=ch,
    latent_dim=cfg.latent_dim,
    num_classes=resnet.num_classes(cfg),
    hierarchical=True,
    shared_dim=shared,
    attn_after=g_attn,
    rngs=rngs,
  )


def discriminator(cfg, input_shape, rngs: nnx.Rngs, *, dtype=None) -> resnet.Discriminator:
  """The BigGAN D of ``cfg`` (``d_width``, ``attn_res``) for ``input_shape`` ``[S, S, C]``."""
  size, ch, garch, darch, conf = _setup(cfg, input_shape, dtype)
  _, d_attn = attention_blocks(cfg, size, garch, darch)
  return resnet.Discriminator(darch, conf, num_classes=resnet.num_classes(cfg), attn_after=d_attn, rngs=rngs)
