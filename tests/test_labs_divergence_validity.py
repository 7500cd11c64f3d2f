"""Where the variational divergence estimators are valid (jgan.labs.divergence_validity), against float64
references: scipy quadrature of the ratio moments and of the optimal critic's mean and variance."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import integrate, stats

from jgan.labs import divergence, divergence_validity
from jgan.labs.divergence import GAUSSIAN_CASES, GaussianCase, Task, gaussian_sampler
from jgan.labs.divergence_validity import (
  OPTIMAL_CRITIC,
  VARIANCE_MOMENTS,
  gaussian_ratio_moment,
  optimal_critic_value,
  optimal_estimator_variance,
  variance_condition,
)
from jgan.objectives import F_DIVERGENCES

ISSUE_CASE = GaussianCase(0.0, 1.0, 0.7, 1.3)  # Neyman's estimates scattered from -0.41 to 5.4 (true 5.71)
CASES = [GaussianCase(0.0, 1.0, 1.0, 1.0), GaussianCase(0.2, 1.0, 0.7, 1.3), GaussianCase(-0.5, 1.5, 0.5, 1.2)]


def _moment_by_quadrature(a, case, half_width):
  """int_{c-w}^{c+w} p^a q^(1-a) dx in float64."""
  centre = 0.5 * (case.loc_p + case.loc_q)

  def f(x):
    return math.exp(
      a * stats.norm.logpdf(x, case.loc_p, case.scale_p) + (1 - a) * stats.norm.logpdf(x, case.loc_q, case.scale_q)
    )

  pts = np.linspace(centre - half_width, centre + half_width, 9)
  return sum(integrate.quad(f, lo, hi, limit=400, epsabs=1e-14, epsrel=1e-12)[0] for lo, hi in zip(pts, pts[1:]))


@pytest.mark.parametrize("a", [-3.0, -2.0, -1.0, -0.5, 0.3, 1.0, 2.0, 3.0, 4.0])
@pytest.mark.parametrize("case", CASES + [ISSUE_CASE])
def test_ratio_moments_match_quadrature_or_diverge(a, case):
  closed = gaussian_ratio_moment(a, case)
  if math.isfinite(closed):
    np.testing.assert_allclose(_moment_by_quadrature(a, case, 60), closed, rtol=1e-9)
  else:  # the truncated integrals grow without bound
    sizes = [_moment_by_quadrature(a, case, w) for w in (5, 10, 20)]
    assert sizes[1] > 10 * sizes[0] and sizes[2] > 1e6 * sizes[1], sizes


def test_scale_ratio_thresholds_are_the_documented_ones():
  """KL needs s_q^2 / s_p^2 > 1/2, reverse KL < 2, Pearson > 3/4, Neyman < 4/3, Jeffrey both of KL's."""
  bounds = {"kl": (0.5, math.inf), "reverse_kl": (0.0, 2.0), "pearson": (0.75, math.inf), "neyman": (0.0, 4 / 3)}
  bounds["jeffrey"] = (0.5, 2.0)
  for name in F_DIVERGENCES:
    lo, hi = bounds.get(name, (0.0, math.inf))
    for v in np.concatenate([np.linspace(0.05, 3.0, 60), [lo * 0.99, lo * 1.01, hi * 0.99, hi * 1.01]]):
      if not 0 < v < math.inf or min(abs(v - lo), abs(v - hi)) < 1e-6:  # at a bound: rounding decides
        continue
      case = GaussianCase(0.0, 1.0, 0.3, math.sqrt(v))
      finite = variance_condition(name, case) is None
      assert finite == (lo < v < hi), (name, v, variance_condition(name, case))


@pytest.mark.parametrize("name", sorted(F_DIVERGENCES))
def test_optimal_critic_attains_the_divergence(name):
  """E_P[T*] - E_Q[f*(T*)] with OPTIMAL_CRITIC's T* = f'(p/q) is the divergence (quadrature of q f(p/q))."""
  for case in [*CASES, GAUSSIAN_CASES[name]]:
    rtol = 1e-6 if name == "total_variation" else 1e-7  # |p - q|'s kinks, integrated without breakpoints
    np.testing.assert_allclose(
      optimal_critic_value(name, case), divergence.reference_value(name, case), rtol=rtol, atol=1e-10
    )


def test_pearson_variance_matches_its_closed_form():
  """Var_P[2(r-1)] + Var_Q[r^2 - 1] = 4 M(3) - 4 M(2)^2 + M(4) - M(2)^2 with M(a) = E_Q[r^a]."""
  for case in [GAUSSIAN_CASES["pearson"], GaussianCase(0.2, 1.0, 0.7, 1.3)]:
    m = {a: gaussian_ratio_moment(a, case) for a in (2.0, 3.0, 4.0)}
    closed = 4 * m[3.0] - 4 * m[2.0] ** 2 + m[4.0] - m[2.0] ** 2
    np.testing.assert_allclose(optimal_estimator_variance("pearson", case), closed, rtol=1e-7)


def test_every_divergence_has_its_conditions():
  assert set(OPTIMAL_CRITIC) == set(VARIANCE_MOMENTS) == set(F_DIVERGENCES)


def test_the_issue_pair_warns_and_the_table_pairs_do_not():
  task = Task("neyman", gaussian_sampler(0.0, 1.0), gaussian_sampler(0.7, 1.3))
  with pytest.warns(
    divergence.EstimatorVarianceWarning, match=r"neyman between P = N\(0, 1\^2\) and Q = N\(0.7, 1.3\^2\)"
  ):
    why = divergence.check_variance(task)
  assert why == "E_P[(q/p)^4] is infinite (finite only if s_q^2 / s_p^2 < 1.333; here 1.69)"
  assert math.isinf(optimal_estimator_variance("neyman", ISSUE_CASE))
  assert divergence.reference_value("neyman", ISSUE_CASE) == pytest.approx(5.7118350, abs=1e-6)
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    for t in divergence.gaussian_tasks():
      assert divergence.check_variance(t) is None
    # Samplers that are not gaussian_sampler's are not checked.
    assert divergence.check_variance(Task("neyman", lambda k, n: None, lambda k, n: None)) is None
  assert divergence_validity.variance_condition("total_variation", GaussianCase(0, 1, 0, 100)) is None
