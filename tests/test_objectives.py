"""Objectives against closed forms written out here in numpy (float64), never by calling jgan's code.

One table (CASES) drives the tests of every registered objective: a newly registered objective
without an entry fails ``test_closed_form``.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special, stats

from jgan import objectives
from jgan.objectives import F_DIVERGENCES, OBJECTIVES, make_objective, objective_params

# ------------------------------------------------------------------------------------------------
# Fixed inputs
# ------------------------------------------------------------------------------------------------

_rs = np.random.RandomState(0)
B, K = 8, 5
D_REAL = np.linspace(-2.5, 2.5, B).astype(np.float32) + _rs.uniform(-0.1, 0.1, B).astype(np.float32)
D_FAKE = (_rs.normal(size=B) * 1.5).astype(np.float32)
E_REAL = (np.abs(_rs.normal(size=B)) * 3.0).astype(np.float32)
E_FAKE = (np.abs(_rs.normal(size=B)) * 12.0).astype(np.float32)  # some above, some below margin 10
C_REAL = _rs.normal(size=(B, K)).astype(np.float32)
C_FAKE = _rs.normal(size=(B, K)).astype(np.float32)


def _inputs(d_output):
  if d_output == "energy":
    return {"energy": E_REAL, "code": C_REAL}, {"energy": E_FAKE, "code": C_FAKE}
  return D_REAL, D_FAKE


# ------------------------------------------------------------------------------------------------
# Closed forms (numpy, float64)
# ------------------------------------------------------------------------------------------------


def _f64(x):
  return np.asarray(x, np.float64)


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _np_jeffrey_conjugate(t):
  w = special.lambertw(np.exp(1.0 - t)).real
  return w + 1.0 / w + t - 2.0


# f-GAN: g_f and f* exactly as printed in Nowozin et al. 2016 (Tables 2 and 6), composed numerically.
NP_FGAN = {
  "total_variation": (lambda v: 0.5 * np.tanh(v), lambda t: t),
  "kl": (lambda v: v, lambda t: np.exp(t - 1.0)),
  "reverse_kl": (lambda v: -np.exp(-v), lambda t: -1.0 - np.log(-t)),
  "pearson": (lambda v: v, lambda t: 0.25 * t**2 + t),
  "neyman": (lambda v: 1.0 - np.exp(-v), lambda t: 2.0 - 2.0 * np.sqrt(1.0 - t)),
  "squared_hellinger": (lambda v: 1.0 - np.exp(-v), lambda t: t / (1.0 - t)),
  "jeffrey": (lambda v: v, lambda t: _np_jeffrey_conjugate(t)),
  "jensen_shannon": (lambda v: np.log(2.0) - np.log(1.0 + np.exp(-v)), lambda t: -np.log(2.0 - np.exp(t))),
  "gan": (lambda v: -np.log(1.0 + np.exp(-v)), lambda t: -np.log(1.0 - np.exp(t))),
}


def _np_fgan(name, g_loss):
  g, fstar = NP_FGAN[name]

  def fn(r, f, state):
    r, f = _f64(r), _f64(f)
    d = -(np.mean(g(r)) - np.mean(fstar(g(f))))
    gl = -np.mean(g(f)) if g_loss == "trick" else -np.mean(fstar(g(f)))
    return d, gl

  return fn


def _np_minimax(r, f, state):
  r, f = _f64(r), _f64(f)
  d = -np.mean(np.log(_sigmoid(r))) - np.mean(np.log(1.0 - _sigmoid(f)))
  return d, np.mean(np.log(1.0 - _sigmoid(f)))


def _np_non_saturating(r, f, state):
  d, _ = _np_minimax(r, f, state)
  return d, -np.mean(np.log(_sigmoid(_f64(f))))


def _np_wgan(drift=0.0):
  def fn(r, f, state):
    r, f = _f64(r), _f64(f)
    return np.mean(f) - np.mean(r) + drift * np.mean(r**2), -np.mean(f)

  return fn


def _np_lsgan(a, b, c):
  def fn(r, f, state):
    r, f = _f64(r), _f64(f)
    return 0.5 * np.mean((r - b) ** 2) + 0.5 * np.mean((f - a) ** 2), 0.5 * np.mean((f - c) ** 2)

  return fn


def _np_hinge(r, f, state):
  r, f = _f64(r), _f64(f)
  return np.mean(np.maximum(0.0, 1.0 - r)) + np.mean(np.maximum(0.0, 1.0 + f)), -np.mean(f)


def _np_rasgan(r, f, state):
  r, f = _f64(r), _f64(f)
  cr, cf = r - f.mean(), f - r.mean()
  d = -np.mean(np.log(_sigmoid(cr))) - np.mean(np.log(1.0 - _sigmoid(cf)))
  g = -np.mean(np.log(_sigmoid(cf))) - np.mean(np.log(1.0 - _sigmoid(cr)))
  return d, g


def _np_rsgan(r, f, state):
  r, f = _f64(r), _f64(f)
  return -np.mean(np.log(_sigmoid(r - f))), -np.mean(np.log(_sigmoid(f - r)))


def _np_pull_away(s):
  """Zhao et al.'s f_PT as a double loop."""
  s = _f64(s)
  n = len(s)
  total = 0.0
  for i in range(n):
    for j in range(n):
      if i != j:
        total += (s[i] @ s[j] / (np.linalg.norm(s[i]) * np.linalg.norm(s[j]))) ** 2
  return total / (n * (n - 1))


def _np_ebgan(margin, pt_weight):
  def fn(r, f, state):
    er, ef = _f64(r["energy"]), _f64(f["energy"])
    d = er.mean() + np.maximum(0.0, margin - ef).mean()
    return d, ef.mean() + pt_weight * _np_pull_away(f["code"])

  return fn


def _np_began(r, f, k):
  lr, lf = _f64(r["energy"]).mean(), _f64(f["energy"]).mean()
  return lr - k * lf, lf


# name -> list of (params, obj_state or None for init_state(), numpy closed form)
CASES = {
  "minimax": [({}, None, _np_minimax)],
  "non_saturating": [({}, None, _np_non_saturating)],
  **{
    name: [({}, None, _np_fgan(name, "trick")), ({"g_loss": "saddle"}, None, _np_fgan(name, "saddle"))]
    for name in NP_FGAN
  },
  "wasserstein": [({}, None, _np_wgan())],
  "wgan_gp": [({}, None, _np_wgan()), ({"drift": 0.001, "one_sided": True}, None, _np_wgan(0.001))],
  "least_squares": [
    ({}, None, _np_lsgan(0.0, 1.0, 1.0)),
    ({"a": -1.0, "b": 1.0, "c": 0.0}, None, _np_lsgan(-1.0, 1.0, 0.0)),
  ],
  "hinge": [({}, None, _np_hinge)],
  "relativistic": [({}, None, _np_rasgan), ({"average": False}, None, _np_rsgan)],
  "rpgan": [({}, None, _np_rsgan)],  # R3GAN eq. 2: softplus(-(D(x_r) - D(x_f))) = -log sigmoid(D(x_r) - D(x_f))
  "ebgan": [
    ({}, None, _np_ebgan(10.0, 0.1)),
    ({"margin": 5.0, "pt_weight": 0.0}, None, _np_ebgan(5.0, 0.0)),
  ],
  "began": [({}, None, _np_began), ({"gamma": 0.7}, np.float32(0.3), _np_began)],
}


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_closed_form(name):
  if name not in CASES:
    pytest.fail(f"objective {name!r} is registered but has no closed-form entry in tests/test_objectives.py")
  for params, state, np_fn in CASES[name]:
    obj = make_objective(name, **params)
    if state is None:
      state = obj.init_state()
    d_real, d_fake = _inputs(obj.d_output)
    d_loss, g_loss = obj.loss(d_real, d_fake, state)
    want_d, want_g = np_fn(d_real, d_fake, np.float64(state) if name == "began" else state)
    assert d_loss.dtype == jnp.float32 and g_loss.dtype == jnp.float32
    assert d_loss.shape == () and g_loss.shape == ()
    np.testing.assert_allclose(d_loss, want_d, rtol=2e-5, atol=2e-6, err_msg=f"{name} {params} d_loss")
    np.testing.assert_allclose(g_loss, want_g, rtol=2e-5, atol=2e-6, err_msg=f"{name} {params} g_loss")


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_jits_with_finite_gradients(name):
  obj = make_objective(name)
  d_real, d_fake = _inputs(obj.d_output)
  state = obj.init_state()

  def losses(r, f):
    return obj.loss(r, f, state)

  for i in range(2):  # d_loss, g_loss
    grads = jax.jit(jax.grad(lambda r, f: losses(r, f)[i], argnums=(0, 1)))(d_real, d_fake)
    for leaf in jax.tree.leaves(grads):
      assert np.all(np.isfinite(leaf)), (name, i)
  if not obj.g_uses_real:  # G's loss must not depend on D's real outputs unless declared
    g_grad_real = jax.grad(lambda r: losses(r, d_fake)[1])(d_real)
    assert all(np.all(leaf == 0) for leaf in jax.tree.leaves(g_grad_real)), name
    # ... so a G update may pass a [B] placeholder instead of running D on the real batch.
    placeholder = jnp.zeros((B,), jnp.float32)
    np.testing.assert_allclose(losses(placeholder, d_fake)[1], losses(d_real, d_fake)[1], rtol=1e-6)
  new_state, metrics = jax.jit(obj.update_state)(state, d_real, d_fake)
  assert jax.tree.structure(new_state) == jax.tree.structure(state)
  assert all(np.isfinite(v) for v in metrics.values())
  # Low-precision D outputs still give float32 losses (minimax / non_saturating predate this and are
  # kept unchanged: they follow their inputs' dtype).
  if obj.d_output == "logit" and name not in ("minimax", "non_saturating"):
    lo = obj.loss(jnp.asarray(d_real, jnp.bfloat16), jnp.asarray(d_fake, jnp.bfloat16), state)
    assert lo[0].dtype == jnp.float32 and lo[1].dtype == jnp.float32
  if obj.d_penalty is not None:
    x_real = jnp.asarray(_rs.normal(size=(B, 3)), jnp.float32)
    x_fake = jnp.asarray(_rs.normal(size=(B, 3)), jnp.float32)

    def pen(w):
      return obj.d_penalty(lambda x: jnp.tanh(x @ w), x_real, x_fake, jax.random.key(0))

    value, grad = jax.jit(jax.value_and_grad(pen))(jnp.array([0.5, -2.0, 1.0]))
    assert value.shape == () and np.isfinite(value) and np.all(np.isfinite(grad))


def test_gan_divergence_reproduces_the_original_gan():
  """f-GAN's 'gan' row: D loss is the GAN's; trick G loss = non-saturating, saddle = minimax."""
  r, f = jnp.asarray(D_REAL), jnp.asarray(D_FAKE)
  for g_loss, other in (("trick", "non_saturating"), ("saddle", "minimax")):
    got = make_objective("gan", g_loss=g_loss).loss(r, f, ())
    want = make_objective(other).loss(r, f, ())
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# f-divergences: Table 2 consistency and the optimal critic
# ------------------------------------------------------------------------------------------------

# The generators f(u) of Table 2, written out independently of jgan.
NP_F = {
  "total_variation": lambda u: 0.5 * np.abs(u - 1.0),
  "kl": lambda u: u * np.log(u),
  "reverse_kl": lambda u: -np.log(u),
  "pearson": lambda u: (u - 1.0) ** 2,
  "neyman": lambda u: (1.0 - u) ** 2 / u,
  "squared_hellinger": lambda u: (np.sqrt(u) - 1.0) ** 2,
  "jeffrey": lambda u: (u - 1.0) * np.log(u),
  "jensen_shannon": lambda u: -(u + 1.0) * np.log((1.0 + u) / 2.0) + u * np.log(u),
  "gan": lambda u: u * np.log(u) - (u + 1.0) * np.log(u + 1.0),
}

# V*(log u) = g_f^{-1}(f'(u)): the raw D output at which T = g_f(V) is the optimal T* = f'(u).
NP_OPTIMAL_V = {
  "total_variation": lambda lu: 50.0 * np.sign(lu),  # T* = sign(u - 1)/2 = tanh(+-50)/2 in float32
  "kl": lambda lu: 1.0 + lu,  # T* = 1 + log u
  "reverse_kl": lambda lu: lu,  # T* = -1/u = -exp(-V)
  "pearson": lambda lu: 2.0 * (np.exp(lu) - 1.0),  # T* = 2(u - 1)
  "neyman": lambda lu: 2.0 * lu,  # T* = 1 - 1/u^2 = 1 - exp(-V)
  "squared_hellinger": lambda lu: 0.5 * lu,  # T* = 1 - u^{-1/2}
  "jeffrey": lambda lu: 1.0 + lu - np.exp(-lu),  # T* = 1 + log u - 1/u
  "jensen_shannon": lambda lu: lu,  # T* = log(2u/(u+1)) = log 2 - log(1 + exp(-V))
  "gan": lambda lu: lu,  # T* = log(u/(u+1)) = -log(1 + exp(-V))
}


def test_tables_cover_every_f_divergence():
  assert set(F_DIVERGENCES) == set(NP_FGAN) == set(NP_F) == set(NP_OPTIMAL_V)
  assert set(F_DIVERGENCES) <= set(OBJECTIVES)


@pytest.mark.parametrize("name", sorted(F_DIVERGENCES))
def test_f_divergence_table_row(name):
  """f matches Table 2's, f(1) = 0, f* is f's Fenchel conjugate, g_f maps into dom f*."""
  div = F_DIVERGENCES[name]
  u = np.logspace(-3, 2, 101)
  np.testing.assert_allclose(div.f(u), NP_F[name](u), rtol=1e-12, atol=1e-12)
  # f(1) = 0 except for the GAN row, whose f is shifted by -log 4 (so D_f = 2 JSD - log 4).
  assert abs(NP_F[name](1.0) - (-math.log(4.0) if name == "gan" else 0.0)) < 1e-15
  # f*(t) = sup_{u > 0} u t - f(u), by brute force on a fine grid (refined around the maximiser).
  lo, hi = div.domain
  ts = np.linspace(max(lo, -2.0) + 0.05, min(hi, 2.0) - 0.05, 7)
  grid = np.concatenate([[1e-12], np.logspace(-8, 4, 200001)])
  f_grid = NP_F[name](grid)
  sups = []
  for t in ts:
    i = int(np.argmax(grid * t - f_grid))
    fine = np.linspace(grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)], 2001)
    sups.append(np.max(fine * t - NP_F[name](fine)))
  got = jax.jit(div.conjugate)(jnp.asarray(ts, jnp.float32))
  np.testing.assert_allclose(got, sups, rtol=2e-5, atol=2e-5, err_msg=f"t={ts}")
  # g_f lands in dom f*, and the simplified f*(g_f(v)) equals the composition.
  v = jnp.linspace(-4.0, 4.0, 81)
  t, fg, f_of_t = jax.jit(
    lambda v: (div.activation(v), div.conjugate_of_activation(v), div.conjugate(div.activation(v)))
  )(v)
  assert np.all(t >= lo) and np.all(t <= hi)
  np.testing.assert_allclose(fg, f_of_t, rtol=1e-4, atol=1e-5)


# P = N(0, 1) (data), Q = N(0.5, 1) (model). Equal scales keep log(p/q) linear, so every integrand of
# the quantile rule below grows sub-polynomially in 1/s; with unequal scales one of Pearson's /
# Neyman's terms behaves like s^-a near s = 0 and the midpoint rule converges too slowly for 1e-3.
P_LOC, P_SCALE, Q_LOC, Q_SCALE = 0.0, 1.0, 0.5, 1.0
N_QUANTILES = 1 << 20


def _log_ratio(x):
  return stats.norm.logpdf(x, P_LOC, P_SCALE) - stats.norm.logpdf(x, Q_LOC, Q_SCALE)


def _true_divergence(name):
  """D_f(P || Q) = int q f(p/q) dx by adaptive quadrature, in float64."""

  def integrand(x):
    return stats.norm.pdf(x, Q_LOC, Q_SCALE) * NP_F[name](np.exp(_log_ratio(x)))

  # Split where TV's integrand has kinks (p = q) so quad converges fast.
  a = 1 / Q_SCALE**2 - 1 / P_SCALE**2
  b = 2 * (P_LOC / P_SCALE**2 - Q_LOC / Q_SCALE**2)
  c = Q_LOC**2 / Q_SCALE**2 - P_LOC**2 / P_SCALE**2 + 2 * math.log(Q_SCALE / P_SCALE)
  roots = sorted(np.roots([a, b, c]).real)
  pts = [-30.0, *roots, 30.0]
  parts = [integrate.quad(integrand, lo, hi, epsabs=1e-12, epsrel=1e-12, limit=200)[0] for lo, hi in zip(pts, pts[1:])]
  return sum(parts)


@functools.cache
def _quantile_points():
  """N quantile midpoints of P and of Q, float64 [N] each."""
  s = (np.arange(N_QUANTILES) + 0.5) / N_QUANTILES
  return stats.norm.ppf(s, P_LOC, P_SCALE), stats.norm.ppf(s, Q_LOC, Q_SCALE)


@pytest.mark.parametrize("name", sorted(F_DIVERGENCES))
def test_optimal_critic_attains_the_divergence(name):
  """At T*(x) = f'(p/q), -d_loss = E_P[T*] - E_Q[f*(T*)] = D_f(P || Q).

  The expectations are the loss's batch means over N quantile points of P and of Q (the midpoint rule
  in probability space), so the objective's own code computes them.
  """
  x_p, x_q = _quantile_points()
  v_p = jnp.asarray(NP_OPTIMAL_V[name](_log_ratio(x_p)), jnp.float32)
  v_q = jnp.asarray(NP_OPTIMAL_V[name](_log_ratio(x_q)), jnp.float32)
  d_loss_fn = jax.jit(lambda r, f: make_objective(name).loss(r, f, ())[0])
  d_loss = d_loss_fn(v_p, v_q)
  true = _true_divergence(name)
  assert abs(-float(d_loss) - true) < 1e-3, (name, -float(d_loss), true)
  # A sub-optimal critic (the optimal one for a shifted ratio) gives a strictly smaller bound.
  worse_p = jnp.asarray(NP_OPTIMAL_V[name](_log_ratio(x_p) + 0.3), jnp.float32)
  worse_q = jnp.asarray(NP_OPTIMAL_V[name](_log_ratio(x_q) + 0.3), jnp.float32)
  worse = d_loss_fn(worse_p, worse_q)
  assert -float(worse) < -float(d_loss)


def test_closed_form_divergences_between_gaussians():
  """The quadrature used above reproduces the textbook closed forms (guards _true_divergence)."""
  # KL(N(m1,s1) || N(m2,s2)) = log(s2/s1) + (s1^2 + (m1-m2)^2) / (2 s2^2) - 1/2
  kl_pq = math.log(Q_SCALE / P_SCALE) + (P_SCALE**2 + (P_LOC - Q_LOC) ** 2) / (2 * Q_SCALE**2) - 0.5
  kl_qp = math.log(P_SCALE / Q_SCALE) + (Q_SCALE**2 + (P_LOC - Q_LOC) ** 2) / (2 * P_SCALE**2) - 0.5
  # Bhattacharyya coefficient of two Gaussians; squared Hellinger = 2 (1 - BC).
  s2 = P_SCALE**2 + Q_SCALE**2
  bc = math.sqrt(2 * P_SCALE * Q_SCALE / s2) * math.exp(-((P_LOC - Q_LOC) ** 2) / (4 * s2))
  np.testing.assert_allclose(_true_divergence("kl"), kl_pq, rtol=1e-9)
  np.testing.assert_allclose(_true_divergence("reverse_kl"), kl_qp, rtol=1e-9)
  np.testing.assert_allclose(_true_divergence("jeffrey"), kl_pq + kl_qp, rtol=1e-9)
  np.testing.assert_allclose(_true_divergence("squared_hellinger"), 2 * (1 - bc), rtol=1e-9)
  np.testing.assert_allclose(_true_divergence("gan"), _true_divergence("jensen_shannon") - math.log(4.0), rtol=1e-9)


# ------------------------------------------------------------------------------------------------
# Lambert W, Wright omega
# ------------------------------------------------------------------------------------------------


def test_lambertw_matches_scipy():
  z = np.concatenate([np.linspace(-1 / np.e, 0.0, 500)[1:], np.logspace(-30, 30, 301)])
  got = np.asarray(jax.jit(objectives.lambertw)(z.astype(np.float32)), np.float64)
  want = special.lambertw(z.astype(np.float32).astype(np.float64)).real
  np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)
  special_values = jax.jit(objectives.lambertw)(jnp.array([0.0, -0.5, -1 / math.e], jnp.float32))
  assert float(special_values[0]) == 0.0 and np.isnan(special_values[1]) and float(special_values[2]) == -1.0
  # Derivative: dW/dz = 1 / (e^W (1 + W)).
  zs = np.array([-0.3, -0.1, 0.0, 0.5, 1.0, 10.0, 1e6], np.float32)
  w = special.lambertw(zs.astype(np.float64)).real
  grads = jax.jit(jax.vmap(jax.grad(objectives.lambertw)))(jnp.asarray(zs))
  np.testing.assert_allclose(grads, 1.0 / (np.exp(w) * (1.0 + w)), rtol=1e-5)


def test_wright_omega_matches_scipy():
  x = np.concatenate([-np.logspace(2, -3, 200), np.linspace(-5, 5, 401), np.logspace(-3, 30, 200)])
  got = np.asarray(jax.jit(objectives.wright_omega)(x.astype(np.float32)), np.float64)
  want = special.wrightomega(x.astype(np.float32).astype(np.float64)).real
  np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-37)  # XLA:CPU flushes float32 denormals
  grads = jax.jit(jax.vmap(jax.grad(objectives.wright_omega)))(jnp.asarray(x, jnp.float32))
  np.testing.assert_allclose(grads, want / (1 + want), rtol=2e-6, atol=1e-30)


def test_jeffrey_conjugate_is_finite_far_out():
  """Large |t|: e^{1-t} would overflow float32, yet f*(t) (~ -t... and ~ e^{t-1}) stays finite."""
  t = jnp.array([-1e6, -500.0, -80.0, 0.0, 50.0, 80.0], jnp.float32)
  conj = F_DIVERGENCES["jeffrey"].conjugate
  got = jax.jit(conj)(t)
  assert np.all(np.isfinite(got))
  t64 = np.array([-80.0, 0.0, 50.0])
  w = special.lambertw(np.exp(1.0 - t64)).real
  np.testing.assert_allclose(got[2:5], w + 1 / w + t64 - 2, rtol=1e-5)
  assert np.all(np.isfinite(jax.jit(jax.vmap(jax.grad(conj)))(t)))


# ------------------------------------------------------------------------------------------------
# Energy-based objectives
# ------------------------------------------------------------------------------------------------


def test_pull_away_term_matches_a_loop():
  pt = jax.jit(objectives.pull_away_term)
  np.testing.assert_allclose(pt(jnp.asarray(C_FAKE)), _np_pull_away(C_FAKE), rtol=1e-5)
  # Orthogonal codes: 0; identical directions: 1; scale-invariant.
  assert float(pt(jnp.eye(4))) == 0.0
  parallel = np.ones((3, 4), np.float32) * np.array([[1.0], [2.0], [5.0]], np.float32)
  np.testing.assert_allclose(pt(parallel), 1.0, rtol=1e-6)
  assert np.all(np.isfinite(jax.jit(jax.grad(objectives.pull_away_term))(jnp.zeros((4, 3)))))


def test_began_k_update():
  gamma, lambda_k = 0.5, 0.1
  obj = make_objective("began", gamma=gamma, lambda_k=lambda_k)
  k = obj.init_state()
  assert k.dtype == jnp.float32 and k.shape == () and float(k) == 0.0
  update = jax.jit(obj.update_state)
  k_np = 0.0
  # (L(x), L(G(z))): positive balance raises k until it clips at 1, negative lowers it to 0.
  schedule = [(4.0, 0.5)] * 8 + [(1.0, 9.0)] * 4 + [(4.0, 1.0)]
  for l_real, l_fake in schedule:
    r = {"energy": jnp.full((B,), l_real), "code": C_REAL}
    f = {"energy": jnp.full((B,), l_fake), "code": C_FAKE}
    k, metrics = update(k, r, f)
    balance = gamma * l_real - l_fake
    k_np = min(max(k_np + lambda_k * balance, 0.0), 1.0)
    np.testing.assert_allclose(k, k_np, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(metrics["k_t"], k_np, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(metrics["m_global"], l_real + abs(balance), rtol=1e-6)
    assert k.dtype == jnp.float32
  assert 0.0 < k_np < 1.0  # the schedule visited both clips and ended inside
  # k_t is a constant for the losses: no gradient flows into it.
  r, f = _inputs("energy")
  dk = jax.grad(lambda kk: obj.loss(r, f, kk)[0])(jnp.float32(0.3))
  assert float(dk) == 0.0


def test_energy_objectives_reject_malformed_outputs():
  with pytest.raises(ValueError, match="energy"):
    make_objective("began").loss({"logit": jnp.asarray(D_REAL)}, {"energy": jnp.asarray(E_FAKE)}, 0.0)
  with pytest.raises(ValueError, match="energy"):
    make_objective("ebgan").loss(jnp.zeros((B, 2)), {"energy": jnp.asarray(E_FAKE), "code": C_FAKE}, ())


# ------------------------------------------------------------------------------------------------
# Registry
# ------------------------------------------------------------------------------------------------


def test_registry_errors_list_choices():
  with pytest.raises(ValueError, match=r"unknown objective 'nope'.*hinge.*wgan_gp"):
    make_objective("nope")
  with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['lam'\].*gp_weight"):
    make_objective("wgan_gp", lam=1.0)
  with pytest.raises(ValueError, match=r"g_loss 'both'.*trick, saddle"):
    make_objective("kl", g_loss="both")
  with pytest.raises(ValueError):
    make_objective("began", k_init=2.0)


def test_published_defaults():
  assert objective_params("wgan_gp") == {"gp_weight": 10.0, "one_sided": False, "drift": 0.0}
  assert objective_params("least_squares") == {"a": 0.0, "b": 1.0, "c": 1.0}
  assert objective_params("began") == {"gamma": 0.5, "lambda_k": 0.001, "k_init": 0.0}
  assert objective_params("ebgan")["pt_weight"] == 0.1
  assert all(objective_params(n) == {"g_loss": "trick"} for n in F_DIVERGENCES)
  assert make_objective("relativistic").g_uses_real
  assert make_objective("rpgan").g_uses_real and make_objective("rpgan").g_own_batch
  assert not any(make_objective(n).g_own_batch for n in OBJECTIVES if n != "rpgan")
  assert make_objective("ebgan").d_output == make_objective("began").d_output == "energy"


def _np_lecam(r, f, alpha_r, alpha_f, decay):
  """Tseng et al. 2021 eq. 3 with the anchors first moved by this batch's means (their code's order)."""
  r, f = _f64(r), _f64(f)
  a_r, a_f = decay * alpha_r + (1 - decay) * r.mean(), decay * alpha_f + (1 - decay) * f.mean()
  return np.mean((r - a_f) ** 2) + np.mean((f - a_r) ** 2), a_r, a_f


@pytest.mark.parametrize("name", ["non_saturating", "hinge", "rpgan", "began"])
def test_lecam_adds_its_regulariser_to_d_only_and_carries_anchors(name):
  """Against Tseng et al. 2021 eq. 3 in numpy (:func:`_np_lecam`), the anchors moved first as their code does."""
  from jgan.objectives import lecam

  if make_objective(name).d_output == "energy":
    with pytest.raises(ValueError, match="lecam.weight regularises raw D scores; energy objectives"):
      lecam.with_lecam(make_objective(name), 0.3)
    return
  base = make_objective(name)
  obj = lecam.with_lecam(base, 0.3, 0.9)
  state = obj.init_state()
  assert float(state.alpha_real) == float(state.alpha_fake) == 0.0
  state = state._replace(alpha_real=jnp.float32(1.5), alpha_fake=jnp.float32(-0.5))
  d_loss, g_loss = obj.loss(D_REAL, D_FAKE, state)
  want_d, want_g = base.loss(D_REAL, D_FAKE, base.init_state())
  reg, a_r, a_f = _np_lecam(D_REAL, D_FAKE, 1.5, -0.5, 0.9)
  np.testing.assert_allclose(d_loss, float(want_d) + 0.3 * reg, rtol=1e-5)
  np.testing.assert_allclose(g_loss, want_g, rtol=1e-6)
  new, metrics = jax.jit(obj.update_state)(state, D_REAL, D_FAKE)
  np.testing.assert_allclose([new.alpha_real, new.alpha_fake], [a_r, a_f], rtol=1e-6)
  np.testing.assert_allclose(metrics["lecam"], reg, rtol=1e-5)
  # The anchors are constants of D's loss: its gradient is the base loss's plus lambda * d R_LC.
  grad = jax.grad(lambda r: obj.loss(r, D_FAKE, state)[0])(D_REAL)
  base_grad = jax.grad(lambda r: base.loss(r, D_FAKE, base.init_state())[0])(D_REAL)
  np.testing.assert_allclose(grad, base_grad + 0.3 * 2 * (D_REAL - a_f) / B, rtol=1e-4, atol=1e-7)


def test_lecam_settings_are_checked():
  from jgan.objectives import lecam

  with pytest.raises(ValueError, match=r"lecam.weight=-1.0 must be >= 0"):
    lecam.with_lecam(make_objective("hinge"), -1.0)
  with pytest.raises(ValueError, match=r"lecam.decay=1.0 must be in \[0, 1\)"):
    lecam.with_lecam(make_objective("hinge"), 0.1, 1.0)
