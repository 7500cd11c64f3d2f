"""Model registry: ``MODELS[name]`` is a :class:`ModelSpec` of factories for G and D, with its config fields.

``data_shape`` is one sample's shape: ``(H, W, C)`` for images, ``(2,)`` for 2-D points. Generators map
``z [B, latent_dim]`` to ``[B, *data_shape]``; discriminators map ``[B, *input_shape]`` to raw scores
``[B]`` (``input_shape`` is ``data_shape`` with the last axis times ``model.pack``: PacGAN).

The config section ``model`` holds the fields every model shares (:data:`SHARED_FIELDS`: ``name``,
``latent_dim``, PacGAN's ``pack``, spectral norm, the auto-encoder D of energy objectives, the compute
dtype) and the chosen model's own fields with the defaults it was registered with (``dcgan``:
``g_width``, ``d_width``, ``d_norm``; ``mlp``: ``g_width``, ``d_width``, ``depth``; ``resnet`` (SNGAN,
:mod:`jgan.models.resnet`): ``g_width``, ``d_width``; ``biggan`` (:mod:`jgan.models.biggan`):
``g_width``, ``d_width``, ``shared_dim``, ``attn_res``; ``r3gan`` (:mod:`jgan.models.r3gan`): ``arch``,
``width``, ``blocks``). A user model::

    jgan.models.register("resnet_user", generator=make_g, discriminator=make_d, defaults={"num_blocks": 2})
    config.model = jgan.config.model_section("resnet_user", latent_dim=128)   # or set model.name

takes ``model.num_blocks``; a misspelt field is refused with that model's valid fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp
import ml_collections
from flax import nnx

from jgan.models import autoencoder, biggan, conditional, dcgan, mlp, r3gan, resnet, spectral
from jgan.registry import Registry

# ``model.compute_dtype`` -> the dtype the layers compute in (None = float32 everywhere). Parameters,
# normalisation statistics, G's outputs and D's scores stay float32 in every case.
COMPUTE_DTYPES = {"float32": None, "bfloat16": jnp.bfloat16}
# Fields of the model section read by jgan itself, whatever the model (defaults in jgan.config.defaults).
SHARED_FIELDS = (
  "name",
  "latent_dim",
  "pack",
  "d_spectral_norm",
  "ae_code_dim",
  "ae_energy",
  "compute_dtype",
  "layers",
  "conditional",
  "num_classes",
)


def compute_dtype(cfg):
  """``cfg.compute_dtype`` (default "float32") as a layer ``dtype``; ValueError listing the valid names."""
  name = cfg.get("compute_dtype", "float32")
  if name not in COMPUTE_DTYPES:
    raise ValueError(f"unknown compute_dtype {name!r}; valid choices: {', '.join(COMPUTE_DTYPES)}")
  return COMPUTE_DTYPES[name]


class ModelSpec(NamedTuple):
  """A registered model: factories ``(model_cfg, shape, rngs: nnx.Rngs) -> nnx.Module``.

  ``generator`` gets one sample's ``data_shape``; ``discriminator`` and ``autoencoder`` (the D of
  energy objectives, EBGAN/BEGAN; None if the model has none) get D's ``input_shape``. Factories
  raise ValueError for shapes or fields they do not support.

  ``conditions_itself``: the factories read ``cfg.conditional`` / ``cfg.num_classes`` and build
  ``G(z, y)`` / ``D(x, y)`` themselves (e.g. conditional BatchNorm). Otherwise a conditional run wraps
  the model (:mod:`jgan.models.conditional`: one-hot y joined to z, projection D over ``D.features``).

  ``check``: None, or ``(model_cfg, image_size) -> None`` raising a one-line ValueError for a combination of
  the model's fields and the image size it cannot build; :func:`jgan.config.validate` runs it, so such a
  config is refused before any data is read or anything is compiled.
  """

  generator: Callable[..., nnx.Module]
  discriminator: Callable[..., nnx.Module]
  autoencoder: Callable[..., nnx.Module] | None = None
  images_only: bool = False  # the model needs image data [S, S, C] (checked by jgan.config.validate)
  conditions_itself: bool = False
  check: Callable[[Any, int], None] | None = None


def _square_image(data_shape) -> tuple[int, int]:
  if len(data_shape) != 3 or data_shape[0] != data_shape[1]:
    raise ValueError(f"model 'dcgan' needs square images [S, S, C], got data shape {tuple(data_shape)}")
  if data_shape[0] not in dcgan.SUPPORTED_SIZES:
    raise ValueError(
      f"data.image_size={data_shape[0]!r} is not supported by model 'dcgan'; valid choices: "
      f"{sorted(dcgan.SUPPORTED_SIZES)}"
    )
  return data_shape[0], data_shape[2]


def _dcgan_g(cfg, data_shape, rngs: nnx.Rngs):
  s, c = _square_image(data_shape)
  return dcgan.Generator(
    image_size=s,
    channels=c,
    latent_dim=cfg.latent_dim,
    width=cfg.g_width,
    dtype=compute_dtype(cfg),
    layers=cfg.get("layers", "auto"),
    rngs=rngs,
  )


def _dcgan_d(cfg, input_shape, rngs: nnx.Rngs):
  s, c = _square_image(input_shape)
  if cfg.d_norm not in dcgan.NORMS:
    raise ValueError(f"unknown model.d_norm={cfg.d_norm!r}; valid choices: {', '.join(dcgan.NORMS)}")
  return dcgan.Discriminator(
    image_size=s,
    channels=c,
    width=cfg.d_width,
    d_norm=cfg.d_norm,
    dtype=compute_dtype(cfg),
    layers=cfg.get("layers", "auto"),
    rngs=rngs,
  )


def _mlp_g(cfg, data_shape, rngs: nnx.Rngs):
  return mlp.Generator(
    data_shape=data_shape,
    latent_dim=cfg.latent_dim,
    width=cfg.g_width,
    depth=cfg.depth,
    dtype=compute_dtype(cfg),
    rngs=rngs,
  )


def _mlp_d(cfg, input_shape, rngs: nnx.Rngs):
  return mlp.Discriminator(
    data_shape=input_shape, width=cfg.d_width, depth=cfg.depth, dtype=compute_dtype(cfg), rngs=rngs
  )


def _with_dtype(factory):
  """A ResNet/BigGAN factory ``(cfg, shape, rngs, *, dtype)`` as a registry factory ``(cfg, shape, rngs)``."""
  return lambda cfg, shape, rngs: factory(cfg, shape, rngs, dtype=compute_dtype(cfg))


MODELS: Registry[ModelSpec] = Registry(
  "model",
  {
    "dcgan": ModelSpec(_dcgan_g, _dcgan_d, autoencoder.dcgan_autoencoder, images_only=True),
    "mlp": ModelSpec(_mlp_g, _mlp_d, autoencoder.mlp_autoencoder),
    # SNGAN's ResNets (Miyato et al. 2018) with conditional BN + projection D when conditional.
    "resnet": ModelSpec(
      _with_dtype(resnet.sngan_generator),
      _with_dtype(resnet.sngan_discriminator),
      images_only=True,
      conditions_itself=True,
    ),
    # BigGAN-style (Brock et al. 2019): shared embedding, hierarchical z, self-attention, SN in G and D.
    "biggan": ModelSpec(
      _with_dtype(biggan.generator), _with_dtype(biggan.discriminator), images_only=True, conditions_itself=True
    ),
    # R3GAN's config E (Huang et al. 2024): normalisation-free ResNeXt blocks, [1, 3, 3, 1] resampling,
    # learned 4x4 bases; class embedding joined to z in G, projection D.
    "r3gan": ModelSpec(
      _with_dtype(r3gan.generator),
      _with_dtype(r3gan.discriminator),
      images_only=True,
      conditions_itself=True,
      check=r3gan.check_config,
    ),
  },
  defaults={
    "dcgan": {"g_width": 64, "d_width": 64, "d_norm": "batch"},  # D's hidden-layer norm: batch | layer | none
    "mlp": {"g_width": 128, "d_width": 128, "depth": 2},  # hidden units and hidden layers (PacGAN's sizes)
    # Channels: g_width = G's widest map (Mimicry's ngf), d_width = D's (ndf); 0 = the reference widths of
    # the image size (jgan.models.resnet.SNGAN_WIDTHS: 256 / 128 at 28 and 32 px).
    "resnet": {"g_width": 0, "d_width": 0},
    # g_width / d_width: channel unit (BigGAN's ch; 0 = 96); shared_dim: the shared class embedding;
    # attn_res: self-attention after the G and D blocks with this output side (-1 = half the image, 0 = none).
    "biggan": {"g_width": 0, "d_width": 0, "shared_dim": 128, "attn_res": -1},
    # arch: the reference table (auto: by image size; jgan.models.r3gan.ARCHS); width: the widest stage's
    # channels, the others scaled (0 = the table's); blocks: residual blocks per stage (0 = the table's).
    "r3gan": {"arch": "auto", "width": 0, "blocks": 0},
  },
)


def register(
  name: str,
  generator: Callable[..., nnx.Module],
  discriminator: Callable[..., nnx.Module],
  defaults: dict[str, Any] | None = None,
  *,
  autoencoder: Callable[..., nnx.Module] | None = None,
  images_only: bool = False,
  conditions_itself: bool = False,
  check: Callable[[Any, int], None] | None = None,
  overwrite: bool = False,
) -> ModelSpec:
  """Registers a model: its G and D factories (see :class:`ModelSpec`) and its own config fields.

  ``defaults`` maps each field the factories read from the model section (besides
  :data:`SHARED_FIELDS`) to its default; ``jgan.config.resolve`` fills them in and refuses any other
  field, listing these. ``check`` (see :class:`ModelSpec`) lets ``resolve`` refuse sizes the model cannot
  build. Returns the spec.
  """
  clash = sorted(set(defaults or {}) & set(SHARED_FIELDS))
  if clash:
    raise ValueError(f"model {name!r}: fields {clash} are shared by every model; choose other names")
  spec = ModelSpec(generator, discriminator, autoencoder, images_only, conditions_itself, check)
  return MODELS.register(name, spec, dict(defaults or {}), overwrite=overwrite)


def make_models(model_cfg, data_shape: tuple[int, ...], rngs: nnx.Rngs, d_output: str = "logit"):
  """Builds ``(G, D)`` for ``model_cfg.name``; unknown names raise ValueError listing the valid ones.

  ``d_output`` is what the objective needs from D (``Objective.d_output``): ``"logit"`` for the model's
  own discriminator, ``"energy"`` for its auto-encoder D (see :mod:`jgan.models.autoencoder`).
  With ``model_cfg.d_spectral_norm`` every conv/linear layer of D is spectrally normalised; with
  ``model_cfg.pack = m`` D takes ``m`` samples joined along the last axis (PacGAN). With
  ``model_cfg.conditional`` (and ``num_classes`` filled in by :func:`jgan.config.resolve`) G is
  ``G(z, y)`` and D ``D(x, y)`` (see :class:`ModelSpec`'s ``conditions_itself``).
  """
  MODELS.check(model_cfg.name)
  spec = MODELS[model_cfg.name]
  data_shape = tuple(data_shape)
  n_cls = model_cfg.get("num_classes", 0) if model_cfg.get("conditional", False) else 0
  wrap = n_cls > 0 and not spec.conditions_itself
  if n_cls and d_output == "energy":
    raise ValueError("model.conditional=True is not supported with energy objectives (ebgan, began)")
  g: nnx.Module
  if wrap:  # G built for [z, onehot(y)] inputs
    g_cfg = ml_collections.ConfigDict(model_cfg.to_dict())
    g_cfg.latent_dim = model_cfg.latent_dim + n_cls
    g = conditional.ConcatGenerator(spec.generator(g_cfg, data_shape, rngs), n_cls, model_cfg.latent_dim)
  else:
    g = spec.generator(model_cfg, data_shape, rngs)
  # PacGAN: D sees m samples joined along the last axis (see jgan.step.pack).
  m = model_cfg.get("pack", 1)
  d_shape = data_shape[:-1] + (data_shape[-1] * m,)
  if d_output == "energy":
    if spec.autoencoder is None:
      raise ValueError(
        f"model {model_cfg.name!r} has no auto-encoder discriminator, which energy objectives "
        f"(ebgan, began) need; models with one: "
        f"{', '.join(n for n, s in MODELS.items() if s.autoencoder is not None)}"
      )
    d = spec.autoencoder(model_cfg, d_shape, rngs)
  else:
    d = spec.discriminator(model_cfg, d_shape, rngs)
    if wrap:
      d = conditional.ProjectionDiscriminator(d, n_cls, d.feature_dim, rngs=rngs)  # type: ignore[attr-defined]
  if model_cfg.get("d_spectral_norm", False):
    spectral.wrap_layers(d, rngs)
  return g, d
