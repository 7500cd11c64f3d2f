"""Models: the fast up-sampling layer against lax/NNX transposed convolutions; DCGAN/MLP structure."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from jgan.models import MODELS, layers, make_models


@pytest.mark.parametrize("shape", [(2, 4, 4, 3, 5), (3, 7, 7, 8, 4), (1, 5, 3, 2, 2)])
def test_upconv_equals_conv_transpose(shape):
  b, h, w, cin, cout = shape
  kx, kw = jax.random.split(jax.random.key(0))
  x = jax.random.normal(kx, (b, h, w, cin))
  k = jax.random.normal(kw, (4, 4, cin, cout))
  ref = jax.lax.conv_transpose(x, k, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  got = layers.upconv2x(x, k)
  assert got.shape == (b, 2 * h, 2 * w, cout)
  np.testing.assert_allclose(got, ref, atol=1e-5, rtol=1e-5)
  # Same gradients w.r.t. input and kernel.
  loss = lambda f: lambda x, k: jnp.sum(jnp.sin(f(x, k)))
  g_ref = jax.grad(
    loss(lambda x, k: jax.lax.conv_transpose(x, k, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))),
    argnums=(0, 1),
  )(x, k)
  g_got = jax.grad(loss(layers.upconv2x), argnums=(0, 1))(x, k)
  for a, r in zip(g_got, g_ref):
    np.testing.assert_allclose(a, r, atol=1e-4, rtol=1e-4)


def _cfg(**kw):
  base = dict(name="dcgan", latent_dim=16, g_width=8, d_width=8, d_norm="batch", depth=2)
  return ml_collections.ConfigDict({**base, **kw})


def _dcgan_up_shapes():
  """(size, layer, (h, w, cin, cout)) of every G up-sampling layer of the 28/32/64 px DCGAN at the
  default width 64, read off the model itself."""
  out = []
  for size, ch in ((28, 1), (32, 3), (64, 3)):
    g, _ = nnx.eval_shape(lambda: make_models(_cfg(g_width=64, d_width=64), (size, size, ch), nnx.Rngs(0)))
    res = g.s0
    for i, up in enumerate(g.ups):
      out.append((size, i, (res, res) + tuple(up.kernel.shape[2:])))
      res *= 2
  return out


@pytest.mark.parametrize(
  "size,layer,shape", _dcgan_up_shapes(), ids=lambda v: str(v) if not isinstance(v, tuple) else "x".join(map(str, v))
)
def test_upconv_equals_conv_transpose_for_every_dcgan_layer(size, layer, shape):
  # The real layer shapes (batch 2): forward to 1e-5, input and kernel gradients to 1e-4 (relative to
  # the gradient's scale), against lax.conv_transpose with the same HWIO kernel.
  h, w, cin, cout = shape
  kx, kw, kc = jax.random.split(jax.random.key(size * 10 + layer), 3)
  x = jax.random.normal(kx, (2, h, w, cin))
  k = 0.02 * jax.random.normal(kw, (4, 4, cin, cout))
  cot = jax.random.normal(kc, (2, 2 * h, 2 * w, cout))
  ref_fn = lambda x, k: jax.lax.conv_transpose(x, k, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  ref, ref_vjp = jax.vjp(ref_fn, x, k)
  got, got_vjp = jax.vjp(layers.upconv2x, x, k)
  np.testing.assert_allclose(got, ref, atol=1e-5, rtol=1e-5)
  for a, r in zip(got_vjp(cot), ref_vjp(cot)):
    np.testing.assert_allclose(a, r, atol=1e-4 * float(jnp.max(jnp.abs(r))), rtol=1e-4)


def test_upconv_module_is_a_drop_in_for_nnx_conv_transpose():
  ref = nnx.ConvTranspose(6, 3, (4, 4), strides=(2, 2), padding="SAME", use_bias=True, rngs=nnx.Rngs(0))
  ref.bias[...] = jnp.arange(3.0)
  mine = layers.UpConv(6, 3, use_bias=True, rngs=nnx.Rngs(1))
  mine.kernel[...] = ref.kernel[...]
  mine.bias[...] = ref.bias[...]
  x = jax.random.normal(jax.random.key(2), (2, 5, 5, 6))
  np.testing.assert_allclose(mine(x), ref(x), atol=1e-5)


@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (64, 3)])
def test_dcgan_shapes_and_ranges(size, channels):
  def run(z):  # built and applied inside one jit: eager NNX init would compile every op separately
    g, d = make_models(_cfg(), (size, size, channels), nnx.Rngs(0))
    x = g(z)
    return x, d(x)

  x, logits = jax.jit(run)(jax.random.normal(jax.random.key(0), (4, 16)))
  assert x.shape == (4, size, size, channels)
  assert float(jnp.max(jnp.abs(x))) < 1.0  # tanh output
  assert logits.shape == (4,)


def test_dcgan_follows_radford_guidelines():
  cfg = _cfg(g_width=64, d_width=64)
  g, d = nnx.eval_shape(lambda: make_models(cfg, (64, 64, 3), nnx.Rngs(0)))
  # G: 512-256-128-64 channel maps at 4-8-16-32 px, as in the paper's Figure 1.
  assert [up.kernel.shape[-1] for up in g.ups] == [256, 128, 64, 3]
  assert g.c0 == 512
  # No bias right before BatchNorm; the output layer (no BN) has one.
  assert g.project.bias is None and all(up.bias is None for up in g.ups[:-1]) and g.ups[-1].bias is not None
  assert all(c.bias is None for c in d.convs[1:])
  # No normalisation on D's first layer.
  assert d.norms[0] is None and all(isinstance(n, nnx.BatchNorm) for n in d.norms[1:])

  def init_stats():
    g, _ = make_models(cfg, (64, 64, 3), nnx.Rngs(0))
    return (
      jnp.concatenate([jnp.ravel(up.kernel[...]) for up in g.ups[:3]]),
      jnp.concatenate([jnp.ravel(bn.scale[...]) for bn in g.bns]),
    )

  kernels, scales = map(np.asarray, jax.jit(init_stats)())
  # Weights ~ N(0, 0.02); BatchNorm scales ~ N(1, 0.02).
  assert abs(kernels.std() - 0.02) < 0.002 and abs(kernels.mean()) < 0.001
  assert abs(scales.mean() - 1.0) < 0.005 and abs(scales.std() - 0.02) < 0.005


@pytest.mark.parametrize("norm,kind", [("layer", nnx.LayerNorm), ("none", type(None))])
def test_dcgan_critic_norms(norm, kind):
  _, d = nnx.eval_shape(lambda: make_models(_cfg(d_norm=norm), (32, 32, 3), nnx.Rngs(0)))
  assert all(isinstance(n, kind) for n in d.norms[1:])
  assert not jax.tree.leaves(nnx.state(d, nnx.BatchStat))


def test_unsupported_image_size_is_a_clear_error():
  with pytest.raises(ValueError, match=r"image_size=48.*valid choices: \[28, 32, 64\]"):
    nnx.eval_shape(lambda: make_models(_cfg(), (48, 48, 3), nnx.Rngs(0)))


@pytest.mark.parametrize("shape", [(2,), (28, 28, 1)])
def test_mlp_shapes(shape):
  def run(z):
    g, d = make_models(_cfg(name="mlp", latent_dim=2), shape, nnx.Rngs(0))
    x = g(z)
    return x, d(x)

  x, logits = jax.jit(run)(jnp.ones((5, 2)))
  assert x.shape == (5,) + shape and logits.shape == (5,)


def test_unknown_model_lists_choices():
  with pytest.raises(ValueError, match="valid choices: " + ", ".join(sorted(MODELS))):
    nnx.eval_shape(lambda: make_models(_cfg(name="stylegan9"), (32, 32, 3), nnx.Rngs(0)))
