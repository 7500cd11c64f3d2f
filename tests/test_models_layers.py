"""jgan.models.layers: the fast layers compute what the layers they replace compute, and stay fast.

``UpConv`` against ``conv_transpose`` is in tests/test_models.py; here: ``DownConv`` against the strided
``nnx.Conv``, ``BatchNorm`` (dot-product reductions, hand-written VJP) against ``nnx.BatchNorm``, and
``model.compute_dtype='bfloat16'`` against float32 on a whole train step.

Every convolution jgan's models run stays on XLA:CPU's fast path, at any derivative order, in loops:
XLA:CPU emits a convolution with non-canonical dimension numbers (what JAX's own conv derivatives are)
as a naive loop fusion (``wrapped_convolution``) wherever it cannot rewrite it: inside ``lax.scan`` bodies
(n_critic > 1, ``train.steps_per_call``) and in second derivatives (gradient penalties). Those ran
50-450x slower than the fast path (docs/performance.md). ``layers.conv_valid`` writes its derivatives as
forward convolutions, and ``MapConv`` is a matmul. The reference for the values is lax's own
convolution and its autodiff; the structural check reads the compiled HLO, not a clock.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jgan import config as config_lib
from jgan import step as step_lib
from jgan.models import layers
from tests.helpers import load_config, setup


@pytest.mark.parametrize("shape", [(2, 4, 4, 3, 5), (3, 8, 6, 4, 2), (1, 2, 2, 2, 3)])
def test_downconv_equals_strided_conv(shape):
  b, h, w, cin, cout = shape
  kx, kw = jax.random.split(jax.random.key(0))
  x = jax.random.normal(kx, (b, h, w, cin))
  k = jax.random.normal(kw, (4, 4, cin, cout))

  def ref_fn(x, k):
    return jax.lax.conv_general_dilated(x, k, (2, 2), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))

  got = layers.downconv2x(x, k)
  assert got.shape == (b, h // 2, w // 2, cout)
  np.testing.assert_allclose(got, ref_fn(x, k), atol=1e-5, rtol=1e-5)
  loss = lambda f: lambda x, k: jnp.sum(jnp.sin(f(x, k)))
  g_ref = jax.grad(loss(ref_fn), argnums=(0, 1))(x, k)
  g_got = jax.grad(loss(layers.downconv2x), argnums=(0, 1))(x, k)
  for a, r in zip(g_got, g_ref):
    np.testing.assert_allclose(a, r, atol=1e-4, rtol=1e-4)


def test_downconv_module_is_a_drop_in_for_nnx_conv():
  ref = nnx.Conv(3, 4, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)), rngs=nnx.Rngs(0))
  ref.bias[...] = jnp.arange(4.0)
  mine = layers.DownConv(3, 4, use_bias=True, rngs=nnx.Rngs(1))
  assert mine.kernel.shape == ref.kernel.shape and mine.bias.shape == ref.bias.shape
  mine.kernel[...] = ref.kernel[...]
  mine.bias[...] = ref.bias[...]
  x = jax.random.normal(jax.random.key(2), (2, 6, 6, 3))
  np.testing.assert_allclose(mine(x), ref(x), atol=1e-5)


def test_downconv_rejects_odd_sizes():
  with pytest.raises(ValueError, match="even spatial sizes"):
    layers.downconv2x(jnp.zeros((1, 5, 4, 2)), jnp.zeros((4, 4, 2, 3)))


def _bn_run(module, x, cotangent):
  """Training-mode output, updated running stats and gradients w.r.t. (params, x) of sum(y * ct)."""
  graphdef, params, stats = nnx.split(module, nnx.Param, ...)

  def loss(p, x):
    m = nnx.merge(graphdef, p, stats, copy=True)
    m.train()
    y = m(x)
    return jnp.sum(y * cotangent), (y, nnx.state(m, nnx.BatchStat))

  (_, (y, new_stats)), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(params, x)
  return y, new_stats, grads


@pytest.mark.parametrize("shape", [(8, 5, 5, 6), (16, 3)])
def test_batchnorm_matches_nnx_batchnorm(shape):
  c = shape[-1]
  kx, kc = jax.random.split(jax.random.key(3))
  x = 3.0 * jax.random.normal(kx, shape) + 1.5
  ct = jax.random.normal(kc, shape)
  ref = nnx.BatchNorm(c, momentum=0.9, rngs=nnx.Rngs(0))
  mine = layers.BatchNorm(c, momentum=0.9, rngs=nnx.Rngs(0))
  for m in (ref, mine):
    m.scale[...] = jnp.linspace(0.5, 2.0, c)
    m.bias[...] = jnp.linspace(-1.0, 1.0, c)
  got, want = jax.jit(lambda x: _bn_run(mine, x, ct))(x), jax.jit(lambda x: _bn_run(ref, x, ct))(x)
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(g, w, atol=2e-5 * max(1.0, float(np.abs(w).max())), rtol=1e-5)


def test_batchnorm_eval_mode_uses_running_stats():
  mine = layers.BatchNorm(4, momentum=0.9, rngs=nnx.Rngs(0))
  ref = nnx.BatchNorm(4, momentum=0.9, rngs=nnx.Rngs(0))
  for m in (mine, ref):
    m.mean[...] = jnp.arange(4.0)
    m.var[...] = jnp.arange(1.0, 5.0)
    m.eval()
  x = jax.random.normal(jax.random.key(0), (3, 4))
  np.testing.assert_allclose(mine(x), ref(x), atol=1e-6)


def test_batchnorm_gradient_through_returned_statistics():
  """The hand-written VJP matches autodiff of the plain formula, including the mean/var outputs."""
  x = jax.random.normal(jax.random.key(4), (6, 2, 3), jnp.float32)
  scale, bias = jnp.array([1.0, 2.0, 0.5]), jnp.array([0.1, -0.2, 0.3])

  def plain(x, scale, bias, eps):
    mean = jnp.mean(x, (0, 1))
    var = jnp.maximum(0.0, jnp.mean(x * x, (0, 1)) - mean * mean)
    y = (x - mean[None, None]) * (jax.lax.rsqrt(var + eps) * scale)[None, None] + bias[None, None]
    return y, mean, var

  def loss(bn):
    def f(x, scale, bias):
      y, mean, var = bn(x, scale, bias, 1e-5)
      return jnp.sum(jnp.sin(y)) + jnp.sum(mean**2) + jnp.sum(jnp.sqrt(var))

    return f

  got = jax.grad(loss(layers.batch_norm_train), argnums=(0, 1, 2))(x, scale, bias)
  want = jax.grad(loss(plain), argnums=(0, 1, 2))(x, scale, bias)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, atol=1e-5, rtol=1e-4)


def _step_losses(compute_dtype: str):
  c = config_lib.defaults()
  c.model.compute_dtype = compute_dtype
  c.model.latent_dim, c.model.g_width, c.model.d_width = 16, 8, 8
  c.train.batch_size = 8
  c, parts, state = setup(c, (28, 28, 1), jax.random.key(0))
  step = step_lib.make_train_step(parts)
  rng = np.random.default_rng(0)
  out = []
  for _ in range(2):
    batch = {"x": jnp.asarray(rng.uniform(-1, 1, (1, 8, 28, 28, 1)), jnp.float32)}
    state, metrics = step(state, batch)
    out.append({k: float(metrics[k]) for k in ("d_loss", "g_loss")})
  return state, out


def test_bfloat16_step_runs_and_is_close_to_float32():
  s32, l32 = _step_losses("float32")
  s16, l16 = _step_losses("bfloat16")
  # Parameters and statistics stay float32 in the state; the losses agree to bfloat16 accuracy.
  assert all(a.dtype == jnp.float32 for a in jax.tree.leaves((s16.g.params, s16.d.params, s16.g.stats)))
  for a, b in zip(l16, l32):
    for k in a:
      assert np.isfinite(a[k])
      assert abs(a[k] - b[k]) < 0.05 * abs(b[k]) + 0.02, (k, a[k], b[k])


def test_bfloat16_models_return_float32():
  c = config_lib.defaults()
  c.model.compute_dtype = "bfloat16"
  c.model.latent_dim, c.model.g_width, c.model.d_width = 16, 8, 8
  from jgan.models import make_models

  def run(z):
    g, d = make_models(c.model, (32, 32, 3), nnx.Rngs(0))
    x = g(z)
    return x, d(x), g.ups[0](jnp.zeros((2, 4, 4, 32)))

  x, logits, hidden = jax.eval_shape(run, jnp.zeros((2, 16)))
  assert x.dtype == jnp.float32 and logits.dtype == jnp.float32
  assert hidden.dtype == jnp.bfloat16  # the layers do compute in bfloat16


def test_unknown_compute_dtype_lists_choices():
  c = config_lib.defaults()
  c.model.compute_dtype = "float16"
  from jgan.models import make_models

  with pytest.raises(ValueError, match="valid choices: float32, bfloat16"):
    nnx.eval_shape(lambda: make_models(c.model, (32, 32, 3), nnx.Rngs(0)))


def test_spectral_norm_still_wraps_dcgan_critic_convs():
  """DownConv subclasses nnx.Conv, so ``model.d_spectral_norm`` still finds D's strided convolutions."""
  from jgan.models import make_models, spectral

  c = config_lib.defaults()
  c.model.d_spectral_norm, c.model.d_norm = True, "none"
  c.model.latent_dim, c.model.g_width, c.model.d_width = 4, 8, 8
  _, d = nnx.eval_shape(lambda: make_models(c.model, (32, 32, 3), nnx.Rngs(0)))
  assert all(isinstance(m, spectral.SpectralNorm) and isinstance(m.layer, layers.DownConv) for m in d.convs)


_DN = ("NHWC", "HWIO", "NHWC")


def _ref(x, k):
  return jax.lax.conv_general_dilated(x, k, (1, 1), "VALID", dimension_numbers=_DN)


@pytest.mark.parametrize(
  "xs,ks", [((3, 7, 6, 4), (2, 3, 4, 5)), ((2, 5, 5, 8), (2, 2, 8, 3)), ((1, 4, 4, 2), (4, 4, 2, 1))]
)
def test_conv_valid_matches_lax_to_second_order(xs, ks):
  kx, kk = jax.random.split(jax.random.key(0))
  x, k = jax.random.normal(kx, xs), jax.random.normal(kk, ks)
  np.testing.assert_allclose(layers.conv_valid(x, k), _ref(x, k), rtol=1e-5, atol=1e-5)
  f = lambda conv: lambda x, k: jnp.sum(jnp.sin(conv(x, k)))
  for a, b in zip(jax.grad(f(layers.conv_valid), (0, 1))(x, k), jax.grad(f(_ref), (0, 1))(x, k)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
  # A gradient penalty's term: d/dk of |d/dx f|^2 (reverse over reverse through the custom VJP).
  gp = lambda conv: lambda x, k: jnp.sum(jax.grad(f(conv), 0)(x, k) ** 2)
  for a, b in zip(jax.grad(gp(layers.conv_valid), (0, 1))(x, k), jax.grad(gp(_ref), (0, 1))(x, k)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3 * float(jnp.abs(b).max()))


def test_mapconv_is_a_drop_in_for_the_full_map_nnx_conv():
  ref = nnx.Conv(6, 2, (4, 4), padding="VALID", rngs=nnx.Rngs(0))
  ref.bias[...] = jnp.array([0.5, -1.0])
  mine = layers.MapConv(6, 2, (4, 4), padding="VALID", rngs=nnx.Rngs(1))
  mine.kernel[...], mine.bias[...] = ref.kernel[...], ref.bias[...]
  x = jax.random.normal(jax.random.key(2), (3, 4, 4, 6))
  np.testing.assert_allclose(mine(x), ref(x), rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match="4x4 map"):
    mine(jnp.zeros((1, 5, 5, 6)))


def _conv_labels(config, data_shape):
  config, parts, state = setup(config, data_shape, jax.random.key(0))
  nc, b = config.train.n_critic, config.train.batch_size
  batch = {"x": np.zeros((nc, b) + data_shape, np.float32)}
  text = step_lib.make_train_step(parts).lower(state, batch).compile().as_text()
  return set(re.findall(r"dim_labels=([^,\s]+)", text)), text


@pytest.mark.parametrize("objective", [None, "wgan_gp", "began"])
def test_compiled_step_has_only_fast_path_convolutions(objective):
  """n_critic = 3 puts the critic updates in a scan body; WGAN-GP adds second derivatives; BEGAN's
  auto-encoder D runs UpConv as well."""
  c = load_config("dcgan_mnist5k", objective)
  c.train.n_critic, c.train.batch_size = 3, 8
  labels, text = _conv_labels(c, (28, 28, 1))
  assert labels == {"b01f_01io->b01f"}, f"non-canonical convolutions in the step: {labels}"
  assert "wrapped_convolution" not in text and "rhs_reversal" not in text


def _ab_pair(kind: str, size: int, width: int, d_norm: str):
  """The same DCGAN G or D built with each layer set from one seed: ``{set: (graphdef, params, stats)}``."""
  from jgan.models import dcgan

  out = {}
  for name in ("fast", "native"):
    if kind == "g":
      m = dcgan.Generator(image_size=size, channels=1, latent_dim=16, width=width, layers=name, rngs=nnx.Rngs(3))
    else:
      m = dcgan.Discriminator(image_size=size, channels=3, width=width, d_norm=d_norm, layers=name, rngs=nnx.Rngs(3))
    out[name] = nnx.split(m, nnx.Param, nnx.BatchStat)
  return out


@pytest.mark.parametrize(
  "kind,size,width,d_norm",
  [
    ("g", 28, 64, "batch"),
    ("g", 32, 64, "batch"),
    ("g", 64, 16, "batch"),
    ("d", 28, 64, "batch"),
    ("d", 32, 64, "layer"),
    ("d", 64, 16, "none"),
    ("d", 64, 16, "batch"),
  ],
)
def test_layer_sets_compute_the_same_function(kind, size, width, d_norm):
  """model.layers=fast and =native: same parameters, outputs, updated BatchNorm statistics, and gradients
  with respect to every parameter and the input (the reference: Flax's own layers and JAX's autodiff)."""
  pair = _ab_pair(kind, size, width, d_norm)
  gd_f, p_f, s_f = pair["fast"]
  gd_n, p_n, s_n = pair["native"]
  assert jax.tree.structure(p_f) == jax.tree.structure(p_n)
  for a, b in zip(jax.tree.leaves(p_f), jax.tree.leaves(p_n)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # same initial values from one seed
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(4, 16)) if kind == "g" else rng.uniform(-1, 1, (4, size, size, 3)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(4, size, size, 1) if kind == "g" else (4,)), jnp.float32)

  def loss(params, inp, gd, stats):
    m = nnx.merge(gd, params, stats, copy=True)
    m.train()
    y = m(inp)
    return jnp.sum(y * w), nnx.state(m, nnx.BatchStat)

  (lf, st_f), (gp_f, gx_f) = jax.jit(jax.value_and_grad(loss, (0, 1), has_aux=True), static_argnums=2)(
    p_f, x, gd_f, s_f
  )
  (ln, st_n), (gp_n, gx_n) = jax.jit(jax.value_and_grad(loss, (0, 1), has_aux=True), static_argnums=2)(
    p_n, x, gd_n, s_n
  )
  np.testing.assert_allclose(float(lf), float(ln), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(np.asarray(gx_f), np.asarray(gx_n), rtol=1e-3, atol=1e-5 * float(jnp.abs(gx_n).max()))
  for a, b in zip(jax.tree.leaves(gp_f), jax.tree.leaves(gp_n)):
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * float(np.abs(b).max()) + 1e-7)
  for a, b in zip(jax.tree.leaves(st_f), jax.tree.leaves(st_n)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)


def test_layer_set_names_and_auto():
  assert layers.resolve_layers("auto", "cpu") == "fast"
  for backend in ("gpu", "cuda", "tpu"):
    assert layers.resolve_layers("auto", backend) == "native"
  assert layers.resolve_layers("native", "cpu") == "native"
  with pytest.raises(ValueError, match="unknown model.layers='fastest'; valid choices: auto, fast, native"):
    layers.resolve_layers("fastest")
