"""The ResNet GANs (models ``resnet`` = SNGAN, ``biggan``): sizes, parameter counts, conditioning, spectral
norm, the fast layers, and the layer sets.

References are independent of the code under test: parameter counts from hand formulas of the reference
architectures and from the published (logged) counts; BatchNorm, projection and singular values with
numpy; convolutions with ``lax.conv_general_dilated``; the layer sets against each other (Flax's own
``nnx.Conv`` / ``nnx.BatchNorm`` as the reference of the fast forms).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from jgan.models import MODELS, biggan, layer_sets, make_models, resnet, same_conv, spectral
from jgan.models import resnet_blocks as rb

_DN = ("NHWC", "HWIO", "NHWC")


def _cfg(name: str, **kw) -> ml_collections.ConfigDict:
  base = dict(name=name, latent_dim=128, layers="auto", conditional=False, num_classes=0, **MODELS.defaults(name))
  base.update(kw)
  if base["num_classes"]:
    base["conditional"] = True
  return ml_collections.ConfigDict(base)


def _abstract(cfg, shape):
  return nnx.eval_shape(lambda: make_models(cfg, shape, nnx.Rngs(0)))


def _n_params(module) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(module, nnx.Param)))


# --- Parameter counts: hand formulas of the reference architectures, and the published counts ---


def _conv(k: int, cin: int, cout: int, bias: bool = True) -> int:
  return k * k * cin * cout + (cout if bias else 0)


def _sngan32_counts(num_classes: int) -> tuple[int, int]:
  """SNGAN's CIFAR-10 ResNet (Miyato et al. 2018, Table 4; Mimicry's sngan_32 / cgan_pd_32), by hand."""
  c, nz, k = 256, 128, num_classes
  bn = 2 * k * c if k else 2 * c  # a class BatchNorm: gamma and beta per class; plain: scale and bias
  block = bn + _conv(3, c, c) + bn + _conv(3, c, c) + _conv(1, c, c)  # two 3x3 + the 1x1 shortcut
  g = nz * 16 * c + 16 * c + 3 * block + 2 * c + _conv(3, c, 3)  # linear(z) -> 4x4, blocks, BN, conv
  cd = 128
  first = _conv(3, 3, cd) + _conv(3, cd, cd) + _conv(1, 3, cd)
  down = 2 * _conv(3, cd, cd) + _conv(1, cd, cd)
  plain = 2 * _conv(3, cd, cd)
  d = first + down + 2 * plain + (cd + 1) + k * cd  # linear head, projection embedding
  return g, d


def _biggan32_counts() -> tuple[int, int]:
  """StudioGAN's CIFAR-10 BigGAN (big_resnet, z 80, shared 128, g/d_conv_dim 96, attention at 16 px)."""
  ch, k, shared = 96, 10, 128
  c, chunk = 4 * ch, 80 // 4
  cond = shared + chunk
  attn = lambda c: 2 * c * (c // 8) + 2 * c * (c // 2) + 1  # theta, phi, g, o (no biases) + sigma
  block = 2 * (2 * cond * c) + _conv(1, c, c) + 2 * _conv(3, c, c)  # 2 x (gain, bias) linears, convs
  g = chunk * 16 * c + 16 * c + k * shared + 3 * block + attn(c) + 2 * c + _conv(3, c, 3)
  cd = 2 * ch
  first = _conv(1, 3, cd) + _conv(3, 3, cd) + _conv(3, cd, cd)
  down = _conv(1, cd, cd) + 2 * _conv(3, cd, cd)
  plain = 2 * _conv(3, cd, cd)
  d = first + attn(cd) + down + 2 * plain + (cd + 1) + k * cd
  return g, d


# Published counts. PyTorch-StudioGAN (POSTECH-CVLab) logs "Number of parameters" of G and D at the start
# of every run: logs/CIFAR10/SNGAN-train-2020_09_18_14_37_00.log (SNGAN ResNet with conditional BN and
# projection D, g_conv_dim 64 -> 256 channels, d_conv_dim 64 -> 128) and
# logs/CIFAR10/BigGAN-train-2021_01_15_14_48_48.log (config src/configs/CIFAR10/BigGAN.json).
STUDIOGAN_SNGAN_COND = (4_304_387, 1_055_105)
STUDIOGAN_BIGGAN = (9_416_196, 2_415_170)


def test_sngan_cifar10_parameter_counts():
  """Conditional: equal to StudioGAN's logged counts. Unconditional: no paper or README states them
  (Mimicry and the SNGAN paper give none); they are the conditional counts less the class parameters
  (3 blocks x 2 BatchNorms x (2 x 10 x 256 per-class gains/biases - 2 x 256 plain) in G, the 10 x 128
  projection embedding in D), and the hand formula gives the same."""
  for k in (10, 0):
    g, d = _abstract(_cfg("resnet", num_classes=k), (32, 32, 3))
    assert (_n_params(g), _n_params(d)) == _sngan32_counts(k)
  g_pub, d_pub = STUDIOGAN_SNGAN_COND
  assert _sngan32_counts(10) == (g_pub, d_pub)
  assert _sngan32_counts(0) == (g_pub - 3 * 2 * (2 * 10 * 256 - 2 * 256), d_pub - 10 * 128) == (4_276_739, 1_053_825)


def test_biggan_cifar10_parameter_counts():
  g, d = _abstract(_cfg("biggan", latent_dim=80, num_classes=10), (32, 32, 3))
  assert (_n_params(g), _n_params(d)) == _biggan32_counts() == STUDIOGAN_BIGGAN


def test_spectral_norm_vectors_are_statistics_not_parameters():
  g, d = _abstract(_cfg("biggan", latent_dim=80, num_classes=10), (32, 32, 3))
  us = [m.u for _, m in nnx.iter_graph(d) if isinstance(m, spectral.SpectralNorm)]
  assert us and all(isinstance(u, nnx.BatchStat) for u in us)
  assert len(jax.tree.leaves(nnx.state(g, nnx.BatchStat))) > 0


# --- Shapes, dtypes, sizes, bad values ---

SNGAN_CASES = [(s, c) for s in resnet.SNGAN_SIZES for c in (0, 10)]
BIGGAN_CASES = [(s, c) for s in biggan.SIZES for c in (0, 10)]


@pytest.mark.parametrize(
  "name,size,k", [("resnet", s, k) for s, k in SNGAN_CASES] + [("biggan", s, k) for s, k in BIGGAN_CASES]
)
def test_shapes_and_dtypes_at_every_size(name, size, k):
  ch = 1 if size == 28 else 3
  cfg = _cfg(name, num_classes=k, latent_dim=96 if size == 28 else 120, g_width=16 if name == "resnet" else 8)
  cfg.d_width = cfg.g_width

  def run(z, y):
    g, d = make_models(cfg, (size, size, ch), nnx.Rngs(0))
    x = g(z, y) if k else g(z)
    return x, d(x, y) if k else d(x)

  x, s = jax.eval_shape(run, jax.ShapeDtypeStruct((2, cfg.latent_dim), jnp.float32), jnp.zeros((2,), jnp.int32))
  assert x.shape == (2, size, size, ch) and x.dtype == jnp.float32
  assert s.shape == (2,) and s.dtype == jnp.float32


# Real networks: the tiny conditional 28 px G and D of each model, initialised once per test module
# (initialising inside jit compiles for tens of seconds on a busy 2-core CPU).
_TINY = {"resnet": dict(g_width=8, d_width=8), "biggan": dict(g_width=8, d_width=8)}


@pytest.fixture(scope="module", params=["resnet", "biggan"])
def tiny(request):
  """``(name, cfg, graphdef, state)`` of ``(G, D)`` for mnist-like 28 px data, 10 classes, z 96."""
  cfg = _cfg(request.param, num_classes=10, latent_dim=96, **_TINY[request.param])
  build = lambda: make_models(cfg, (28, 28, 1), nnx.Rngs(0))
  graphdef, _ = nnx.split(nnx.eval_shape(build))
  state = jax.jit(lambda: nnx.split(build())[1])()
  return request.param, cfg, graphdef, state


def _merge(tiny):
  _, _, graphdef, state = tiny
  return nnx.merge(graphdef, state, copy=True)


def test_outputs_are_images_and_finite_scores(tiny):
  """A real forward pass: tanh images in (-1, 1), finite float32 scores."""
  z = jax.random.normal(jax.random.key(1), (4, 96))
  y = jnp.array([0, 3, 3, 9], jnp.int32)

  @jax.jit
  def run(state, z, y):
    g, d = nnx.merge(tiny[2], state, copy=True)
    x = g(z, y)
    return x, d(x, y)

  x, s = run(tiny[3], z, y)
  assert x.shape == (4, 28, 28, 1) and x.dtype == jnp.float32 and float(jnp.max(jnp.abs(x))) < 1.0
  assert s.dtype == jnp.float32 and np.all(np.isfinite(np.asarray(s)))


@pytest.mark.parametrize("name", ["resnet", "biggan"])
def test_bfloat16_compute_keeps_float32_parameters_and_outputs(name):
  cfg = _cfg(name, num_classes=10, latent_dim=96, g_width=8, d_width=8, compute_dtype="bfloat16")

  def run(z, y):
    g, d = make_models(cfg, (28, 28, 1), nnx.Rngs(0))
    x = g(z, y)
    params = jax.tree.leaves(nnx.state((g, d), nnx.Param))
    return x, d(x, y), d.features(x), params

  x, s, hidden, params = jax.eval_shape(run, jnp.zeros((2, 96)), jnp.zeros((2,), jnp.int32))
  assert x.dtype == s.dtype == jnp.float32 and all(p.dtype == jnp.float32 for p in params)
  assert hidden.dtype == jnp.bfloat16  # the layers do compute in bfloat16


def test_bad_values_name_the_value_and_the_choices():
  with pytest.raises(
    ValueError, match=r"data.image_size=40 is not supported by model 'resnet'; valid choices: \[28, 32, 48, 64, 128\]"
  ):
    _abstract(_cfg("resnet"), (40, 40, 3))
  with pytest.raises(
    ValueError, match=r"data.image_size=48 is not supported by model 'biggan'; valid choices: \[28, 32, 64, 128\]"
  ):
    _abstract(_cfg("biggan", latent_dim=80), (48, 48, 3))
  with pytest.raises(ValueError, match="model 'resnet' needs square images"):
    _abstract(_cfg("resnet"), (2,))
  with pytest.raises(ValueError, match=r"model.g_width=-8 must be an integer >= 0 \(0 = the reference width 256\)"):
    _abstract(_cfg("resnet", g_width=-8), (32, 32, 3))
  with pytest.raises(
    ValueError,
    match=r"model.attn_res=8 is not a self-attention resolution .* valid choices: -1 \(reference: 14\), 0 \(none\), 14",
  ):
    _abstract(_cfg("biggan", latent_dim=96, attn_res=8), (28, 28, 1))
  with pytest.raises(ValueError, match=r"model.latent_dim=90 must split into 4 equal chunks"):
    _abstract(_cfg("biggan", latent_dim=90), (32, 32, 3))
  with pytest.raises(ValueError, match=r"model.shared_dim=0 must be a positive integer"):
    _abstract(_cfg("biggan", latent_dim=80, shared_dim=0), (32, 32, 3))
  with pytest.raises(ValueError, match=r"unknown resample='left'; valid choices: None, 'up', 'down'"):
    same_conv.SameConv(2, 2, 3, resample="left", rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="needs the class labels"):
    _abstract(_cfg("resnet", num_classes=10), (28, 28, 1))[0](jnp.zeros((2, 128)))


def test_model_fields_are_validated_by_the_config():
  from jgan import config as config_lib

  c = config_lib.set_model(config_lib.defaults(), "biggan", latent_dim=60)
  assert c.model.attn_res == -1 and c.model.shared_dim == 128
  d = c.to_dict()
  d["model"]["attn_res"] = "16"
  with pytest.raises(ValueError, match="model.attn_res='16' has type str; expected int"):
    config_lib.resolve(ml_collections.ConfigDict(d))
  with pytest.raises(ValueError, match="unknown config key 'model.d_norm'"):
    config_lib.set_model(config_lib.defaults(), "resnet", d_norm="batch")


def test_reference_architecture_of_sngan32():
  g, d = _abstract(_cfg("resnet"), (32, 32, 3))
  assert [b.c1.kernel.shape for b in g.blocks] == [(3, 3, 256, 256)] * 3
  assert [b.c1.resample for b in g.blocks] == ["up"] * 3 and g.bottom == 4
  assert [type(b).__name__ for b in d.blocks] == ["DBlock"] * 4
  assert [b.first for b in d.blocks] == [True, False, False, False]
  assert [b.c2.layer.resample for b in d.blocks] == ["down", "down", None, None]
  assert [b.shortcut is None for b in d.blocks] == [False, False, True, True]  # identity when the shape stays
  assert d.feature_dim == 128 and d.out.linear.layer.kernel.shape == (128, 1)


# --- Conditioning: formulas against numpy ---


def _conf(sn=False, layers_name="fast"):
  init = nnx.initializers.normal(0.3)
  return rb.BlockConf(layer_sets.layer_set(layers_name), None, sn, init, init, 1e-5)


def test_class_batchnorm_formula():
  bn = rb.ConditionalBatchNorm(3, _conf(), mode="class", num_classes=4, rngs=nnx.Rngs(0))
  gain = np.asarray(jax.random.normal(jax.random.key(1), (4, 3)))
  bias = np.asarray(jax.random.normal(jax.random.key(2), (4, 3)))
  bn.gain.embedding[...], bn.bias.embedding[...] = jnp.asarray(gain), jnp.asarray(bias)
  x = np.asarray(jax.random.normal(jax.random.key(3), (5, 2, 2, 3))) * 2 + 1
  y = np.array([0, 1, 3, 3, 2])
  xhat = (x - x.mean((0, 1, 2))) / np.sqrt(x.var((0, 1, 2)) + 1e-5)
  want = xhat * gain[y][:, None, None] + bias[y][:, None, None]
  np.testing.assert_allclose(np.asarray(bn(jnp.asarray(x), jnp.asarray(y))), want, rtol=1e-4, atol=1e-4)
  # A fresh class BatchNorm starts as the plain normalisation (gain 1, bias 0).
  fresh = rb.ConditionalBatchNorm(3, _conf(), mode="class", num_classes=4, rngs=nnx.Rngs(0))
  np.testing.assert_allclose(np.asarray(fresh(jnp.asarray(x), jnp.asarray(y))), xhat, rtol=1e-4, atol=1e-4)


def test_linear_batchnorm_formula():
  bn = rb.ConditionalBatchNorm(3, _conf(), mode="linear", cond_dim=5, rngs=nnx.Rngs(0))
  wg, wb = np.asarray(bn.gain.kernel[...]), np.asarray(bn.bias.kernel[...])
  x = np.asarray(jax.random.normal(jax.random.key(3), (4, 3, 3, 3)))
  c = np.asarray(jax.random.normal(jax.random.key(4), (4, 5)))
  xhat = (x - x.mean((0, 1, 2))) / np.sqrt(x.var((0, 1, 2)) + 1e-5)
  want = xhat * (1 + c @ wg)[:, None, None] + (c @ wb)[:, None, None]
  np.testing.assert_allclose(np.asarray(bn(jnp.asarray(x), jnp.asarray(c))), want, rtol=1e-4, atol=1e-4)


def _converged(module, x, *args, n=40):
  """``module`` after ``n`` train-mode calls (spectral norm's power iterations converge), in eval mode."""
  gd, state = nnx.split(module)

  @jax.jit
  def call(state):
    m = nnx.merge(gd, state)
    m.train()
    m(x, *args)
    return nnx.state(m)

  for _ in range(n):
    state = call(state)
  m = nnx.merge(gd, state)
  m.eval()
  return m


def test_projection_discriminator_formula_and_labels(tiny):
  """``D(x, y1) - D(x, y2) = <(E[y1] - E[y2]) / sigma(E), sum_hw features(x)>`` with sigma from numpy's SVD."""
  _, d = _merge(tiny)
  x = jax.random.uniform(jax.random.key(1), (6, 28, 28, 1), minval=-1, maxval=1)
  y1, y2 = jnp.array([0, 1, 2, 3, 4, 5]), jnp.array([9, 8, 7, 6, 5, 5])
  d = _converged(d, x, y1)
  emb = np.asarray(d.embed.layer.embedding[...], np.float64)
  sigma = np.linalg.svd(emb, compute_uv=False)[0]
  pooled = np.asarray(d.features(x), np.float64).sum((1, 2))
  want = np.einsum("bc,bc->b", (emb[np.asarray(y1)] - emb[np.asarray(y2)]) / sigma, pooled)
  got = np.asarray(d(x, y1)) - np.asarray(d(x, y2))
  np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3)
  assert got[-1] == 0 and np.all(np.abs(got[:-1]) > 0)


def test_generator_output_depends_on_the_class(tiny):
  name = tiny[0]

  @jax.jit
  def run(state, z):
    g, _ = nnx.merge(tiny[2], state, copy=True)
    # SNGAN's class gains start at 1 and biases at 0 (every class the same): move them off the start.
    # BigGAN's shared class embedding starts orthogonal, so its classes differ from the first step.
    if name == "resnet":
      for blk in g.blocks:
        for bn in (blk.bn1, blk.bn2):
          noise = 0.5 * jax.random.normal(jax.random.key(7), bn.gain.embedding.shape)
          bn.gain.embedding[...] = bn.gain.embedding[...] + noise
    z10 = jnp.repeat(z, 10, axis=0)
    return g(z10, jnp.tile(jnp.arange(10), z.shape[0])).reshape(z.shape[0], 10, -1)

  out = np.asarray(run(tiny[3], jax.random.normal(jax.random.key(2), (2, 96))))
  for i in range(2):  # every pair of classes gives a different image for the same z
    diffs = np.abs(out[i][:, None] - out[i][None]).max(-1)
    assert np.all(diffs[~np.eye(10, dtype=bool)] > 1e-4)


# --- Spectral normalisation ---


def test_every_discriminator_layer_is_spectrally_normalised_to_one(tiny):
  _, d = _merge(tiny)
  layers_in_d = [m for _, m in nnx.iter_graph(d) if isinstance(m, (nnx.Conv, nnx.Linear, nnx.Embed))]
  wrapped = [m for _, m in nnx.iter_graph(d) if isinstance(m, spectral.SpectralNorm)]
  assert len(wrapped) == len(layers_in_d) and {id(m.layer) for m in wrapped} == {id(m) for m in layers_in_d}
  x = jax.random.uniform(jax.random.key(1), (4, 28, 28, 1), minval=-1, maxval=1)
  d = _converged(d, x, jnp.arange(4))
  for sn in (m for _, m in nnx.iter_graph(d) if isinstance(m, spectral.SpectralNorm)):
    w = np.asarray(getattr(sn.layer, sn.param)[...], np.float64)
    mat = w.reshape(-1, w.shape[-1])
    sigma_est, _ = spectral.power_iteration(jnp.asarray(mat, jnp.float32), sn.u[...], 1)
    top = np.linalg.svd(mat / float(sigma_est), compute_uv=False)[0]  # the normalised weight's top value
    assert abs(top - 1.0) < 2e-2, (sn.param, w.shape, top)


def test_biggan_generator_is_spectrally_normalised_but_not_its_shared_embedding():
  g, _ = _abstract(_cfg("biggan", latent_dim=80, num_classes=10), (32, 32, 3))
  plain = [m for _, m in nnx.iter_graph(g) if isinstance(m, (nnx.Conv, nnx.Linear))]
  wrapped = {id(m.layer) for _, m in nnx.iter_graph(g) if isinstance(m, spectral.SpectralNorm)}
  assert plain and all(id(m) in wrapped for m in plain)
  assert id(g.shared) not in wrapped and isinstance(g.shared, nnx.Embed)
  sngan_g, _ = _abstract(_cfg("resnet", num_classes=10), (32, 32, 3))
  assert not any(isinstance(m, spectral.SpectralNorm) for _, m in nnx.iter_graph(sngan_g))


def test_wrap_layers_recurses_and_never_wraps_twice():
  class Inner(nnx.Module):
    def __init__(self, rngs):
      self.conv = nnx.Conv(2, 3, (3, 3), rngs=rngs)
      self.done = spectral.SpectralNorm(nnx.Linear(3, 3, rngs=rngs), rngs=rngs)

  class Outer(nnx.Module):
    def __init__(self, rngs):
      self.inner = Inner(rngs)
      self.blocks = nnx.List([Inner(rngs), nnx.Linear(3, 1, rngs=rngs)])

  m = spectral.wrap_layers(Outer(nnx.Rngs(0)), nnx.Rngs(1))
  assert isinstance(m.inner.conv, spectral.SpectralNorm) and isinstance(m.blocks[0].conv, spectral.SpectralNorm)
  assert isinstance(m.blocks[1], spectral.SpectralNorm)
  for done in (m.inner.done, m.blocks[0].done):
    assert isinstance(done, spectral.SpectralNorm) and isinstance(done.layer, nnx.Linear)  # not re-wrapped
  # A DCGAN D inside the generic projection wrapper now gets its convolutions normalised too.
  cfg = ml_collections.ConfigDict(
    dict(name="dcgan", latent_dim=8, g_width=8, d_width=8, d_norm="none", conditional=True, num_classes=10)
  )
  cfg.d_spectral_norm = True
  _, d = _abstract(cfg, (28, 28, 1))
  assert all(isinstance(c, spectral.SpectralNorm) for c in d.base.convs) and isinstance(
    d.base.out, spectral.SpectralNorm
  )


# --- The fast layers against lax ---


def _ref_same(x, k):
  return jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=_DN)


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("mode", [None, "up", "down"])
def test_same_conv_forms_equal_lax_with_gradients(k, mode):
  kx, kk, kc = jax.random.split(jax.random.key(k), 3)
  x = jax.random.normal(kx, (2, 6, 8, 4))
  w = jax.random.normal(kk, (k, k, 4, 5))
  ref = {
    None: _ref_same,
    "up": lambda x, w: _ref_same(jnp.repeat(jnp.repeat(x, 2, 1), 2, 2), w),
    "down": lambda x, w: (
      jax.lax.reduce_window(_ref_same(x, w), 0.0, jax.lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4
    ),
  }[mode]
  mine = {None: same_conv.same, "up": same_conv.up_conv2x, "down": same_conv.conv_pool2x}[mode]
  want, vjp_ref = jax.vjp(ref, x, w)
  got, vjp_got = jax.vjp(mine, x, w)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
  cot = jax.random.normal(kc, want.shape)
  for a, b in zip(vjp_got(cot), vjp_ref(cot)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(jnp.abs(b).max()))


def test_add_bias_gradient():
  y, b = jax.random.normal(jax.random.key(0), (3, 4, 5, 6)), jnp.arange(6.0)
  f = lambda op: jax.grad(lambda y, b: jnp.sum(jnp.sin(op(y, b))), (0, 1))(y, b)
  for a, r in zip(f(same_conv.add_bias), f(lambda y, b: y + b[None, None, None])):
    np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5)


# --- model.layers: the fast and the native layer sets ---


def test_blocks_have_the_same_parameters_in_both_layer_sets():
  """Same names, shapes and initial values for the same ``rngs`` (checkpoints move between the sets)."""

  def build(ls_name):
    conf = _conf(sn=True, layers_name=ls_name)
    rngs = nnx.Rngs(3)
    return [
      rb.GBlock(8, 8, conf, norm=dict(mode="class", num_classes=3), rngs=rngs),
      rb.DBlock(1, 8, conf, hidden=8, down=True, first=True, rngs=rngs),
      rb.DBlock(8, 16, conf, hidden=8, down=True, rngs=rngs),
      rb.SelfAttention(16, conf, rngs=rngs),
    ]

  fast, native = nnx.state(build("fast")), nnx.state(build("native"))
  assert jax.tree.structure(fast) == jax.tree.structure(native)
  for a, b in zip(jax.tree.leaves(fast), jax.tree.leaves(native)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_layer_sets_compute_the_same_function(tiny):
  """The tiny G and D with model.layers = fast and = native (Flax's nnx.Conv on the up-sampled map and
  avg-pooled after, nnx.BatchNorm): same outputs, updated statistics (BatchNorm, spectral-norm u) and
  gradients w.r.t. every parameter and the input, from the same parameters."""
  name, cfg, _, state = tiny
  graphs, shapes = {}, {}
  for ls in ("fast", "native"):
    c = ml_collections.ConfigDict(cfg.to_dict())
    c.layers = ls
    graphs[ls], abstract = nnx.split(nnx.eval_shape(lambda: make_models(c, (28, 28, 1), nnx.Rngs(0))))
    shapes[ls] = jax.tree.map(lambda a: a.shape, abstract)
  assert shapes["fast"] == shapes["native"] == jax.tree.map(lambda a: a.shape, state)
  rng = np.random.default_rng(0)
  z = jnp.asarray(rng.normal(size=(4, 96)), jnp.float32)
  x = jnp.asarray(rng.uniform(-1, 1, (4, 28, 28, 1)), jnp.float32)
  y = jnp.array([1, 5, 5, 9])
  wg = jnp.asarray(rng.normal(size=(4, 28, 28, 1)), jnp.float32)

  def loss(params, rest, inputs, gd):
    g, d = nnx.merge(gd, params, rest, copy=True)
    g.train(), d.train()
    z, x = inputs
    out = jnp.sum(g(z, y) * wg) + jnp.sum(d(x, y) * jnp.arange(1.0, 5.0))
    return out, nnx.state((g, d), nnx.Not(nnx.Param))

  params, rest = nnx.split_state(state, nnx.Param, ...)
  res = {}
  for ls, gd in graphs.items():
    fn = jax.jit(jax.value_and_grad(loss, (0, 2), has_aux=True), static_argnums=3)
    res[ls] = fn(params, rest, (z, x), gd)
  (lf, sf), gf = res["fast"]
  (ln, sn_), gn = res["native"]
  np.testing.assert_allclose(float(lf), float(ln), rtol=1e-4, atol=1e-3)
  # The biases of layers right before a BatchNorm (kept: the references have them, and their counts
  # include them) have a zero gradient up to rounding; they are compared at the scale of all gradients.
  scale = max(float(np.abs(b).max()) for b in jax.tree.leaves(gn))
  for a, b in zip(jax.tree.leaves(gf), jax.tree.leaves(gn)):
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=max(1e-4 * float(np.abs(b).max()), 1e-6 * scale))
  for a, b in zip(jax.tree.leaves(sf), jax.tree.leaves(sn_)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
