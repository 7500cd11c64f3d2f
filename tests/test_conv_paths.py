"""Every convolution jgan's models run stays on XLA:CPU's fast path, at any derivative order, in loops.

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

from jgan import step as step_lib
from jgan.models import layers
from tests.helpers import load_config, setup

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
