"""f-GAN (Nowozin, Cseke & Tomioka 2016): every divergence of its Table 2 as an objective."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special as _sp_special

from jgan.objectives.base import Array, Objective, as_float
from jgan.objectives.lambertw import wright_omega


class FDivergence(NamedTuple):
  """One row of f-GAN's Table 2 (divergence, generator, conjugate, output activation).

  ``D_f(P || Q) = integral q(x) f(p(x) / q(x)) dx`` for a convex ``f`` with ``f(1) = 0``. Its Fenchel
  conjugate ``f*(t) = sup_u (u t - f(u))`` gives the variational lower bound
  ``D_f(P || Q) >= sup_T E_P[T(x)] - E_Q[f*(T(x))]``, tight at ``T*(x) = f'(p(x) / q(x))``.

  Attributes:
    f: the generator ``f(u)`` for ``u >= 0`` in numpy (float64, for quadrature and reference values;
      not traceable by JAX).
    activation: ``g_f: R -> dom f*``, maps D's raw output ``V`` to ``T = g_f(V)`` (JAX).
    conjugate: ``f*(t)`` on ``dom f*`` (JAX).
    domain: ``(low, high)``, the interval ``dom f*`` (open where infinite or where ``g_f`` only
      approaches the end; total variation's ``[-1/2, 1/2]`` is closed).
    conjugate_of_activation: ``v -> f*(g_f(v))`` simplified algebraically so it is finite wherever the
      mathematical value is (e.g. ``softplus(v)`` rather than ``-log(1 - exp(log_sigmoid(v)))``). The
      objectives use this form.
  """

  f: Callable[[Any], Any]
  activation: Callable[[Array], Array]
  conjugate: Callable[[Array], Array]
  domain: tuple[float, float]
  conjugate_of_activation: Callable[[Array], Array]


_LOG2 = math.log(2.0)


def _jeffrey_conjugate(t):
  # f*(t) = W(e^{1-t}) + 1/W(e^{1-t}) + t - 2. With x = 1 - t, W(e^x) = omega(x) and, since
  # omega + log(omega) = x, 1/omega = exp(omega - x): no overflow of e^{1-t} for very negative t and
  # no 1/0 when omega underflows for large t.
  t = as_float(t)
  x = 1.0 - t
  w = wright_omega(x)
  return w + jnp.exp(w - x) + t - 2.0


F_DIVERGENCES: dict[str, FDivergence] = {
  # D_TV = 1/2 int |p - q|.  f*(t) = t on [-1/2, 1/2]; T* = sign(u - 1) / 2.
  "total_variation": FDivergence(
    f=lambda u: 0.5 * np.abs(np.asarray(u, np.float64) - 1.0),
    activation=lambda v: 0.5 * jnp.tanh(v),
    conjugate=lambda t: as_float(t),
    domain=(-0.5, 0.5),
    conjugate_of_activation=lambda v: 0.5 * jnp.tanh(v),
  ),
  # KL(P || Q) = int p log(p / q).  f*(t) = exp(t - 1); T* = 1 + log u.
  "kl": FDivergence(
    f=lambda u: _sp_special.xlogy(u, u),
    activation=lambda v: as_float(v),
    conjugate=lambda t: jnp.exp(t - 1.0),
    domain=(-math.inf, math.inf),
    conjugate_of_activation=lambda v: jnp.exp(v - 1.0),
  ),
  # KL(Q || P) = int q log(q / p).  f*(t) = -1 - log(-t) on t < 0; g_f = -exp(-v); T* = -1 / u.
  "reverse_kl": FDivergence(
    f=lambda u: -np.log(u),
    activation=lambda v: -jnp.exp(-v),
    conjugate=lambda t: -1.0 - jnp.log(-t),
    domain=(-math.inf, 0.0),
    conjugate_of_activation=lambda v: v - 1.0,  # -1 - log(exp(-v))
  ),
  # Pearson chi^2 = int (p - q)^2 / q.  f*(t) = t^2 / 4 + t; T* = 2 (u - 1).
  "pearson": FDivergence(
    f=lambda u: np.square(np.asarray(u, np.float64) - 1.0),
    activation=lambda v: as_float(v),
    conjugate=lambda t: 0.25 * jnp.square(t) + t,
    domain=(-math.inf, math.inf),
    conjugate_of_activation=lambda v: 0.25 * jnp.square(v) + v,
  ),
  # Neyman chi^2 = int (p - q)^2 / p.  f*(t) = 2 - 2 sqrt(1 - t) on t < 1; g_f = 1 - exp(-v);
  # T* = 1 - 1 / u^2.
  "neyman": FDivergence(
    f=lambda u: np.square(1.0 - np.asarray(u, np.float64)) / u,
    activation=lambda v: -jnp.expm1(-v),
    conjugate=lambda t: 2.0 - 2.0 * jnp.sqrt(1.0 - t),
    domain=(-math.inf, 1.0),
    conjugate_of_activation=lambda v: 2.0 - 2.0 * jnp.exp(-0.5 * v),
  ),
  # Squared Hellinger = int (sqrt p - sqrt q)^2.  f*(t) = t / (1 - t) on t < 1; g_f = 1 - exp(-v);
  # T* = 1 - 1 / sqrt(u).
  "squared_hellinger": FDivergence(
    f=lambda u: np.square(np.sqrt(u) - 1.0),
    activation=lambda v: -jnp.expm1(-v),
    conjugate=lambda t: t / (1.0 - t),
    domain=(-math.inf, 1.0),
    conjugate_of_activation=lambda v: jnp.expm1(v),  # (1 - e^-v) / e^-v
  ),
  # Jeffrey = KL(P || Q) + KL(Q || P) = int (p - q) log(p / q).
  # f*(t) = W(e^{1-t}) + 1 / W(e^{1-t}) + t - 2; T* = 1 + log u - 1 / u.
  "jeffrey": FDivergence(
    f=lambda u: (np.asarray(u, np.float64) - 1.0) * np.log(u),
    activation=lambda v: as_float(v),
    conjugate=_jeffrey_conjugate,
    domain=(-math.inf, math.inf),
    conjugate_of_activation=_jeffrey_conjugate,
  ),
  # f(u) = u log u - (u + 1) log((u + 1) / 2) gives int p log(2p / (p+q)) + q log(2q / (p+q)),
  # i.e. 2 * JSD (JSD = mean of the two KLs to the mixture, in nats, <= log 2).  The paper's Table 1
  # writes a factor 1/2 in front; its f and f* (used here) are those of 2 * JSD.
  # f*(t) = -log(2 - e^t) on t < log 2; g_f = log 2 - log(1 + e^-v); T* = log(2u / (u + 1)).
  "jensen_shannon": FDivergence(
    f=lambda u: _sp_special.xlogy(u, u) - _sp_special.xlogy(np.asarray(u, np.float64) + 1.0, (u + 1.0) / 2.0),
    activation=lambda v: _LOG2 + jax.nn.log_sigmoid(v),
    conjugate=lambda t: -jnp.log(2.0 - jnp.exp(t)),
    domain=(-math.inf, _LOG2),
    conjugate_of_activation=lambda v: jax.nn.softplus(v) - _LOG2,  # -log(2 (1 - sigmoid(v)))
  ),
  # The original GAN's divergence: int p log(p / (p+q)) + q log(q / (p+q)) = 2 JSD - log 4.
  # f*(t) = -log(1 - e^t) on t < 0; g_f = -log(1 + e^-v) = log_sigmoid(v); T* = log(u / (u + 1)).
  "gan": FDivergence(
    f=lambda u: _sp_special.xlogy(u, u) - _sp_special.xlogy(np.asarray(u, np.float64) + 1.0, u + 1.0),
    activation=lambda v: jax.nn.log_sigmoid(v),
    conjugate=lambda t: -jnp.log(-jnp.expm1(t)),
    domain=(-math.inf, 0.0),
    conjugate_of_activation=lambda v: jax.nn.softplus(v),  # -log(1 - sigmoid(v))
  ),
}

G_LOSSES = ("trick", "saddle")


def _f_gan(name: str, g_loss: str) -> Objective:
  """The f-GAN objective for divergence ``name`` (see :func:`kl` for the math)."""
  if g_loss not in G_LOSSES:
    raise ValueError(f"f-GAN objective {name!r}: unknown g_loss {g_loss!r}; valid choices: {', '.join(G_LOSSES)}")
  div = F_DIVERGENCES[name]

  def loss(d_real, d_fake, obj_state):
    del obj_state
    t_real = div.activation(as_float(d_real))
    fstar_fake = div.conjugate_of_activation(as_float(d_fake))
    # D maximises the bound F = E_P[T] - E_Q[f*(T)]: minimise -F.
    d_loss = -(jnp.mean(t_real) - jnp.mean(fstar_fake))
    if g_loss == "saddle":
      g = -jnp.mean(fstar_fake)  # G minimises F; only its fake term depends on G
    else:
      g = -jnp.mean(div.activation(as_float(d_fake)))  # Sec. 3.2: G maximises E_Q[g_f(V(G(z)))]
    return d_loss, g

  return Objective(loss=loss)


_F_GAN_DOC = """f-GAN objective for the {title} (Nowozin, Cseke & Tomioka 2016, Table 2).

  {math}

  D outputs ``V(x)`` (float ``[B]``, any real value), ``T = g_f(V)`` lies in ``dom f*``:
  ``g_f(v) = {act}``, ``f*(t) = {conj}``. The losses (both minimised) are

      d_loss = -(E_P[g_f(V(x))] - E_Q[f*(g_f(V(x)))])    (>= -D_f(P || Q); equal at T = T*)
      g_loss = -E_Q[g_f(V(x))]          if g_loss == "trick"   (the paper's Sec. 3.2, its default)
               -E_Q[f*(g_f(V(x)))]      if g_loss == "saddle"  (the bound's G-dependent term)

  At the optimal critic ``T*(x) = f'(p(x)/q(x)) = {tstar}``, ``-d_loss = D_f(P || Q)``.
  ``f*(g_f(v))`` is evaluated in the simplified form ``{fg}``.

  Args:
    g_loss: "trick" (default) or "saddle".

  Returns:
    An :class:`Objective` with ``d_output == "logit"``.
  """


def _register_f_gan(name, title, math_, act, conj, tstar, fg):
  def factory(g_loss: str = "trick") -> Objective:
    return _f_gan(name, g_loss)

  factory.__name__ = factory.__qualname__ = name
  factory.__doc__ = _F_GAN_DOC.format(title=title, math=math_, act=act, conj=conj, tstar=tstar, fg=fg)
  return factory


total_variation = _register_f_gan(
  "total_variation",
  "total variation distance",
  "``D_f = 1/2 int |p - q| dx`` in [0, 1]; ``f(u) = |u - 1| / 2``.",
  "tanh(v) / 2",
  "t on [-1/2, 1/2]",
  "sign(u - 1) / 2",
  "tanh(v) / 2",
)
kl = _register_f_gan(
  "kl",
  "Kullback-Leibler divergence",
  "``D_f = KL(P || Q) = int p log(p/q) dx`` in [0, inf); ``f(u) = u log u``.",
  "v",
  "exp(t - 1)",
  "1 + log u",
  "exp(v - 1)",
)
reverse_kl = _register_f_gan(
  "reverse_kl",
  "reverse Kullback-Leibler divergence",
  "``D_f = KL(Q || P) = int q log(q/p) dx`` in [0, inf); ``f(u) = -log u``.",
  "-exp(-v)",
  "-1 - log(-t) on t < 0",
  "-1/u",
  "v - 1",
)
pearson = _register_f_gan(
  "pearson",
  "Pearson chi-squared divergence",
  "``D_f = int (p - q)^2 / q dx`` in [0, inf); ``f(u) = (u - 1)^2``.",
  "v",
  "t^2/4 + t",
  "2 (u - 1)",
  "v^2/4 + v",
)
neyman = _register_f_gan(
  "neyman",
  "Neyman chi-squared divergence",
  "``D_f = int (p - q)^2 / p dx`` in [0, inf); ``f(u) = (1 - u)^2 / u``.",
  "1 - exp(-v)",
  "2 - 2 sqrt(1 - t) on t < 1",
  "1 - 1/u^2",
  "2 - 2 exp(-v/2)",
)
squared_hellinger = _register_f_gan(
  "squared_hellinger",
  "squared Hellinger distance",
  "``D_f = int (sqrt p - sqrt q)^2 dx`` in [0, 2]; ``f(u) = (sqrt u - 1)^2``.",
  "1 - exp(-v)",
  "t / (1 - t) on t < 1",
  "1 - 1/sqrt(u)",
  "exp(v) - 1",
)
jeffrey = _register_f_gan(
  "jeffrey",
  "Jeffrey divergence",
  "``D_f = KL(P || Q) + KL(Q || P) = int (p - q) log(p/q) dx`` in [0, inf); ``f(u) = (u - 1) log u``.",
  "v",
  "W(e^(1-t)) + 1/W(e^(1-t)) + t - 2 (W: Lambert W, via :func:`wright_omega`)",
  "1 + log u - 1/u",
  "the same, with W(e^x) = wright_omega(x) and 1/W(e^x) = exp(W - x)",
)
jensen_shannon = _register_f_gan(
  "jensen_shannon",
  "Jensen-Shannon divergence",
  "``D_f = int p log(2p/(p+q)) + q log(2q/(p+q)) dx = 2 JSD(P, Q)`` in [0, log 4]; "
  "``f(u) = u log u - (u + 1) log((u + 1)/2)`` (the paper's f and f*; its Table 1 writes a factor 1/2).",
  "log 2 - log(1 + exp(-v))",
  "-log(2 - exp(t)) on t < log 2",
  "log(2u / (u + 1))",
  "softplus(v) - log 2",
)
gan = _register_f_gan(
  "gan",
  "GAN divergence",
  "``D_f = int p log(p/(p+q)) + q log(q/(p+q)) dx = 2 JSD(P, Q) - log 4`` in [-log 4, 0]; "
  "``f(u) = u log u - (u + 1) log(u + 1)``. Its trick G loss is the non-saturating GAN, its saddle "
  "G loss the minimax one.",
  "-log(1 + exp(-v)) = log_sigmoid(v)",
  "-log(1 - exp(t)) on t < 0",
  "log(u / (u + 1))",
  "softplus(v)",
)
