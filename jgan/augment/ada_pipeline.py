"""ADA's augmentation pipeline (Karras et al. 2020, "Training GANs with Limited Data"): the 'bgc' transforms.

A port of ``AugmentPipe`` (NVlabs/stylegan2-ada-pytorch ``training/augment.py``) to NHWC images in
``[-1, 1]`` as pure JAX functions. Each transform is applied to each sample independently with probability
``multiplier * p`` (the multipliers are 0/1 per pipeline, :data:`PIPELINES`), with the reference's
distributions and strengths (:data:`STRENGTHS`) and in the reference's order:

* geometric, composed into one inverse 2-D homogeneous matrix per sample (output pixel -> input pixel,
  coordinates centred on the image): x-flip, 90-degree rotations, integer translation (``U(-1/8, 1/8)`` of
  the size, rounded to pixels); isotropic scaling (``2^N(0, 0.2^2)``), rotation (``U(-pi, pi)``, pre and post
  with ``p_rot = 1 - sqrt(1 - p)`` each), anisotropic scaling (``2^N(0, 0.2^2)``), fractional translation
  (``N(0, (1/8)^2)`` of the size);
* colour, composed into one 4x4 matrix per sample acting on ``(r, g, b, 1)``: brightness (``N(0, 0.2^2)``),
  contrast (``2^N(0, 0.5^2)``), luma flip (Householder reflection about the luma axis), hue rotation about
  the luma axis (``U(-pi, pi)``) and saturation (``2^N(0, 1)``); single-channel images take the reference's
  grey-scale form (gain = mean row sum, hue and saturation skipped).

One difference from the reference, on purpose: it resamples the geometric transforms on a 2x-upsampled,
reflection-padded image with a sym6 wavelet low-pass (anti-aliasing), using a padding whose size depends on
the drawn matrices (a data-dependent shape, not jit-able). Here :func:`warp` samples bilinearly at the
image's own resolution from the mirror-extended image (numpy's 'reflect', scipy's 'mirror' mode). The
pixel blits (flip, rot90, integer translation) give the same pixels as the reference (exact permutations with
reflection at the border; the reference's orthogonal filter reconstructs them exactly too); fractional
transforms are interpolated without the anti-aliasing filter, so they blur / alias slightly more. The
reference's other groups (image-space filtering 'f', noise 'n', cutout) are not implemented.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jgan.augment.base import Array, check_images

GEOMETRIC = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
_BLIT = {"xflip": 1.0, "rotate90": 1.0, "xint": 1.0}
_GEOM = {"scale": 1.0, "rotate": 1.0, "aniso": 1.0, "xfrac": 1.0}
_COLOR = {k: 1.0 for k in COLOR}
# The reference's augpipe specs (train.py) that this module implements: probability multipliers.
PIPELINES: dict[str, dict[str, float]] = {
  "blit": _BLIT,
  "geom": _GEOM,
  "color": _COLOR,
  "bg": {**_BLIT, **_GEOM},
  "bgc": {**_BLIT, **_GEOM, **_COLOR},
}
# AugmentPipe's default strengths (the published ones).
STRENGTHS: dict[str, float] = {
  "xint_max": 0.125,
  "scale_std": 0.2,
  "rotate_max": 1.0,
  "aniso_std": 0.2,
  "xfrac_std": 0.125,
  "brightness_std": 0.2,
  "contrast_std": 0.5,
  "hue_max": 1.0,
  "saturation_std": 1.0,
}
_HI = jax.lax.Precision.HIGHEST  # matrix products in full float32 on every backend (TPU's default is bf16)


def _matrix(*rows, b: int) -> Array:
  """A ``[B, n, m]`` float32 batch of matrices from rows of scalars / ``[B]`` arrays."""
  f = lambda e: jnp.broadcast_to(jnp.asarray(e, jnp.float32), (b,))
  return jnp.stack([jnp.stack([f(e) for e in row], axis=-1) for row in rows], axis=-2)


def translate2d(tx, ty, b: int) -> Array:
  """``[B, 3, 3]`` homogeneous translations by ``(tx, ty)`` (x: width axis, y: height axis)."""
  return _matrix([1, 0, tx], [0, 1, ty], [0, 0, 1], b=b)


def scale2d(sx, sy, b: int) -> Array:
  """``[B, 3, 3]`` homogeneous scalings."""
  return _matrix([sx, 0, 0], [0, sy, 0], [0, 0, 1], b=b)


def rotate2d(cos, sin, b: int) -> Array:
  """``[B, 3, 3]`` rotations given ``cos`` / ``sin`` of the angle (exact values for the 90-degree blits)."""
  return _matrix([cos, -sin, 0], [sin, cos, 0], [0, 0, 1], b=b)


def _mm(a: Array, b: Array) -> Array:
  return jnp.matmul(a, b, precision=_HI)


def _draws(key: Array, b: int, uniforms: int, normals: int):
  """Two draw functions ``u(shape)`` / ``n(shape)`` (``shape`` ``(b,)`` or ``(b, k)``) handing out rows of one
  ``U[0, 1)`` and one ``N(0, 1)`` array drawn up front: two random calls instead of one per op keep the
  compiled program small. Each row is handed out once (a fresh draw per use)."""
  ku, kn = jax.random.split(key)
  rows = {"u": iter(jax.random.uniform(ku, (uniforms, b))), "n": iter(jax.random.normal(kn, (normals, b)))}

  def take(kind: str, shape: tuple[int, ...]) -> Array:
    k = shape[1] if len(shape) == 2 else 1
    out = jnp.stack([next(rows[kind]) for _ in range(k)], axis=-1)  # [b, k]
    return out if len(shape) == 2 else out[:, 0]

  return (lambda shape=(b,): take("u", shape)), (lambda shape=(b,): take("n", shape))


def geometric_matrix(key: Array, b: int, h: int, w: int, p: Array, spec: dict[str, float]) -> Array:
  """The per-sample inverse transforms ``G_inv`` ``[B, 3, 3]`` float32 of the geometric ops in ``spec``.

  ``G_inv @ (x_out, y_out, 1) = (x_in, y_in, 1)`` in pixel units centred on the image (the reference's
  convention); ``p`` is a float32 scalar in ``[0, 1]``. An op not drawn contributes the identity exactly.
  """
  s = STRENGTHS
  u, n = _draws(key, b, uniforms=14, normals=4)
  gate = lambda name, prob=None, shape=(b,): u(shape) < (spec[name] * p if prob is None else prob)
  on = lambda name: spec.get(name, 0.0) > 0
  g = jnp.broadcast_to(jnp.eye(3, dtype=jnp.float32), (b, 3, 3))
  if on("xflip"):
    i = jnp.where(gate("xflip"), jnp.floor(u() * 2), 0.0)
    g = _mm(g, scale2d(1.0 - 2.0 * i, 1.0, b))  # its own inverse: 1 / (+-1) = +-1
  if on("rotate90"):
    i = jnp.where(gate("rotate90"), jnp.floor(u() * 4), 0.0).astype(jnp.int32)
    # rotate2d_inv(-pi/2 * i) = rotate2d(pi/2 * i), with exact cos / sin (cos(pi/2) is not 0 in float32).
    g = _mm(g, rotate2d(jnp.array([1.0, 0.0, -1.0, 0.0])[i], jnp.array([0.0, 1.0, 0.0, -1.0])[i], b))
  if on("xint"):
    t = (u((b, 2)) * 2 - 1) * s["xint_max"]
    t = jnp.where(gate("xint", shape=(b, 1)), t, 0.0)
    g = _mm(g, translate2d(-jnp.round(t[:, 0] * w), -jnp.round(t[:, 1] * h), b))
  if on("scale"):
    sc = jnp.where(gate("scale"), jnp.exp2(n() * s["scale_std"]), 1.0)
    g = _mm(g, scale2d(1.0 / sc, 1.0 / sc, b))
  # Pre- and post-rotation each with p_rot, so that P(pre or post) = rotate * p.
  p_rot = 1.0 - jnp.sqrt(jnp.clip(1.0 - spec.get("rotate", 0.0) * p, 0.0, 1.0))
  for stage in ("pre", "post"):
    if on("rotate"):
      theta = jnp.where(gate("rotate", p_rot), (u() * 2 - 1) * math.pi * s["rotate_max"], 0.0)
      g = _mm(g, rotate2d(jnp.cos(theta), jnp.sin(theta), b))  # rotate2d_inv(-theta)
    if stage == "pre" and on("aniso"):
      sa = jnp.where(gate("aniso"), jnp.exp2(n() * s["aniso_std"]), 1.0)
      g = _mm(g, scale2d(1.0 / sa, sa, b))
  if on("xfrac"):
    t = jnp.where(gate("xfrac", shape=(b, 1)), n((b, 2)) * s["xfrac_std"], 0.0)
    g = _mm(g, translate2d(-t[:, 0] * w, -t[:, 1] * h, b))
  return g


def _mirror(k: Array, n: int) -> Array:
  """Integer indices reflected into ``[0, n)`` about the edge pixels (``d c b | a b c d | c b a``), periodic."""
  if n == 1:
    return jnp.zeros_like(k)
  period = 2 * (n - 1)
  k = jnp.abs(k) % period
  return jnp.where(k >= n, period - k, k)


def warp(x: Array, g_inv: Array) -> Array:
  """Resamples each image at ``G_inv @ (output pixel)``: bilinear, mirror-extended beyond the border.

  Args:
    x: float ``[B, H, W, C]``.
    g_inv: float ``[B, 3, 3]`` affine matrices in centred pixel units (see :func:`geometric_matrix`).

  Returns:
    ``[B, H, W, C]`` like ``x``; linear in ``x`` (four gathers), so differentiable with respect to it. An
    identity matrix (or any integer permutation of pixels) returns the pixels exactly.
  """
  b, h, w, c = x.shape
  cy, cx = (h - 1) / 2, (w - 1) / 2
  xs = (jnp.arange(w, dtype=jnp.float32) - cx)[None, None, :]  # [1, 1, W]
  ys = (jnp.arange(h, dtype=jnp.float32) - cy)[None, :, None]  # [1, H, 1]
  g = g_inv.astype(jnp.float32)[:, :, :, None, None]
  # Elementwise, not a matmul: exact for integer matrices whatever the backend's matmul precision.
  col = g[:, 0, 0] * xs + g[:, 0, 1] * ys + g[:, 0, 2] + cx  # [B, H, W] source column
  row = g[:, 1, 0] * xs + g[:, 1, 1] * ys + g[:, 1, 2] + cy
  c0, r0 = jnp.floor(col), jnp.floor(row)
  fc, fr = (col - c0)[..., None], (row - r0)[..., None]
  c0i, r0i = c0.astype(jnp.int32), r0.astype(jnp.int32)
  flat = x.astype(jnp.float32).reshape(b, h * w, c)

  def tap(r: Array, cc: Array) -> Array:
    idx = (_mirror(r, h) * w + _mirror(cc, w)).reshape(b, h * w, 1)
    return jnp.take_along_axis(flat, idx, axis=1).reshape(b, h, w, c)

  top = (1 - fc) * tap(r0i, c0i) + fc * tap(r0i, c0i + 1)
  bottom = (1 - fc) * tap(r0i + 1, c0i) + fc * tap(r0i + 1, c0i + 1)
  return ((1 - fr) * top + fr * bottom).astype(x.dtype)


def _rotate3d(v: Array, theta: Array, b: int) -> Array:
  """``[B, 4, 4]`` rotations by ``theta`` ``[B]`` about the unit axis ``v`` (Rodrigues, the reference's form)."""
  vx, vy, vz = v[0], v[1], v[2]
  s, c = jnp.sin(theta), jnp.cos(theta)
  cc = 1 - c
  return _matrix(
    [vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
    [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
    [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
    [0, 0, 0, 1],
    b=b,
  )


def color_matrix(key: Array, b: int, channels: int, p: Array, spec: dict[str, float]) -> Array:
  """The per-sample colour transforms ``C`` ``[B, 4, 4]`` float32 (``C @ (r, g, b, 1)``) of the ops in ``spec``."""
  s = STRENGTHS
  u, n = _draws(key, b, uniforms=7, normals=3)
  gate = lambda name: u() < spec[name] * p
  on = lambda name: spec.get(name, 0.0) > 0
  eye = jnp.eye(4, dtype=jnp.float32)
  v = jnp.array([1.0, 1.0, 1.0, 0.0], jnp.float32) / math.sqrt(3)  # the luma axis
  vv = jnp.outer(v, v)[None]  # [1, 4, 4]
  m = jnp.broadcast_to(eye, (b, 4, 4))
  if on("brightness"):
    br = jnp.where(gate("brightness"), n() * s["brightness_std"], 0.0)
    m = _mm(_matrix([1, 0, 0, br], [0, 1, 0, br], [0, 0, 1, br], [0, 0, 0, 1], b=b), m)
  if on("contrast"):
    ct = jnp.where(gate("contrast"), jnp.exp2(n() * s["contrast_std"]), 1.0)
    m = _mm(_matrix([ct, 0, 0, 0], [0, ct, 0, 0], [0, 0, ct, 0], [0, 0, 0, 1], b=b), m)
  if on("lumaflip"):
    i = jnp.where(gate("lumaflip"), jnp.floor(u() * 2), 0.0)[:, None, None]
    m = _mm(eye[None] - 2 * vv * i, m)  # Householder reflection
  if on("hue") and channels > 1:
    theta = jnp.where(gate("hue"), (u() * 2 - 1) * math.pi * s["hue_max"], 0.0)
    m = _mm(_rotate3d(v, theta, b), m)
  if on("saturation") and channels > 1:
    sat = jnp.where(gate("saturation"), jnp.exp2(n() * s["saturation_std"]), 1.0)[:, None, None]
    m = _mm(vv + (eye[None] - vv) * sat, m)
  return m


def color_transform(x: Array, m: Array) -> Array:
  """Applies ``m`` ``[B, 4, 4]`` to ``x`` ``[B, H, W, C]`` (C = 3: ``m[:3, :3] @ rgb + m[:3, 3]``; C = 1: grey).

  The grey form is the reference's: ``x * mean_i(sum_j m[i, j]) + mean_i(m[i, 3])`` over ``i, j < 3`` (row
  sums first, so the identity gives a gain of exactly 1). Returns ``[B, H, W, C]`` like ``x``.
  """
  c = x.shape[-1]
  xf = x.astype(jnp.float32)
  if c == 3:
    out = jnp.einsum("bij,bhwj->bhwi", m[:, :3, :3], xf, precision=_HI) + m[:, None, None, :3, 3]
  elif c == 1:
    gain = jnp.mean(jnp.sum(m[:, :3, :3], axis=2), axis=1)
    offset = jnp.mean(m[:, :3, 3], axis=1)
    out = xf * gain[:, None, None, None] + offset[:, None, None, None]
  else:
    raise ValueError(f"ada colour transforms need 1 or 3 channels, got {c}")
  return out.astype(x.dtype)


def ada_pipeline(x: Array, key: Array, p: Array, spec: dict[str, float]) -> Array:
  """The pipeline ``spec`` (probability multipliers, e.g. ``PIPELINES["bgc"]``) applied with strength ``p``.

  Args:
    x: float ``[B, H, W, C]`` in about ``[-1, 1]``; C must be 1 or 3 when ``spec`` has colour ops.
    key: PRNG key; every sample draws its own transforms.
    p: float32 scalar in ``[0, 1]``; ``p = 0`` returns ``x`` exactly.
    spec: ``{op: multiplier}`` over :data:`GEOMETRIC` and :data:`COLOR`.

  Returns:
    ``[B, H, W, C]`` like ``x``, differentiable with respect to ``x``.
  """
  check_images(x, "ada")
  b, h, w, c = x.shape
  colour = any(spec.get(k, 0.0) > 0 for k in COLOR)
  if colour and c not in (1, 3):
    raise ValueError(f"ada colour transforms need 1 or 3 channels, got {c}")
  kg, kc = jax.random.split(key)
  p = jnp.asarray(p, jnp.float32)
  if any(spec.get(k, 0.0) > 0 for k in GEOMETRIC):
    x = warp(x, geometric_matrix(kg, b, h, w, p, spec))
  if colour:
    x = color_transform(x, color_matrix(kc, b, c, p, spec))
  return x
