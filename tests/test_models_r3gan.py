"""R3GAN's networks (jgan.models.r3gan, r3gan_layers) against independent references.

* Parameter counts against tests/reference/r3gan_counts.py: the reference networks' counts from the
  reference's own module structure and presets (brownvc/R3GAN ``R3GAN/Networks.py``, ``train.py``; no jgan
  code), and FFHQ-256's against the published 23.06 M / 23.01 M (the paper). The same numbers came out of the
  reference's PyTorch networks instantiated with those presets (PyTorch 2.14.1, CPU, ``sum(p.numel())``):
  G / D CIFAR-10 conditional 20,781,952 / 21,280,512, unconditional 20,732,160 / 20,683,776, FFHQ-64
  22,429,824 / 22,381,440, FFHQ-256 23,057,952 / 23,009,568.
* The resamplers against ``upfirdn2d`` written out in numpy (zero insertion, padding, the flipped 4x4
  filter), the initialisation against its closed form, fast and native layer sets against each other
  (outputs, parameter and input gradients, and R1's second derivative).
* With ``JGAN_R3GAN_SOURCE`` (a checkout of brownvc/R3GAN) and the reference environment (``.venv-ref`` or
  ``JGAN_REFERENCE_PYTHON``): the same weights through the reference's own G and D give the same outputs
  (tests/reference/r3gan_ref.py); otherwise that test skips, saying why.
"""

from __future__ import annotations

import os
import subprocess

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from jgan import config as config_lib
from jgan.models import make_models
from jgan.models import r3gan as r3
from jgan.models import r3gan_layers as rl
from tests.reference import r3gan_counts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# jgan's table, image size, classes -> the reference's preset (tests/reference/r3gan_counts.PRESETS).
COUNTED = {
  ("cifar10", 32, 10): "CIFAR10",  # the paper's conditional CIFAR-10 model (r3gan_cifar10)
  ("cifar10", 32, 0): "CIFAR10",
  ("ffhq64", 64, 0): "FFHQ-64",
  ("ffhq256", 256, 0): "FFHQ-256",
}
PUBLISHED_FFHQ256_MILLIONS = (23.06, 23.01)  # Huang et al. 2024: G / D parameters of the FFHQ-256 model


def _cfg(arch="auto", width=0, blocks=0, classes=0, layers="auto", latent=64):
  c = config_lib.set_model(config_lib.defaults(), "r3gan", latent_dim=latent, arch=arch, width=width, blocks=blocks)
  c.model.layers = layers
  c.model.conditional, c.model.num_classes = bool(classes), classes
  return c.model


def _count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _jgan_counts(arch: str, size: int, classes: int) -> tuple[int, int]:
  g, d = nnx.eval_shape(lambda: make_models(_cfg(arch, classes=classes), (size, size, 3), nnx.Rngs(0)))
  return _count(nnx.state(g, nnx.Param)), _count(nnx.state(d, nnx.Param))


@pytest.mark.parametrize("key", list(COUNTED), ids=lambda k: f"{k[0]}-{k[1]}px-{k[2]}cls")
def test_parameter_counts_are_the_reference_architectures(key):
  arch, size, classes = key
  assert _jgan_counts(arch, size, classes) == r3gan_counts.counts(COUNTED[key], c_dim=classes)


def test_ffhq256_parameter_counts_are_the_published_ones():
  g, d = r3gan_counts.counts("FFHQ-256")
  assert (round(g / 1e6, 2), round(d / 1e6, 2)) == PUBLISHED_FFHQ256_MILLIONS
  assert _jgan_counts("ffhq256", 256, 0) == (g, d)


def test_tables_are_the_reference_presets():
  """jgan's tables against the presets as the reference's train.py writes them (typed in there)."""
  tables = {"cifar10": "CIFAR10", "ffhq64": "FFHQ-64", "ffhq256": "FFHQ-256"}
  tables.update(imagenet32="ImageNet-32", imagenet64="ImageNet-64")
  for arch, preset in tables.items():
    p, a = r3gan_counts.PRESETS[preset], r3.ARCHS[arch]
    assert list(a.widths) == p["WidthPerStage"] and list(a.blocks) == p["BlocksPerStage"]
    assert list(a.groups) == p["CardinalityPerStage"]


def _np_upfirdn(x, taps, up, down, pad0, pad1, gain):
  """upfirdn2d on [B, H, W, C] in numpy, as torch_utils/ops/upfirdn2d.py's reference path computes it."""
  b, h, w, c = x.shape
  z = np.zeros((b, h * up, w * up, c), np.float64)
  z[:, ::up, ::up] = x
  z = np.pad(z, ((0, 0), (pad0, pad1), (pad0, pad1), (0, 0)))
  f = np.outer(taps, taps) * gain
  f = f[::-1, ::-1]  # convolution (flip_filter=False)
  k = f.shape[0]
  out = np.zeros((b, z.shape[1] - k + 1, z.shape[2] - k + 1, c))
  for i in range(k):
    for j in range(k):
      out += f[i, j] * z[:, i : i + out.shape[1], j : j + out.shape[2]]
  return out[:, ::down, ::down]


@pytest.mark.parametrize("fast", [True, False])
def test_resamplers_are_upfirdn2d_with_the_1331_filter(fast):
  x = np.random.default_rng(0).normal(size=(2, 6, 6, 3))
  taps = np.convolve([1, 2, 1], [1, 1]) / 8.0  # CreateLowpassKernel(Inplace=False), normalised to sum 1 in 2-D
  # upsample2d: padding ((4 + 2 - 1) // 2, (4 - 2) // 2) = (2, 1), gain up**2 = 4.
  up = _np_upfirdn(x, taps, 2, 1, 2, 1, 4.0)
  # downsample2d: padding ((4 - 2 + 1) // 2, (4 - 2) // 2) = (1, 1).
  down = _np_upfirdn(x, taps, 1, 2, 1, 1, 1.0)
  xj = jnp.asarray(x, jnp.float32)
  np.testing.assert_allclose(rl.upsample2x(xj, fast=fast), up, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(rl.downsample2x(xj, fast=fast), down, rtol=1e-5, atol=1e-6)
  assert up.shape == (2, 12, 12, 3) and down.shape == (2, 3, 3, 3)


def test_initialisation_is_the_references():
  """MSR init: N(0, (gain / sqrt(fan_in))^2), gain sqrt(2 / 1.04) * L^(-1/4) in the blocks' first two
  layers, 0 (zeros) in the third; basis N(0, 1); biases 0. So every block starts as the identity."""
  g = make_models(_cfg("cifar10", width=256), (32, 32, 3), nnx.Rngs(3))[0]
  block = g.blocks[1][0]
  lsum = 8  # 4 stages x 2 blocks
  gain = np.sqrt(2 / (1 + 0.2**2)) * lsum**-0.25
  expand = np.asarray(block.expand.kernel[...])  # [1, 1, 256, 512]
  assert abs(expand.std() / (gain / np.sqrt(256)) - 1) < 0.01 and abs(expand.mean()) < 1e-3
  grouped = np.asarray(block.grouped.kernel[...])  # [3, 3, 16, 512]: fan_in 9 * 16
  assert grouped.shape == (3, 3, 16, 512) and abs(grouped.std() / (gain / np.sqrt(144)) - 1) < 0.01
  assert not np.any(np.asarray(block.project.kernel[...])) and not np.any(np.asarray(block.act1.bias[...]))
  basis = np.asarray(g.basis[...])
  assert basis.shape == (4, 4, 256) and abs(basis.std() - 1) < 0.05
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 256))
  np.testing.assert_array_equal(block(x), x)


def _perturbed(module, key):
  """Every parameter replaced by noise (so no block is the identity): the layer sets must still agree."""
  params = nnx.state(module, nnx.Param)
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(key, len(leaves))
  new = [0.2 * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)]
  nnx.update(module, jax.tree.unflatten(tree, new))


@pytest.mark.slow
@pytest.mark.parametrize("size,classes", [(28, 0), (32, 10)])
def test_layer_sets_compute_the_same_function(size, classes):
  models = {}
  for layers in ("fast", "native"):
    g, d = make_models(_cfg("small", width=32, classes=classes, layers=layers, latent=16), (size, size, 3), nnx.Rngs(0))
    _perturbed(g, jax.random.key(1))
    _perturbed(d, jax.random.key(2))
    models[layers] = (g, d)
  z = jax.random.normal(jax.random.key(3), (2, 16))
  y = jnp.arange(2, dtype=jnp.int32) % 10 if classes else None
  out = {}
  for layers, (g, d) in models.items():
    gp, dp = nnx.state(g, nnx.Param), nnx.state(d, nnx.Param)
    gd, dd = nnx.graphdef(g), nnx.graphdef(d)
    call = lambda m, *a: m(*a) if y is None else m(*a, y)

    def score(gp, dp, z):
      x = call(nnx.merge(gd, gp), z)
      return jnp.sum(jnp.tanh(call(nnx.merge(dd, dp), x))), x

    (s, x), grads = jax.value_and_grad(score, argnums=(0, 1, 2), has_aux=True)(gp, dp, z)
    out[layers] = (x, s, grads)
  for a, b in zip(jax.tree.leaves(out["fast"]), jax.tree.leaves(out["native"])):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4 * float(jnp.max(jnp.abs(b))) + 1e-6)


@pytest.mark.slow
def test_fast_second_derivatives_match_finite_differences():
  """R1's gradient (a second derivative: through the custom VJPs of conv_valid and add_bias) against
  central differences of R1 along a random direction of D's parameters, in float64: R1 depends on where the
  leaky ReLUs' inputs cross 0, so it jumps, and a float32 step large enough to beat rounding crosses kinks.
  (The native set's second derivatives compile to XLA:CPU's naive convolution loops: docs/design.md.)"""
  with jax.enable_x64(True):
    _, d = make_models(_cfg("small", width=32, layers="fast", latent=16), (28, 28, 3), nnx.Rngs(0))
    _perturbed(d, jax.random.key(2))
    dp, dd = jax.tree.map(lambda p: p.astype(jnp.float64), nnx.state(d, nnx.Param)), nnx.graphdef(d)
    x = jax.random.normal(jax.random.key(4), (2, 28, 28, 3), jnp.float64)
    v = jax.tree.map(lambda p: jax.random.normal(jax.random.key(5), p.shape, p.dtype), dp)

    def r1(dp):
      return jnp.sum(jnp.square(jax.grad(lambda x: jnp.sum(nnx.merge(dd, dp)(x)))(x)))

    grad = jax.jit(jax.grad(r1))(dp)
    assert all(g.dtype == jnp.float64 for g in jax.tree.leaves(grad))
    along = sum(float(jnp.vdot(a, b)) for a, b in zip(jax.tree.leaves(grad), jax.tree.leaves(v)))
    h = 1e-5
    shifted = lambda sign: jax.tree.map(lambda p, u: p + sign * h * u, dp, v)
    fd = (float(jax.jit(r1)(shifted(1.0))) - float(jax.jit(r1)(shifted(-1.0)))) / (2 * h)
  assert along == pytest.approx(fd, rel=1e-5)


@pytest.mark.parametrize(
  "fields,size,match",
  [
    ({}, 48, r"data.image_size=48 is not supported by model 'r3gan'; valid choices: \[28, 32, 64, 256\]"),
    ({"arch": "ffhq256"}, 32, r"model.arch='ffhq256' is a 256 px network; data.image_size=32 takes: auto, cifar10"),
    ({"arch": "nope"}, 32, r"unknown model.arch='nope'; valid choices: auto, cifar10, .*ffhq256, small"),
    ({"width": 12}, 32, r"model.width=12 does not fit table 'cifar10' .*use a multiple of 8"),
    ({"arch": "ffhq256", "width": 100}, 256, r"model.width=100 does not fit table 'ffhq256' .*multiple of 64"),
    ({"blocks": -1}, 32, r"model.blocks=-1 must be an integer >= 0"),
  ],
)
def test_bad_sizes_fail_before_anything_is_built(fields, size, match):
  with pytest.raises(ValueError, match=match):
    r3.net_for(ml_collections.ConfigDict(dict(layers="auto", **fields)), size)


def test_28px_network_drops_the_4x4_stage():
  net = r3.net_for(ml_collections.ConfigDict(dict(arch="cifar10", width=64)), 28)
  assert (net.bottom, net.widths, net.groups, net.blocks) == (7, (64,) * 3, (8,) * 3, (2,) * 3)
  small = r3.net_for(ml_collections.ConfigDict(dict(arch="small", width=32, blocks=1)), 28)
  assert (small.widths, small.groups) == ((32, 16, 8), (4, 2, 1))  # 16 channels per group kept


REF_PYTHON = os.environ.get("JGAN_REFERENCE_PYTHON") or os.path.join(ROOT, ".venv-ref", "bin", "python")


def _torch_names(g, d) -> dict[str, np.ndarray]:
  """Our G and D parameters under the reference's state-dict names, in PyTorch layouts (OIHW, [out, in])."""
  conv = lambda k: np.asarray(k).transpose(3, 2, 0, 1)
  out = {}
  if g.embed is not None:
    out["G.Model.EmbeddingLayer.weight"] = np.asarray(g.embed.embedding[...]).T
  out["G.Model.MainLayers.0.Layers.0.Basis"] = np.asarray(g.basis[...]).transpose(2, 0, 1)
  out["G.Model.MainLayers.0.Layers.0.LinearLayer.weight"] = np.asarray(g.linear.kernel[...]).T

  def blocks(prefix, blist, first):
    for j, b in enumerate(blist):
      p = f"{prefix}.Layers.{first + j}"
      out[f"{p}.LinearLayer1.Layer.weight"] = conv(b.expand.kernel[...])
      out[f"{p}.LinearLayer2.Layer.weight"] = conv(b.grouped.kernel[...])
      out[f"{p}.LinearLayer3.Layer.weight"] = conv(b.project.kernel[...])
      out[f"{p}.NonLinearity1.Bias"] = np.asarray(b.act1.bias[...])
      out[f"{p}.NonLinearity2.Bias"] = np.asarray(b.act2.bias[...])

  for i, (change, blist) in enumerate(zip(g.changes, g.blocks)):
    if change is not None:
      out[f"G.Model.MainLayers.{i}.Layers.0.LinearLayer.Layer.weight"] = conv(change.kernel[...])
    blocks(f"G.Model.MainLayers.{i}", blist, 1)
  out["G.Model.AggregationLayer.Layer.weight"] = conv(g.out.kernel[...])
  out["D.Model.ExtractionLayer.Layer.weight"] = conv(d.inp.kernel[...])
  last = len(d.blocks) - 1
  for i, (blist, change) in enumerate(zip(d.blocks, d.changes)):
    blocks(f"D.Model.MainLayers.{i}", blist, 0)
    if change is not None:
      out[f"D.Model.MainLayers.{i}.Layers.{len(blist)}.LinearLayer.Layer.weight"] = conv(change.kernel[...])
  head = f"D.Model.MainLayers.{last}.Layers.{len(d.blocks[last])}"
  out[f"{head}.Basis.weight"] = conv(d.basis.kernel[...])
  out[f"{head}.LinearLayer.weight"] = np.asarray(d.linear.kernel[...]).T
  if d.embed is not None:
    out["D.Model.EmbeddingLayer.weight"] = np.asarray(d.embed.embedding[...]).T
  return out


@pytest.mark.slow
@pytest.mark.parametrize("classes", [0, 10])
def test_same_weights_give_the_reference_outputs(classes, tmp_path):
  source = os.environ.get("JGAN_R3GAN_SOURCE", "")
  if not source or not os.path.isdir(os.path.join(source, "R3GAN")):
    pytest.skip("set JGAN_R3GAN_SOURCE to a checkout of github.com/brownvc/R3GAN (its PyTorch networks)")
  if not os.path.exists(REF_PYTHON):
    pytest.skip(f"no reference environment at {REF_PYTHON} (make reference-env)")
  g, d = make_models(_cfg("small", width=32, classes=classes, latent=16), (32, 32, 3), nnx.Rngs(0))
  _perturbed(g, jax.random.key(1))
  _perturbed(d, jax.random.key(2))
  z = np.asarray(jax.random.normal(jax.random.key(3), (4, 16)), np.float32)
  y = np.arange(4, dtype=np.int32) % 10
  yy = None if not classes else jnp.asarray(y)
  x = np.asarray(g(jnp.asarray(z)) if not classes else g(jnp.asarray(z), yy))
  s = np.asarray(d(jnp.asarray(x)) if not classes else d(jnp.asarray(x), yy))
  net = r3.net_for(_cfg("small", width=32, classes=classes, latent=16), 32)
  arrays = _torch_names(g, d)
  np.savez(
    tmp_path / "in.npz",
    z=z,
    y=y,
    classes=classes,
    widths=np.asarray(net.widths),
    groups=np.asarray(net.groups),
    blocks=np.asarray(net.blocks),
    **{f"w:{k}": v for k, v in arrays.items()},
  )
  script = os.path.join(ROOT, "tests", "reference", "r3gan_ref.py")
  r = subprocess.run(
    [REF_PYTHON, script, source, str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert r.returncode == 0, r.stderr[-3000:]
  ref = np.load(tmp_path / "out.npz")
  np.testing.assert_allclose(x, ref["x"].transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(s, ref["d_of_x"], rtol=1e-4, atol=1e-5)
