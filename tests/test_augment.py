"""Augmentations of D's inputs against numpy transcriptions of the reference code, closed forms, scipy and
finite differences; the ADA p rule against a hand computation; registry errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage

from jgan.augment import AUGMENTS, augment_params, make_augment
from jgan.augment import diffaugment as da
from jgan.augment.ada import ada_init_state, ada_update
from jgan.augment.ada_pipeline import PIPELINES, ada_pipeline, color_transform, rotate2d, scale2d, translate2d, warp

_rs = np.random.RandomState(0)
X = _rs.uniform(-1, 1, size=(5, 8, 8, 3)).astype(np.float32)  # NHWC in [-1, 1]
KEY = jax.random.key(7)
XS = jnp.asarray(X[:2, :6, :6])  # the small batch the compiled ADA tests share
ADA = make_augment("ada")
ADA_APPLY = jax.jit(ADA.apply)  # one compilation for every p (p is state, not a constant)


def pipeline(spec):
  """``ada_pipeline`` with ``spec`` jitted (op-by-op dispatch compiles every primitive: slower in tests)."""
  return jax.jit(lambda x, k, p: ada_pipeline(x, k, jnp.float32(p), spec))


def nchw(x):
  return np.transpose(x, (0, 3, 1, 2))


def nhwc(x):
  return np.transpose(x, (0, 2, 3, 1))


# numpy transcriptions of DiffAugment_pytorch.py (NCHW), given the random draws.
def ref_brightness(x, u):
  return x + (u[:, None, None, None] - 0.5)


def ref_saturation(x, u):
  m = x.mean(axis=1, keepdims=True)
  return (x - m) * (u[:, None, None, None] * 2) + m


def ref_contrast(x, u):
  m = x.mean(axis=(1, 2, 3), keepdims=True)
  return (x - m) * (u[:, None, None, None] + 0.5) + m


def ref_translation(x, tx, ty):
  b, _, h, w = x.shape
  gb, gx, gy = np.meshgrid(np.arange(b), np.arange(h), np.arange(w), indexing="ij")
  gx = np.clip(gx + tx[:, None, None] + 1, 0, h + 1)
  gy = np.clip(gy + ty[:, None, None] + 1, 0, w + 1)
  x_pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
  return np.transpose(np.transpose(x_pad, (0, 2, 3, 1))[gb, gx, gy], (0, 3, 1, 2))


def ref_cutout(x, ox, oy, size):
  b, _, h, w = x.shape
  gb, gx, gy = np.meshgrid(np.arange(b), np.arange(size[0]), np.arange(size[1]), indexing="ij")
  gx = np.clip(gx + ox[:, None, None] - size[0] // 2, 0, h - 1)
  gy = np.clip(gy + oy[:, None, None] - size[1] // 2, 0, w - 1)
  mask = np.ones((b, h, w), x.dtype)
  mask[gb, gx, gy] = 0
  return x * mask[:, None]


@pytest.mark.parametrize(
  "op,ref", [(da.brightness, ref_brightness), (da.saturation, ref_saturation), (da.contrast, ref_contrast)]
)
def test_diffaugment_colour_ops_match_the_reference_formula(op, ref):
  u = _rs.uniform(size=5).astype(np.float32)
  np.testing.assert_allclose(op(jnp.asarray(X), jnp.asarray(u)), nhwc(ref(nchw(X), u)), rtol=1e-6, atol=1e-6)


def test_diffaugment_translation_is_exact():
  x = _rs.uniform(-1, 1, size=(5, 8, 6, 2)).astype(np.float32)  # H != W: the axes are not swapped
  tx, ty = np.array([-1, 0, 1, 2, -2]), np.array([2, -1, 0, 1, -2])
  out = da.translation(jnp.asarray(x), jnp.asarray(tx), jnp.asarray(ty))
  np.testing.assert_array_equal(out, nhwc(ref_translation(nchw(x), tx, ty)))
  np.testing.assert_array_equal(out[2, :-1], x[2, 1:])  # t_h = 1, t_w = 0: out[i] = x[i + 1], zeros at the end
  np.testing.assert_array_equal(out[2, -1], np.zeros_like(x[2, 0]))


@pytest.mark.parametrize("h,w", [(8, 8), (6, 7)])  # even and odd cutout sides (4x4; 3x4)
def test_diffaugment_cutout_is_exact_for_every_offset(h, w):
  size = da.cutout_size(h, w)
  assert size == (int(h * 0.5 + 0.5), int(w * 0.5 + 0.5))
  ox, oy = np.meshgrid(np.arange(h + 1 - size[0] % 2), np.arange(w + 1 - size[1] % 2), indexing="ij")
  ox, oy = ox.ravel(), oy.ravel()
  x = _rs.uniform(-1, 1, size=(ox.size, h, w, 2)).astype(np.float32)
  out = da.cutout(jnp.asarray(x), jnp.asarray(ox), jnp.asarray(oy), size)
  np.testing.assert_array_equal(out, nhwc(ref_cutout(nchw(x), ox, oy, size)))


def test_diffaugment_draws_per_sample_within_the_reference_ranges():
  """Each sample's output is the op at one admissible draw, and the draws differ across samples."""
  b, h = 24, 8
  x = jnp.asarray(np.broadcast_to(_rs.uniform(-1, 1, size=(1, h, h, 1)), (b, h, h, 1)).astype(np.float32))
  s = int(h * 0.125 + 0.5)
  out = np.asarray(make_augment("diffaugment", policy="translation").apply(x, KEY, {}))
  shifts = [(i, j) for i in range(-s, s + 1) for j in range(-s, s + 1)]
  cands = {t: np.asarray(da.translation(x[:1], jnp.array([t[0]]), jnp.array([t[1]])))[0] for t in shifts}
  found = [[t for t, c in cands.items() if np.array_equal(o, c)] for o in out]
  assert all(len(f) == 1 for f in found) and len({f[0] for f in found}) > 3
  # colour on a grey image: saturation is the identity, out = (x - m) * (u_c + 0.5) + m + (u_b - 0.5).
  out = np.asarray(make_augment("diffaugment", policy="color").apply(x, KEY, {}), np.float64)
  x64 = np.asarray(x, np.float64)
  u_b = out.mean(axis=(1, 2, 3)) - x64.mean(axis=(1, 2, 3)) + 0.5
  u_c = out.std(axis=(1, 2, 3)) / x64.std(axis=(1, 2, 3)) - 0.5
  for u in (u_b, u_c):
    assert np.all((u > -1e-5) & (u < 1 + 1e-5)) and np.std(u) > 0.1


def directional_derivative_check(f, x, key=1):
  """grad(sum(w * f(x))) . v against the central difference (exact for f linear in x given its draws)."""
  rs = np.random.RandomState(key)
  w, v = (jnp.asarray(rs.normal(size=x.shape), jnp.float32) for _ in range(2))
  loss = lambda y: jnp.sum(w * f(y))
  eps = 1e-2
  fd = (loss(x + eps * v) - loss(x - eps * v)) / (2 * eps)
  np.testing.assert_allclose(jnp.sum(jax.grad(loss)(x) * v), fd, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("name", ["diffaugment", "ada"])
def test_augmentations_are_differentiable(name):
  if name == "ada":
    apply, state = ADA_APPLY, ada_init_state(1.0)
  else:
    apply, state = make_augment(name).apply, {}
  directional_derivative_check(lambda y: apply(y, KEY, state), XS)


@pytest.mark.parametrize("channels", [1, 3])
def test_ada_with_p_0_is_the_identity(channels):
  x = XS[..., :channels]
  np.testing.assert_array_equal(ADA_APPLY(x, KEY, ADA.init_state()), x)


def test_ada_geometric_ops_preserve_a_constant_image_and_blits_the_mean():
  const = jnp.full((16, 6, 7, 3), 0.37, jnp.float32)
  np.testing.assert_allclose(pipeline(PIPELINES["bg"])(const, KEY, 1.0), const, atol=1e-6)
  x = jnp.asarray(_rs.uniform(-1, 1, size=(16, 6, 6, 3)).astype(np.float32))
  out = pipeline({"xflip": 1.0, "rotate90": 1.0})(x, KEY, 1.0)
  np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), x.mean(axis=(1, 2, 3)), atol=1e-6)
  # every output is one of the 8 flips / rotations of its input (a pixel permutation), not all the same.
  variants = lambda im: [np.rot90(f, k) for f in (im, im[:, ::-1]) for k in range(4)]
  hits = [[k for k, v in enumerate(variants(np.asarray(a))) if np.array_equal(v, o)] for a, o in zip(x, out)]
  assert all(hits) and len({h[0] for h in hits}) > 2


def test_warp_matches_scipy_bilinear_mirror_sampling():
  """The blits are exact and any affine matrix samples like scipy's map_coordinates(order=1, mode='mirror')."""
  b, h, w = 3, 6, 6
  x = _rs.uniform(-1, 1, size=(b, h, w, 2)).astype(np.float32)
  ones = lambda v: jnp.full((b,), v, jnp.float32)
  np.testing.assert_array_equal(warp(jnp.asarray(x), scale2d(ones(-1.0), ones(1.0), b)), x[:, :, ::-1])
  np.testing.assert_array_equal(warp(jnp.asarray(x), rotate2d(ones(0.0), ones(1.0), b)), np.rot90(x, 1, (1, 2)))
  np.testing.assert_array_equal(warp(jnp.asarray(x), translate2d(ones(-2.0), ones(0.0), b))[:, :, 2:], x[:, :, :-2])
  th = np.array([0.3, -1.2, 2.0])
  g = jnp.matmul(
    rotate2d(jnp.cos(th), jnp.sin(th), b), translate2d(jnp.array([0.4, -2.7, 1.1]), jnp.array([1.3, 0.2, -9.5]), b)
  )
  g = jnp.matmul(g, scale2d(jnp.array([1.3, 0.6, 2.5]), jnp.array([0.8, 1.0, 0.4]), b))
  out = np.asarray(warp(jnp.asarray(x), g))
  yy, xx = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2, indexing="ij")
  for i in range(b):
    gi = np.asarray(g[i], np.float64)
    cols = gi[0, 0] * xx + gi[0, 1] * yy + gi[0, 2] + (w - 1) / 2
    rows = gi[1, 0] * xx + gi[1, 1] * yy + gi[1, 2] + (h - 1) / 2
    for c in range(2):
      ref = scipy.ndimage.map_coordinates(x[i, :, :, c].astype(np.float64), [rows, cols], order=1, mode="mirror")
      np.testing.assert_allclose(out[i, :, :, c], ref, atol=2e-5)


def test_ada_colour_ops_act_as_their_closed_forms():
  x = jnp.asarray(X)
  mean_c = X.mean(axis=-1, keepdims=True)
  # saturation: the luma (channel mean) is kept, the chroma x - mean_c scaled by one positive factor.
  out = np.asarray(pipeline({"saturation": 1.0})(x, KEY, 1.0))
  np.testing.assert_allclose(out.mean(axis=-1, keepdims=True), mean_c, atol=1e-5)
  ratio = (out - mean_c).reshape(5, -1) / (X - mean_c).reshape(5, -1)
  np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones_like(ratio), rtol=1e-3)
  assert np.all(ratio > 0) and np.std(ratio[:, 0]) > 0.1
  # hue: a rotation about the luma axis keeps the channel mean and the chroma's norm per pixel.
  out = np.asarray(pipeline({"hue": 1.0})(x, KEY, 1.0))
  np.testing.assert_allclose(out.mean(axis=-1), X.mean(axis=-1), atol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(out - mean_c, axis=-1), np.linalg.norm(X - mean_c, axis=-1), atol=1e-5)
  # luma flip: each image is x or its Householder reflection x - 2 mean_c (grey: -x).
  out = np.asarray(pipeline({"lumaflip": 1.0})(x, KEY, 1.0))
  flipped = [np.allclose(o, a - 2 * m, atol=1e-5) for o, a, m in zip(out, X, mean_c)]
  kept = [np.allclose(o, a, atol=1e-6) for o, a in zip(out, X)]
  assert all(f != k for f, k in zip(flipped, kept))
  grey = jnp.asarray(X[..., :1])
  v = np.array([1.0, 1.0, 1.0, 0.0]) / np.sqrt(3)
  m = jnp.asarray(np.broadcast_to(np.eye(4) - 2 * np.outer(v, v), (5, 4, 4)), jnp.float32)
  np.testing.assert_allclose(color_transform(grey, m), -X[..., :1], atol=1e-6)
  # brightness and contrast on grey: out = c * x + b per image.
  out = np.asarray(pipeline({"brightness": 1.0, "contrast": 1.0})(grey, KEY, 1.0), np.float64)
  for o, a in zip(out.reshape(5, -1), X[..., 0].reshape(5, -1).astype(np.float64)):
    c, b = np.polyfit(a, o, 1)
    np.testing.assert_allclose(o, c * a + b, atol=1e-5)


def hand_p(signs_per_update, *, target, interval, kimg, p=0.0):
  """The reference's rule written out: every `interval` updates, p += sign(mean sign - target) * n / kimg."""
  ps, acc = [], []
  for s in signs_per_update:
    acc.extend(s)
    if len(acc) == interval * len(s):
      rt = sum(acc) / len(acc)
      p = min(max(p + (1 if rt > target else -1 if rt < target else 0) * len(acc) / (kimg * 1000), 0.0), 1.0)
      acc = []
    ps.append(p)
  return ps


def test_ada_p_follows_the_update_rule_over_several_intervals():
  b, interval, kimg = 4, 3, 0.05  # p moves by 12 / 50 = 0.24 per adjustment
  rs = np.random.RandomState(5)
  # r_t = 0.5 < 0.6 for 3 intervals (p held at 0), D right on every real for 6 (p up by 0.24 each, clipped
  # at 1), wrong for 3 (down to 0.28), r_t = 0.25 for 1 (0.04), then a partial interval (p unchanged).
  signs = [np.array([1, 1, -1, 1])] * 9 + [np.ones(b)] * 18 + [-np.ones(b)] * 9 + [np.array([1, -1, 1, 0])] * 3
  signs += [np.ones(b)] * 2
  d_real = [jnp.asarray(s * rs.uniform(0.1, 3.0, size=b), jnp.float32) for s in signs]
  want = hand_p([list(s) for s in signs], target=0.6, interval=interval, kimg=kimg)
  assert min(want) == 0.0 and max(want) == 1.0 and want[-1] == pytest.approx(0.04)
  aug = make_augment("ada", interval=interval, kimg=kimg)
  state, got = aug.init_state(), []
  for d in d_real:
    state, metrics = aug.update_state(state, d)
    got.append(float(metrics["ada_p"]))
  np.testing.assert_allclose(got, want, atol=1e-6)
  assert float(metrics["ada_rt"]) == pytest.approx(0.25)  # the last completed interval: [1, -1, 1, 0] x 3
  assert int(state["updates"]) == 2 and int(state["count"]) == 2 * b and int(state["sign_sum"]) == 2 * b
  # the same under jit + lax.scan (one carry, as inside the train step), bit for bit.
  scan = jax.jit(lambda s, ds: jax.lax.scan(aug.update_state, s, ds))
  final, ms = scan(aug.init_state(), jnp.stack(d_real))
  np.testing.assert_array_equal(ms["ada_p"], np.array(got, np.float32))
  assert jax.tree.map(lambda a, c: bool(a == c), final, state) == jax.tree.map(lambda a: True, state)
  fixed = make_augment("ada", interval=1, p=0.3, adaptive=False)
  s, m = fixed.update_state(fixed.init_state(), d_real[0])
  assert float(m["ada_p"]) == pytest.approx(0.3) and float(m["ada_rt"]) == pytest.approx(np.mean(signs[0]))


def test_ada_state_is_a_checkpointable_pytree_of_arrays():
  state = make_augment("ada", p=0.25).init_state()
  assert {k: str(v.dtype) for k, v in state.items()} == {
    "p": "float32",
    "sign_sum": "int32",
    "count": "int32",
    "updates": "int32",
    "rt": "float32",
  }
  assert float(state["p"]) == 0.25 and ada_init_state()["p"] == 0.0
  with pytest.raises(ValueError, match=r"real batch \[B\]"):
    ada_update(state, jnp.zeros((4, 1)), target=0.6, interval=4, kimg=500)


@pytest.mark.parametrize("name", ["diffaugment", "ada"])
def test_apply_under_jit_and_inside_scan(name):
  aug = make_augment(name, p=0.7) if name == "ada" else make_augment(name)
  state, x = aug.init_state(), XS
  keys = jax.random.split(KEY, 3)
  if name == "ada":  # ADA_APPLY is the jitted apply; its p is moved by the scan below after the first step
    eager = [ADA_APPLY(x, keys[0], state)]
  else:
    eager = [aug.apply(x, k, state) for k in keys]
    np.testing.assert_allclose(jax.jit(aug.apply)(x, keys[0], state), eager[0], atol=1e-6)

  def body(carry, k):
    y = aug.apply(x, k, carry)
    carry, _ = aug.update_state(carry, jnp.sum(y, axis=(1, 2, 3)))
    return carry, y

  _, ys = jax.jit(lambda s, ks: jax.lax.scan(body, s, ks))(state, keys)
  np.testing.assert_allclose(ys[: len(eager)], jnp.stack(eager), atol=1e-6)
  assert ys.shape == (3, *x.shape) and ys.dtype == x.dtype


def test_registry_defaults_and_errors():
  assert list(AUGMENTS) == ["none", "diffaugment", "ada"]
  assert augment_params("diffaugment")["policy"] == "color,translation,cutout"
  assert augment_params("ada") == {
    "pipeline": "bgc",
    "target": 0.6,
    "interval": 4,
    "kimg": 500.0,
    "p": 0.0,
    "adaptive": True,
  }
  none = make_augment("none")
  assert none.init_state() == {} and none.apply(X, KEY, {}) is X and none.update_state({}, X) == ({}, {})
  cases = [
    (("flip", {}), r"unknown augment 'flip'; valid choices: none, diffaugment, ada"),
    (("diffaugment", {"polcy": "color"}), r"unknown parameter\(s\) \['polcy'\]; valid parameters: \['cutout_ratio'"),
    (("diffaugment", {"policy": "color,blur"}), r"unknown diffaugment policy 'blur'.*color, translation, cutout"),
    (("diffaugment", {"policy": ""}), r"non-empty"),
    (("diffaugment", {"cutout_ratio": 1.5}), r"cutout_ratio must be a number in \[0.0, 1.0\], got 1.5"),
    (("ada", {"pipeline": "bgcfnc"}), r"unknown ada pipeline 'bgcfnc'; valid choices: blit, geom, color, bg, bgc"),
    (("ada", {"p": 2.0}), r"ada p must be a number in \[0, 1\], got 2.0"),
    (("ada", {"interval": 0}), r"ada interval must be a positive integer, got 0"),
    (("ada", {"target": 1.0}), r"ada target"),
  ]
  for (name, params), msg in cases:
    with pytest.raises(ValueError, match=msg):
      make_augment(name, **params)
  with pytest.raises(ValueError, match=r"1 or 3 channels, got 2"):
    make_augment("ada", p=1.0).apply(jnp.zeros((1, 4, 4, 2)), KEY, ada_init_state(1.0))
  with pytest.raises(ValueError, match=r"float images \[B, H, W, C\]"):
    make_augment("diffaugment").apply(jnp.zeros((4, 4, 3)), KEY, {})
