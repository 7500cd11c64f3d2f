"""DiffAugment (Zhao, Liu, Lin, Zhu, Han 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

A port of the reference ``DiffAugment_pytorch.py`` (mit-han-lab/data-efficient-gans, current version:
``rand_translation(ratio=0.125)``, ``rand_cutout(ratio=0.5)`` with sizes ``int(size * ratio + 0.5)``) to
NHWC images in ``[-1, 1]`` (the reference is NCHW in ``[-1, 1]``; its "x" axis is our H axis, its "y" our W).
Every draw is per sample, as in the reference:

* ``color``: brightness ``x + (u - 0.5)``; saturation ``(x - mean_C) * 2u + mean_C``; contrast
  ``(x - mean_CHW) * (u + 0.5) + mean_CHW``; each with its own ``u ~ U[0, 1)``.
* ``translation``: integer shifts ``t_h, t_w ~ U{-s, ..., s}`` with ``s = int(size * ratio + 0.5)``,
  ``out[i, j] = x[i + t_h, j + t_w]`` and 0 (zero padding) where that falls outside the image.
* ``cutout``: a ``ch x cw`` square (``ch = int(H * ratio + 0.5)``) set to 0, its centre offset
  ``o_h ~ U{0, ..., H - ch % 2}``, rows ``[o_h - ch // 2, o_h - ch // 2 + ch)`` clipped to the image.

The ops are linear in ``x`` given the draws, so gradients reach G through them. The per-op functions take
the random values explicitly (tests check them against a numpy transcription of the reference);
:func:`diffaugment` builds the :class:`~jgan.augment.base.Augment` that draws them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jgan.augment.base import Array, Augment, check_images, stateless

POLICIES = ("color", "translation", "cutout")


def _per_sample(v: Array, x: Array) -> Array:
  """``[B]`` values as ``[B, 1, 1, 1]`` in ``x``'s dtype, to broadcast over an image batch."""
  return v.astype(x.dtype).reshape(-1, 1, 1, 1)


def brightness(x: Array, u: Array) -> Array:
  """``x + (u - 0.5)``: x float ``[B, H, W, C]``, u ``[B]`` in ``[0, 1)`` -> ``[B, H, W, C]``."""
  return x + (_per_sample(u, x) - 0.5)


def saturation(x: Array, u: Array) -> Array:
  """``(x - m) * 2u + m`` with ``m`` the per-pixel mean over channels; x ``[B, H, W, C]``, u ``[B]`` in [0, 1)."""
  m = jnp.mean(x, axis=-1, keepdims=True)
  return (x - m) * (_per_sample(u, x) * 2) + m


def contrast(x: Array, u: Array) -> Array:
  """``(x - m) * (u + 0.5) + m`` with ``m`` each image's mean over H, W, C; x ``[B, H, W, C]``, u ``[B]``."""
  m = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  return (x - m) * (_per_sample(u, x) + 0.5) + m


def translation(x: Array, t_h: Array, t_w: Array) -> Array:
  """Integer shift with zero padding: ``out[b, i, j] = x[b, i + t_h[b], j + t_w[b]]`` (0 outside).

  Args:
    x: float ``[B, H, W, C]``.
    t_h, t_w: int ``[B]`` shifts (any integers; the reference draws them in ``[-s, s]``).

  Returns:
    float ``[B, H, W, C]``; exact (a gather), its gradient a scatter-add.
  """
  _, h, w, _ = x.shape
  # As the reference: pad by one zero pixel and clamp the source index into the padding.
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  rows = jnp.clip(jnp.arange(h)[None, :] + t_h[:, None] + 1, 0, h + 1)  # [B, H]
  cols = jnp.clip(jnp.arange(w)[None, :] + t_w[:, None] + 1, 0, w + 1)  # [B, W]
  xp = jnp.take_along_axis(xp, rows[:, :, None, None], axis=1)  # [B, H, W + 2, C]
  return jnp.take_along_axis(xp, cols[:, None, :, None], axis=2)


def cutout_size(h: int, w: int, ratio: float = 0.5) -> tuple[int, int]:
  """The reference's cutout square ``(int(h * ratio + 0.5), int(w * ratio + 0.5))``."""
  return int(h * ratio + 0.5), int(w * ratio + 0.5)


def cutout(x: Array, o_h: Array, o_w: Array, size: tuple[int, int]) -> Array:
  """Zeroes a ``size`` rectangle per image, rows ``[o_h - sh // 2, o_h - sh // 2 + sh)`` (likewise columns).

  Args:
    x: float ``[B, H, W, C]``.
    o_h, o_w: int ``[B]`` centre offsets (the reference draws ``o_h`` in ``[0, H - sh % 2]``).
    size: ``(sh, sw)``, see :func:`cutout_size`.

  Returns:
    float ``[B, H, W, C]``: ``x`` times a 0/1 mask (all channels); the part outside the image is dropped.
  """
  _, h, w, _ = x.shape
  sh, sw = size
  r0 = (o_h - sh // 2)[:, None]
  c0 = (o_w - sw // 2)[:, None]
  rows, cols = jnp.arange(h)[None, :], jnp.arange(w)[None, :]
  in_rows = (rows >= r0) & (rows < r0 + sh)  # [B, H]
  in_cols = (cols >= c0) & (cols < c0 + sw)  # [B, W]
  keep = ~(in_rows[:, :, None] & in_cols[:, None, :])
  return x * keep[..., None].astype(x.dtype)


def _random_color(x: Array, key: Array) -> Array:
  kb, ks, kc = jax.random.split(key, 3)
  b = x.shape[0]
  x = brightness(x, jax.random.uniform(kb, (b,)))
  x = saturation(x, jax.random.uniform(ks, (b,)))
  return contrast(x, jax.random.uniform(kc, (b,)))


def _random_translation(x: Array, key: Array, ratio: float) -> Array:
  b, h, w, _ = x.shape
  s_h, s_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
  kh, kw = jax.random.split(key)
  t_h = jax.random.randint(kh, (b,), -s_h, s_h + 1)
  t_w = jax.random.randint(kw, (b,), -s_w, s_w + 1)
  return translation(x, t_h, t_w)


def _random_cutout(x: Array, key: Array, ratio: float) -> Array:
  b, h, w, _ = x.shape
  sh, sw = cutout_size(h, w, ratio)
  kh, kw = jax.random.split(key)
  o_h = jax.random.randint(kh, (b,), 0, h + (1 - sh % 2))
  o_w = jax.random.randint(kw, (b,), 0, w + (1 - sw % 2))
  return cutout(x, o_h, o_w, (sh, sw))


def parse_policy(policy: str) -> tuple[str, ...]:
  """``"color,translation"`` -> ``("color", "translation")``; ValueError naming a bad entry and the choices."""
  if not isinstance(policy, str) or not policy.strip():
    raise ValueError(
      f"diffaugment policy must be a non-empty comma-separated string of {', '.join(POLICIES)}, "
      f"got {policy!r} (augment.name=none turns augmentation off)"
    )
  names = tuple(p.strip() for p in policy.split(","))
  for name in names:
    if name not in POLICIES:
      raise ValueError(f"unknown diffaugment policy {name!r} in {policy!r}; valid choices: {', '.join(POLICIES)}")
  return names


def _check_ratio(name: str, value: float, lo: float, hi: float) -> None:
  if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
    raise ValueError(f"diffaugment {name} must be a number in [{lo}, {hi}], got {value!r}")


def diffaugment(
  *, policy: str = "color,translation,cutout", translation_ratio: float = 0.125, cutout_ratio: float = 0.5
) -> Augment:
  """DiffAugment as a stateless :class:`~jgan.augment.base.Augment` (see the module docstring).

  Args:
    policy: comma-separated ops, applied in order, from ``color``, ``translation``, ``cutout`` (the paper's
      default is all three).
    translation_ratio: the largest shift as a fraction of the image size (reference: 1/8).
    cutout_ratio: the cutout square's side as a fraction of the image size (reference: 1/2).

  The caller applies it to the real and the fake batch with independent keys (each sample gets its own
  draws). Bad values raise ValueError here, before anything is traced.
  """
  names = parse_policy(policy)
  _check_ratio("translation_ratio", translation_ratio, 0.0, 1.0)
  _check_ratio("cutout_ratio", cutout_ratio, 0.0, 1.0)
  ops = {
    "color": _random_color,
    "translation": lambda x, k: _random_translation(x, k, translation_ratio),
    "cutout": lambda x, k: _random_cutout(x, k, cutout_ratio),
  }

  def apply(x: Array, key: Array) -> Array:
    check_images(x, "diffaugment")
    for i, name in enumerate(names):  # a static loop over the policy: one key per entry, repeats included
      x = ops[name](x, jax.random.fold_in(key, i))
    return x

  return stateless(apply)
