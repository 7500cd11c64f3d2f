"""Penalties against closed forms for linear and quadratic critics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan import penalties
from jgan.objectives import make_objective
from jgan.penalties import PENALTIES, gradient_norms, make_penalty, penalty_params

B, SHAPE = 6, (4, 3)  # image-like inputs [B, 4, 3]
_rs = np.random.RandomState(1)
REAL = jnp.asarray(_rs.normal(size=(B, *SHAPE)), jnp.float32)
FAKE = jnp.asarray(_rs.normal(size=(B, *SHAPE)) + 2.0, jnp.float32)
W_UNIT = _rs.normal(size=SHAPE)
W_UNIT = jnp.asarray(W_UNIT / np.linalg.norm(W_UNIT), jnp.float32)
KEY = jax.random.key(3)


def linear(w, c=0.7):
  """D(x) = <w, x> + c per sample: [B, 4, 3] -> [B]; grad_x D = w everywhere."""
  return lambda x: jnp.sum(x * w[None], axis=(1, 2)) + c


@pytest.mark.parametrize("one_sided", [False, True])
def test_gradient_penalty_vanishes_for_a_1_lipschitz_linear_critic(one_sided):
  norms = jax.jit(lambda x: gradient_norms(linear(W_UNIT), x))(REAL)
  np.testing.assert_allclose(norms, np.ones(B), rtol=1e-6)
  gp = jax.jit(lambda r, f, k: penalties.gradient_penalty(linear(W_UNIT), r, f, k, one_sided=one_sided))
  assert gp(REAL, FAKE, KEY).dtype == jnp.float32
  np.testing.assert_allclose(gp(REAL, FAKE, KEY), 0.0, atol=1e-10)


@pytest.mark.parametrize("scale", [0.25, 1.0, 3.0])
@pytest.mark.parametrize("one_sided", [False, True])
def test_gradient_penalty_of_a_linear_critic(scale, one_sided):
  """||grad D|| = ||w|| = s on every interpolate: weight (s - 1)^2, or weight max(0, s - 1)^2."""
  weight = 7.0
  gp = jax.jit(lambda w: penalties.gradient_penalty(linear(w), REAL, FAKE, KEY, weight=weight, one_sided=one_sided))
  got = gp(scale * W_UNIT)
  excess = max(scale - 1.0, 0.0) if one_sided else scale - 1.0
  np.testing.assert_allclose(got, weight * excess**2, rtol=1e-5, atol=1e-10)


def test_gradient_penalty_samples_interpolates_per_sample():
  """With D(x) = ||x||^2 / 2 (grad = x), the penalty reveals where the interpolates were taken.

  real_i = a_i e, fake_i = b_i e (e a unit vector) so ||xhat_i|| = |eps_i a_i + (1 - eps_i) b_i|, with
  eps = jax.random.uniform(rng, (B,)): one uniform per sample, drawn from the rng argument.
  """
  e = np.asarray(W_UNIT, np.float64)
  a = np.linspace(0.2, 3.0, B)
  b = np.linspace(-2.0, 1.5, B)[::-1]
  real = jnp.asarray(a[:, None, None] * e, jnp.float32)
  fake = jnp.asarray(b[:, None, None] * e, jnp.float32)
  d_fn = lambda x: 0.5 * jnp.sum(jnp.square(x), axis=(1, 2))
  gp = jax.jit(lambda k: penalties.gradient_penalty(d_fn, real, fake, k))
  got = gp(KEY)
  eps = np.asarray(jax.jit(lambda k: jax.random.uniform(k, (B,)))(KEY), np.float64)
  assert np.all((eps >= 0) & (eps <= 1)) and len(np.unique(eps)) == B
  want = 10.0 * np.mean((np.abs(eps * a + (1 - eps) * b) - 1.0) ** 2)
  np.testing.assert_allclose(got, want, rtol=1e-5)
  # Another key, other interpolates.
  assert not np.isclose(gp(jax.random.key(4)), got)


def test_r1_r2_closed_forms():
  gamma = 4.0
  w = 2.5 * W_UNIT  # ||w||^2 = 6.25
  for name, args in (("r1", (REAL, FAKE * jnp.nan)), ("r2", (REAL * jnp.nan, FAKE))):
    pen = make_penalty(name, gamma=gamma)
    # Constant D: zero gradient, zero penalty.
    constant = lambda x: jnp.full((x.shape[0],), 3.0) + 0 * x[:, 0, 0]
    np.testing.assert_allclose(jax.jit(lambda r, f: pen(constant, r, f, KEY))(*args), 0.0)
    # Linear D: gamma/2 ||w||^2 (the batch that is not used may even be NaN).
    got = jax.jit(lambda r, f: pen(linear(w), r, f, KEY))(*args)
    np.testing.assert_allclose(got, gamma / 2 * 6.25, rtol=1e-5)


def test_r1_r2_is_the_sum_with_one_gamma():
  """R3GAN's combined penalty: gamma/2 (E||grad D(real)||^2 + E||grad D(fake)||^2); for D(x) = ||x||^2 / 2
  that is gamma/2 (E||real||^2 + E||fake||^2), for a linear D gamma ||w||^2 (both terms equal)."""
  d_fn = lambda x: 0.5 * jnp.sum(jnp.square(x), axis=(1, 2))
  sq = lambda x: np.mean(np.sum(np.square(np.asarray(x, np.float64)), axis=(1, 2)))
  got = jax.jit(lambda r, f: penalties.r1_r2(d_fn, r, f, KEY, gamma=0.3))(REAL, FAKE)
  np.testing.assert_allclose(got, 0.15 * (sq(REAL) + sq(FAKE)), rtol=1e-5)
  np.testing.assert_allclose(penalties.r1_r2(linear(2.5 * W_UNIT), REAL, FAKE, KEY, gamma=4.0), 4.0 * 6.25, rtol=1e-5)
  assert penalty_params("r1_r2") == {"gamma": 0.05}  # R3GAN's CIFAR-10 start value


def test_r1_uses_real_and_r2_uses_fake():
  """D(x) = ||x||^2 / 2: R1 = gamma/2 E||real||^2, R2 = gamma/2 E||fake||^2."""
  d_fn = lambda x: 0.5 * jnp.sum(jnp.square(x), axis=(1, 2))
  sq = lambda x: np.mean(np.sum(np.square(np.asarray(x, np.float64)), axis=(1, 2)))
  np.testing.assert_allclose(penalties.r1(d_fn, REAL, FAKE, KEY), 5.0 * sq(REAL), rtol=1e-5)
  np.testing.assert_allclose(penalties.r2(d_fn, REAL, FAKE, KEY), 5.0 * sq(FAKE), rtol=1e-5)


@pytest.mark.parametrize("name", sorted(PENALTIES))
def test_penalty_gradients_reach_d_params_but_not_the_inputs(name):
  """Double back-propagation: d penalty / d w is finite (and exact for R1/R2); no gradient to real/fake."""
  pen = make_penalty(name)

  def f(w, real, fake):
    return pen(linear(w), real, fake, KEY)

  w = 1.7 * W_UNIT
  gw, greal, gfake = jax.jit(jax.grad(f, argnums=(0, 1, 2)))(w, REAL, FAKE)
  assert np.all(np.isfinite(gw))
  assert np.all(greal == 0) and np.all(gfake == 0)
  if name in ("r1", "r2"):  # d/dw gamma/2 ||w||^2 = gamma w
    np.testing.assert_allclose(gw, 10.0 * w, rtol=1e-5)
  elif name == "r1_r2":  # d/dw gamma ||w||^2 = 2 gamma w
    np.testing.assert_allclose(gw, 2 * 0.05 * w, rtol=1e-5)
  else:  # d/dw 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w||
    np.testing.assert_allclose(gw, 20.0 * (1.7 - 1.0) * W_UNIT, rtol=1e-5)


def test_zero_gradient_norm_has_a_finite_derivative():
  """sqrt at 0: a critic that is constant in x must not produce NaN gradients through the GP."""
  g = jax.jit(jax.grad(lambda w: penalties.gradient_penalty(linear(w), REAL, FAKE, KEY)))(jnp.zeros(SHAPE))
  assert np.all(np.isfinite(g))


def test_wgan_gp_objective_uses_the_same_penalty():
  obj = make_objective("wgan_gp", gp_weight=3.0, one_sided=True)
  d_fn = linear(2.0 * W_UNIT)
  want = penalties.gradient_penalty(d_fn, REAL, FAKE, KEY, weight=3.0, one_sided=True)
  np.testing.assert_allclose(obj.d_penalty(d_fn, REAL, FAKE, KEY), want)
  np.testing.assert_allclose(obj.d_penalty(d_fn, REAL, FAKE, KEY), 3.0, rtol=1e-5)


def test_registry_and_errors():
  assert set(PENALTIES) == {"gradient_penalty", "r1", "r2", "r1_r2"}
  assert penalty_params("gradient_penalty") == {"weight": 10.0, "one_sided": False}
  assert penalty_params("r1") == penalty_params("r2") == {"gamma": 10.0}
  with pytest.raises(ValueError, match=r"unknown penalty 'r3'; valid choices: gradient_penalty, r1, r1_r2, r2"):
    make_penalty("r3")
  with pytest.raises(ValueError, match=r"'r1' got unknown parameter\(s\) \['weight'\]; valid parameters: \['gamma'"):
    make_penalty("r1", weight=1.0)
  with pytest.raises(ValueError, match=r"valid parameters: \['one_sided', 'weight'\]"):
    make_penalty("gradient_penalty", gamma=1.0)
  with pytest.raises(ValueError, match="one shape"):
    penalties.gradient_penalty(linear(W_UNIT), REAL, FAKE[:3], KEY)
