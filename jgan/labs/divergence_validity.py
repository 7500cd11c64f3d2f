"""Where the variational f-divergence estimators are valid: when their variance is finite.

:func:`jgan.labs.divergence.estimate_divergence` reports ``E_P[T] - E_Q[f*(T)]`` on samples of P and Q
for a trained critic ``T``. Near the optimum ``T* = f'(r)``, ``r = p/q``, the estimate of ``n`` samples
of each distribution has variance ``(Var_P[T*(x)] + Var_Q[f*(T*(x))]) / n``, finite exactly when
``E_P[T*^2]`` and ``E_Q[f*(T*)^2]`` are. With ``M(a) = E_Q[r^a] = int p^a q^(1-a)`` (so
``E_P[r^a] = M(a + 1)``):

============== =========================== ============================= ==================================
divergence     T*(r)                       f*(T*(r))                     variance finite iff
============== =========================== ============================= ==================================
total var.     sign(r - 1) / 2             sign(r - 1) / 2               always (bounded)
kl             1 + log r                   r                             M(2) = 1 + chi2(P||Q) < inf [*]
reverse_kl     -1 / r                      log r - 1                     M(-1) = 1 + chi2(Q||P) < inf [*]
pearson        2 (r - 1)                   r^2 - 1                       M(4) < inf  (implies M(3))
neyman         1 - r^-2                    2 - 2 / r                     M(-3) < inf  (implies M(-2))
sq. hellinger  1 - r^-1/2                  r^1/2 - 1                     always (M(0), M(1) <= 1)
jeffrey        1 + log r - 1 / r           log r + r - 1                 M(2) < inf and M(-1) < inf [*]
jensen_shannon log(2r / (r + 1))           log((1 + r) / 2)              [*] only
gan            log(r / (r + 1))            log(1 + r)                    [*] only
============== =========================== ============================= ==================================

[*] and the log-moments ``E_P[log^2 r]``, ``E_Q[log^2 r]`` finite (always for Gaussians).

For 1-D Gaussians ``P = N(mu_p, s_p^2)``, ``Q = N(mu_q, s_q^2)``, ``M(a)`` is finite iff
``a / s_p^2 + (1 - a) / s_q^2 > 0`` (the means do not matter), so with ``v = s_q^2 / s_p^2``: KL needs
``v > 1/2``, reverse KL ``v < 2``, Pearson ``v > 3/4``, Neyman ``v < 4/3``, Jeffrey ``1/2 < v < 2``.
Neyman's chi-square between ``N(0, 1)`` and ``N(0.7, 1.3^2)`` (``v = 1.69``) therefore has an estimator of
infinite variance: single estimates scatter far around the true 5.71 however long the critic trains.
Finite is not small either: the variance grows like ``exp(c (mu_p - mu_q)^2)``;
:func:`optimal_estimator_variance` gives its value.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import integrate

# Per divergence: (T*(log r), f*(T*)(log r)) in numpy float64, as functions of log r (stable in the tails).
OPTIMAL_CRITIC: dict[str, tuple[Callable, Callable]] = {
  "total_variation": (lambda lr: 0.5 * np.sign(lr), lambda lr: 0.5 * np.sign(lr)),
  "kl": (lambda lr: 1.0 + lr, lambda lr: np.exp(lr)),
  "reverse_kl": (lambda lr: -np.exp(-lr), lambda lr: lr - 1.0),
  "pearson": (lambda lr: 2.0 * np.expm1(lr), lambda lr: np.expm1(2.0 * lr)),
  "neyman": (lambda lr: -np.expm1(-2.0 * lr), lambda lr: -2.0 * np.expm1(-lr)),
  "squared_hellinger": (lambda lr: -np.expm1(-0.5 * lr), lambda lr: np.expm1(0.5 * lr)),
  "jeffrey": (lambda lr: 1.0 + lr - np.exp(-lr), lambda lr: lr + np.expm1(lr)),
  "jensen_shannon": (
    lambda lr: math.log(2.0) + lr - np.logaddexp(0.0, lr),
    lambda lr: np.logaddexp(0.0, lr) - math.log(2.0),
  ),
  "gan": (lambda lr: lr - np.logaddexp(0.0, lr), lambda lr: np.logaddexp(0.0, lr)),
}

# Per divergence: the power moments M(a) = E_Q[(p/q)^a] its estimator's variance needs, with their
# names as expectations (the log-moments, finite for Gaussians, are in the module docstring).
VARIANCE_MOMENTS: dict[str, tuple[tuple[float, str], ...]] = {
  "total_variation": (),
  "kl": ((2.0, "E_Q[(p/q)^2] = 1 + chi^2(P||Q)"),),
  "reverse_kl": ((-1.0, "E_P[(q/p)^2] = 1 + chi^2(Q||P)"),),
  "pearson": ((4.0, "E_Q[(p/q)^4]"), (3.0, "E_P[(p/q)^2]")),  # the binding one first
  "neyman": ((-3.0, "E_P[(q/p)^4]"), (-2.0, "E_Q[(q/p)^2]")),
  "squared_hellinger": (),
  "jeffrey": ((2.0, "E_Q[(p/q)^2] = 1 + chi^2(P||Q)"), (-1.0, "E_P[(q/p)^2] = 1 + chi^2(Q||P)")),
  "jensen_shannon": (),
  "gan": (),
}


def _precision(a: float, case) -> float:
  """``a / s_p^2 + (1 - a) / s_q^2``: the precision of ``p^a q^(1-a)`` (M(a) is finite iff it is > 0)."""
  return a / case.scale_p**2 + (1.0 - a) / case.scale_q**2


def gaussian_ratio_moment(a: float, case) -> float:
  """``M(a) = E_Q[(p/q)^a] = int p^a q^(1-a) dx`` for 1-D Gaussians P, Q (``case``: loc_p, scale_p,
  loc_q, scale_q), in closed form (float64); ``inf`` where the integral diverges."""
  lam = _precision(a, case)
  if lam <= 0:
    return math.inf
  b = a * case.loc_p / case.scale_p**2 + (1.0 - a) * case.loc_q / case.scale_q**2
  c = a * case.loc_p**2 / case.scale_p**2 + (1.0 - a) * case.loc_q**2 / case.scale_q**2
  log_m = -a * math.log(case.scale_p) - (1.0 - a) * math.log(case.scale_q) - 0.5 * math.log(lam)
  return math.exp(log_m + 0.5 * (b * b / lam - c))


def variance_condition(name: str, case) -> str | None:
  """Why the optimal-critic estimator of ``name`` between the Gaussians of ``case`` has infinite
  variance (the first diverging moment and the condition on the scales), or None if it is finite."""
  for a, what in VARIANCE_MOMENTS.get(name, ()):
    if _precision(a, case) <= 0:
      v = case.scale_q**2 / case.scale_p**2
      bound = (a - 1.0) / a  # a s_q^2 + (1 - a) s_p^2 > 0  <=>  v > (a-1)/a (a > 0) or v < (a-1)/a (a < 0)
      need = f"s_q^2 / s_p^2 {'>' if a > 0 else '<'} {bound:.4g}"
      return f"{what} is infinite (finite only if {need}; here {v:.4g})"
  return None


_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _logpdf(x: float, loc: float, scale: float) -> float:
  """log N(x; loc, scale^2) in float64 (scipy.stats.norm.logpdf's value, without its per-call cost)."""
  z = (x - loc) / scale
  return -0.5 * z * z - math.log(scale) - _HALF_LOG_2PI


def _log_ratio(case) -> Callable:
  return lambda x: _logpdf(x, case.loc_p, case.scale_p) - _logpdf(x, case.loc_q, case.scale_q)


def _expect(case, which: str, g: Callable) -> float:
  """``E[g(x)]`` under P (``which="p"``) or Q by quadrature in float64 over +-40 scales."""
  loc, scale = (case.loc_p, case.scale_p) if which == "p" else (case.loc_q, case.scale_q)
  width = 40 * max(case.scale_p, case.scale_q)
  centre = 0.5 * (case.loc_p + case.loc_q)
  pts = sorted({centre - width, loc - 10 * scale, loc, loc + 10 * scale, centre + width})
  pts = [x for x in pts if centre - width <= x <= centre + width]

  def integrand(x):
    with np.errstate(over="ignore", invalid="ignore"):
      v = math.exp(_logpdf(x, loc, scale)) * float(g(x))
    # 0 * inf far in a tail where the density underflowed (the integrals used here converge there).
    return v if math.isfinite(v) else 0.0

  return float(
    sum(integrate.quad(integrand, a, b, limit=400, epsabs=1e-13, epsrel=1e-11)[0] for a, b in zip(pts, pts[1:]))
  )


def optimal_critic_value(name: str, case) -> float:
  """``E_P[T*] - E_Q[f*(T*)]`` by quadrature: the divergence itself (a check of OPTIMAL_CRITIC)."""
  t, ft = OPTIMAL_CRITIC[name]
  lr = _log_ratio(case)
  return _expect(case, "p", lambda x: t(lr(x))) - _expect(case, "q", lambda x: ft(lr(x)))


def optimal_estimator_variance(name: str, case) -> float:
  """``Var_P[T*] + Var_Q[f*(T*)]``: ``eval_size`` times the variance of an estimate at the optimal
  critic (float64 quadrature); ``inf`` where :func:`variance_condition` fails."""
  if variance_condition(name, case) is not None:
    return math.inf
  t, ft = OPTIMAL_CRITIC[name]
  lr = _log_ratio(case)
  out = 0.0
  for which, g in (("p", t), ("q", ft)):
    m1 = _expect(case, which, lambda x, g=g: g(lr(x)))
    m2 = _expect(case, which, lambda x, g=g: g(lr(x)) ** 2)
    out += m2 - m1 * m1
  return out
