"""Adversarial objectives: one registry, one interface.

Every objective is built by a small factory ``OBJECTIVES[name](**params) -> Objective`` (optax style:
the factory's keyword arguments are the objective's parameters, its defaults are the published ones).
An :class:`Objective` holds pure functions over D's *raw* outputs:

* ``loss(d_real, d_fake, obj_state) -> (d_loss, g_loss)``: scalar float32 losses, both to be
  *minimised* (D by the discriminator's update, G by the generator's). ``d_real`` / ``d_fake`` are D's
  outputs on a real / generated batch: float32 ``[B]`` raw scores (logits, critic values or f-GAN's
  pre-activation ``V(x)``) for ``d_output == "logit"``, or for ``d_output == "energy"`` a dict with
  ``"energy"`` ``[B]`` (>= 0, e.g. an autoencoder's reconstruction error) and ``"code"`` ``[B, k]``
  (a bare ``[B]`` energy array is accepted where no code is needed, e.g. as a placeholder ``d_real``).
* ``init_state() -> obj_state``: the objective's own state, carried in the train state (``()`` for
  stateless objectives; BEGAN's ``k_t`` for example).
* ``update_state(obj_state, d_real, d_fake) -> (obj_state, metrics)``: called once per D update with the
  outputs that D update saw; returns the new state and scalar metrics to log (e.g. BEGAN's M_global).
* ``g_uses_real``: whether ``g_loss`` depends on ``d_real`` (relativistic losses), so the G update has to
  run D on the real batch as well.
* ``d_penalty``: ``None`` or a function ``(d_fn, real, fake, rng) -> scalar`` that the train step adds to
  ``d_loss`` (WGAN-GP's gradient penalty is part of that objective). ``d_fn`` maps a batch of inputs
  ``[B, ...]`` to D's per-sample raw outputs ``[B]``; ``real`` / ``fake`` are the batches D just scored.
  Penalties that can go with *any* objective (R1, R2, ...) live in ``jgan.penalties.PENALTIES``.

Registered families (each factory's docstring has the math and the reference):

* ``minimax``, ``non_saturating`` -- Goodfellow et al. 2014.
* f-GAN (Nowozin, Cseke, Tomioka 2016), one objective per divergence of its Table 2:
  ``total_variation``, ``kl``, ``reverse_kl``, ``pearson``, ``neyman``, ``squared_hellinger``,
  ``jeffrey``, ``jensen_shannon``, ``gan``. D outputs ``V(x)``; ``T = g_f(V)``; the variational bound
  ``F = E_P[T] - E_Q[f*(T)] <= D_f(P || Q)`` is maximised by D. :data:`F_DIVERGENCES` holds ``f``,
  ``g_f``, ``f*`` and its domain.
* ``wasserstein`` (Arjovsky et al. 2017), ``wgan_gp`` (Gulrajani et al. 2017).
* ``least_squares`` (Mao et al. 2017), ``hinge`` (Lim & Ye 2017; Miyato et al. 2018),
  ``relativistic`` (Jolicoeur-Martineau 2018).
* ``ebgan`` (Zhao, Mathieu, LeCun 2016) and ``began`` (Berthelot et al. 2017) with
  ``d_output == "energy"``; BEGAN carries ``k_t`` as objective state.

Conventions: ``P`` is the data distribution (``d_real``), ``Q`` the generator's (``d_fake``); losses
are computed in (at least) float32 whatever the dtype of D's outputs.
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special as _sp_special

from jgan import penalties as _penalties

Array = jax.Array


class Objective(NamedTuple):
  """A GAN objective as pure functions (see the module docstring for shapes and meaning)."""

  loss: Callable[[Any, Any, Any], tuple[Array, Array]]
  init_state: Callable[[], Any] = lambda: ()
  update_state: Callable[[Any, Any, Any], tuple[Any, dict]] = lambda s, r, f: (s, {})
  d_output: str = "logit"
  g_uses_real: bool = False
  d_penalty: Callable[..., Array] | None = None


def minimax() -> Objective:
  """The original (saturating) GAN of Goodfellow et al. 2014.

  With ``D(x) = sigmoid(logit)``: ``d_loss = -E[log D(x)] - E[log(1 - D(G(z)))]`` and
  ``g_loss = E[log(1 - D(G(z)))]`` (G minimises what D maximises). Computed from logits with
  ``log_sigmoid`` so large logits do not overflow. Losses are in ``[0, inf)`` / ``(-inf, 0]``.
  """

  def loss(d_real, d_fake, obj_state):
    del obj_state
    d_loss = -jnp.mean(jax.nn.log_sigmoid(d_real)) - jnp.mean(jax.nn.log_sigmoid(-d_fake))
    g_loss = jnp.mean(jax.nn.log_sigmoid(-d_fake))
    return d_loss, g_loss

  return Objective(loss=loss)


def non_saturating() -> Objective:
  """The non-saturating GAN (Goodfellow et al. 2014, Sec. 3): G maximises ``log D(G(z))``.

  ``d_loss`` is the minimax one; ``g_loss = -E[log D(G(z))] = E[softplus(-logit_fake)]`` in ``[0, inf)``,
  whose gradient does not vanish when D confidently rejects the samples early in training.
  """

  def loss(d_real, d_fake, obj_state):
    del obj_state
    d_loss = -jnp.mean(jax.nn.log_sigmoid(d_real)) - jnp.mean(jax.nn.log_sigmoid(-d_fake))
    g_loss = -jnp.mean(jax.nn.log_sigmoid(d_fake))
    return d_loss, g_loss

  return Objective(loss=loss)


def _as_float(x) -> Array:
  """``x`` as a JAX array of at least float32 precision (bf16/f16 outputs of D are upcast for losses)."""
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


# --------------------------------------------------------------------------------------------------
# Lambert W and Wright omega (needed by Jeffrey's conjugate)
# --------------------------------------------------------------------------------------------------


def _fsc_step(x: Array, w: Array) -> Array:
  """One Fritsch-Shafer-Crowley step for ``w + log w = x`` (fourth-order convergent, w > 0)."""
  r = x - w - jnp.log(w)
  wp1 = w + 1.0
  a = 2.0 * wp1 * (wp1 + (2.0 / 3.0) * r)
  return w * (1.0 + r / wp1 * (a - r) / (a - 2.0 * r))


@jax.custom_jvp
def wright_omega(x) -> Array:
  """Wright omega ``omega(x) = W_0(exp(x))``: the unique ``w > 0`` with ``w + log(w) = x``.

  Computed without forming ``exp(x)`` (which overflows float32 for x > 88), following Lawrence,
  Corless & Jeffrey 2012 (Algorithm 917): a piecewise initial guess (``exp(x)`` for x <= -2, the Taylor
  series about ``omega(1) = 1`` on (-2, 1], the asymptotic ``x - log x + log(x)/x`` above) refined by two
  Fritsch-Shafer-Crowley iterations, which reach float64 round-off. For x < -40, ``omega(x) = exp(x)``
  to within a relative ``exp(-40)`` and is returned directly (no ``log`` of an underflowing number);
  for x > 1e8 the asymptotic series is exact to float64 round-off and is returned directly.

  Args:
    x: real array, any shape; float32 or float64.

  Returns:
    ``omega(x)``, same shape, values in ``(0, inf)`` (``+inf`` for ``x = +inf``). Differentiable:
    ``d omega / dx = omega / (1 + omega)`` (a custom JVP, so the iterations are not differentiated).
  """
  x = _as_float(x)
  xs = jnp.clip(x, -40.0, 1e8)  # the iterations' range; outside it the asymptotics are exact
  t = xs - 1.0
  taylor = 1.0 + t / 2.0 + t**2 / 16.0 - t**3 / 192.0 - t**4 / 3072.0 + 13.0 * t**5 / 61440.0

  def asymptotic(y):  # x - log x + log(x)/x, error O((log(x)/x)^2)
    ly = jnp.log(jnp.maximum(y, 1.0))
    return y - ly + ly / jnp.maximum(y, 1.0)

  w = jnp.where(xs <= -2.0, jnp.exp(xs), jnp.where(xs <= 1.0, taylor, asymptotic(xs)))
  w = _fsc_step(xs, _fsc_step(xs, w))
  # Above 1e8 the next asymptotic term is < 1e-14 relative, and FSC's (1 + w)^2 would overflow float32.
  w = jnp.where(x > 1e8, asymptotic(jnp.where(x > 1e8, x, 1e8)), w)
  w = jnp.where(x < -40.0, jnp.exp(x), w)
  return jnp.where(jnp.isposinf(x), jnp.inf, w)


@wright_omega.defjvp
def _wright_omega_jvp(primals, tangents):
  (x,), (dx,) = primals, tangents
  w = wright_omega(x)
  return w, w / (1.0 + w) * dx


@jax.custom_jvp
def lambertw(z) -> Array:
  """Principal branch ``W_0(z)`` of the Lambert W function for real ``z >= -1/e``: ``W e^W = z``, W >= -1.

  * ``z > 1/4``: ``W_0(z) = omega(log z)`` (:func:`wright_omega`), accurate for any magnitude.
  * ``-1/e <= z <= 1/4``: four Halley iterations on ``w e^w - z`` from the branch-point series
    ``-1 + p - p^2/3 + 11 p^3/72`` (``p = sqrt(2(e z + 1))``) for z < -1/4, or the Taylor series
    ``z - z^2 + 3 z^3 / 2`` otherwise (relative accuracy is kept for tiny ``|z|``, where
    ``omega(log z)`` would lose ``|log z|`` ulps). Near ``z = -1/e`` W has a square-root
    singularity: the result is accurate for the given float32 ``z``, but an error ``dz`` already in
    ``z`` moves it by ``~sqrt(2 e dz)`` (~1e-3 for one float32 ulp of 1/e).

  Args:
    z: real array, any shape.

  Returns:
    ``W_0(z)``, same shape, in ``[-1, inf)``; NaN for ``z < -1/e`` (where W_0 is complex).
    Differentiable with ``dW/dz = 1 / (e^W (1 + W))`` (a custom JVP; infinite at ``z = -1/e``).
  """
  z = _as_float(z)
  # Large z: the robust log-space route.
  pos = wright_omega(jnp.log(jnp.where(z > 0.25, z, 1.0)))
  # Small z: Halley on w e^w - z from a series initial guess.
  zn = jnp.clip(z, -1.0 / math.e, 0.25)
  p = jnp.sqrt(jnp.maximum(2.0 * (math.e * zn + 1.0), 0.0))
  w = jnp.where(zn < -0.25, -1.0 + p - p**2 / 3.0 + 11.0 / 72.0 * p**3, zn - zn**2 + 1.5 * zn**3)
  for _ in range(4):
    ew = jnp.exp(w)
    f = w * ew - zn
    wp1 = w + 1.0
    denom = ew * wp1 - (w + 2.0) * f / (2.0 * wp1)
    # At the branch point w = -1 both f and denom vanish: keep w there.
    safe = (jnp.abs(denom) > 0) & (wp1 > 0)
    w = jnp.where(safe, w - f / jnp.where(safe, denom, 1.0), w)
  out = jnp.where(z > 0.25, pos, jnp.maximum(w, -1.0))
  return jnp.where(z < -1.0 / math.e - 1e-7, jnp.nan, out)


@lambertw.defjvp
def _lambertw_jvp(primals, tangents):
  (z,), (dz,) = primals, tangents
  w = lambertw(z)
  return w, dz / (jnp.exp(w) * (1.0 + w))


# --------------------------------------------------------------------------------------------------
# f-GAN (Nowozin, Cseke & Tomioka 2016)
# --------------------------------------------------------------------------------------------------


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
  t = _as_float(t)
  x = 1.0 - t
  w = wright_omega(x)
  return w + jnp.exp(w - x) + t - 2.0


F_DIVERGENCES: dict[str, FDivergence] = {
    # D_TV = 1/2 int |p - q|.  f*(t) = t on [-1/2, 1/2]; T* = sign(u - 1) / 2.
    "total_variation": FDivergence(
        f=lambda u: 0.5 * np.abs(np.asarray(u, np.float64) - 1.0),
        activation=lambda v: 0.5 * jnp.tanh(v),
        conjugate=lambda t: _as_float(t),
        domain=(-0.5, 0.5),
        conjugate_of_activation=lambda v: 0.5 * jnp.tanh(v),
    ),
    # KL(P || Q) = int p log(p / q).  f*(t) = exp(t - 1); T* = 1 + log u.
    "kl": FDivergence(
        f=lambda u: _sp_special.xlogy(u, u),
        activation=lambda v: _as_float(v),
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
        activation=lambda v: _as_float(v),
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
        activation=lambda v: _as_float(v),
        conjugate=_jeffrey_conjugate,
        domain=(-math.inf, math.inf),
        conjugate_of_activation=_jeffrey_conjugate,
    ),
    # f(u) = u log u - (u + 1) log((u + 1) / 2) gives int p log(2p / (p+q)) + q log(2q / (p+q)),
    # i.e. 2 * JSD (JSD = mean of the two KLs to the mixture, in nats, <= log 2).  The paper's Table 1
    # writes a factor 1/2 in front; its f and f* (used here) are those of 2 * JSD.
    # f*(t) = -log(2 - e^t) on t < log 2; g_f = log 2 - log(1 + e^-v); T* = log(2u / (u + 1)).
    "jensen_shannon": FDivergence(
        f=lambda u: (_sp_special.xlogy(u, u)
                     - _sp_special.xlogy(np.asarray(u, np.float64) + 1.0, (u + 1.0) / 2.0)),
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

_G_LOSSES = ("trick", "saddle")


def _f_gan(name: str, g_loss: str) -> Objective:
  """The f-GAN objective for divergence ``name`` (see :func:`kl` for the math)."""
  if g_loss not in _G_LOSSES:
    raise ValueError(
        f"f-GAN objective {name!r}: unknown g_loss {g_loss!r}; valid choices: {', '.join(_G_LOSSES)}")
  div = F_DIVERGENCES[name]

  def loss(d_real, d_fake, obj_state):
    del obj_state
    t_real = div.activation(_as_float(d_real))
    fstar_fake = div.conjugate_of_activation(_as_float(d_fake))
    # D maximises the bound F = E_P[T] - E_Q[f*(T)]: minimise -F.
    d_loss = -(jnp.mean(t_real) - jnp.mean(fstar_fake))
    if g_loss == "saddle":
      g = -jnp.mean(fstar_fake)  # G minimises F; only its fake term depends on G
    else:
      g = -jnp.mean(div.activation(_as_float(d_fake)))  # Sec. 3.2: G maximises E_Q[g_f(V(G(z)))]
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
    "total_variation", "total variation distance",
    "``D_f = 1/2 int |p - q| dx`` in [0, 1]; ``f(u) = |u - 1| / 2``.",
    "tanh(v) / 2", "t on [-1/2, 1/2]", "sign(u - 1) / 2", "tanh(v) / 2")
kl = _register_f_gan(
    "kl", "Kullback-Leibler divergence",
    "``D_f = KL(P || Q) = int p log(p/q) dx`` in [0, inf); ``f(u) = u log u``.",
    "v", "exp(t - 1)", "1 + log u", "exp(v - 1)")
reverse_kl = _register_f_gan(
    "reverse_kl", "reverse Kullback-Leibler divergence",
    "``D_f = KL(Q || P) = int q log(q/p) dx`` in [0, inf); ``f(u) = -log u``.",
    "-exp(-v)", "-1 - log(-t) on t < 0", "-1/u", "v - 1")
pearson = _register_f_gan(
    "pearson", "Pearson chi-squared divergence",
    "``D_f = int (p - q)^2 / q dx`` in [0, inf); ``f(u) = (u - 1)^2``.",
    "v", "t^2/4 + t", "2 (u - 1)", "v^2/4 + v")
neyman = _register_f_gan(
    "neyman", "Neyman chi-squared divergence",
    "``D_f = int (p - q)^2 / p dx`` in [0, inf); ``f(u) = (1 - u)^2 / u``.",
    "1 - exp(-v)", "2 - 2 sqrt(1 - t) on t < 1", "1 - 1/u^2", "2 - 2 exp(-v/2)")
squared_hellinger = _register_f_gan(
    "squared_hellinger", "squared Hellinger distance",
    "``D_f = int (sqrt p - sqrt q)^2 dx`` in [0, 2]; ``f(u) = (sqrt u - 1)^2``.",
    "1 - exp(-v)", "t / (1 - t) on t < 1", "1 - 1/sqrt(u)", "exp(v) - 1")
jeffrey = _register_f_gan(
    "jeffrey", "Jeffrey divergence",
    "``D_f = KL(P || Q) + KL(Q || P) = int (p - q) log(p/q) dx`` in [0, inf); ``f(u) = (u - 1) log u``.",
    "v", "W(e^(1-t)) + 1/W(e^(1-t)) + t - 2 (W: Lambert W, via :func:`wright_omega`)",
    "1 + log u - 1/u", "the same, with W(e^x) = wright_omega(x) and 1/W(e^x) = exp(W - x)")
jensen_shannon = _register_f_gan(
    "jensen_shannon", "Jensen-Shannon divergence",
    "``D_f = int p log(2p/(p+q)) + q log(2q/(p+q)) dx = 2 JSD(P, Q)`` in [0, log 4]; "
    "``f(u) = u log u - (u + 1) log((u + 1)/2)`` (the paper's f and f*; its Table 1 writes a factor 1/2).",
    "log 2 - log(1 + exp(-v))", "-log(2 - exp(t)) on t < log 2", "log(2u / (u + 1))", "softplus(v) - log 2")
gan = _register_f_gan(
    "gan", "GAN divergence",
    "``D_f = int p log(p/(p+q)) + q log(q/(p+q)) dx = 2 JSD(P, Q) - log 4`` in [-log 4, 0]; "
    "``f(u) = u log u - (u + 1) log(u + 1)``. Its trick G loss is the non-saturating GAN, its saddle "
    "G loss the minimax one.",
    "-log(1 + exp(-v)) = log_sigmoid(v)", "-log(1 - exp(t)) on t < 0", "log(u / (u + 1))", "softplus(v)")


# --------------------------------------------------------------------------------------------------
# Wasserstein
# --------------------------------------------------------------------------------------------------


def wasserstein() -> Objective:
  """WGAN (Arjovsky, Chintala & Bottou 2017): the Kantorovich-Rubinstein dual of W1.

  ``W1(P, Q) = sup_{||D||_L <= 1} E_P[D(x)] - E_Q[D(x)]``. D outputs unbounded critic values ``[B]``:

      d_loss = E_Q[D(x)] - E_P[D(x)]     (>= -W1 for a 1-Lipschitz critic)
      g_loss = -E_Q[D(x)]

  The Lipschitz constraint is *not* part of the loss: with this objective it comes from weight
  clipping to ``[-clip, clip]`` (``clip = 0.01`` in the paper, together with RMSProp, lr 5e-5,
  ``n_critic = 5``), which the optimiser step applies after each D update (``clip`` lives in the D
  optimiser's config, see ``jgan.optim``). For a penalty instead of clipping use :func:`wgan_gp`.
  """

  def loss(d_real, d_fake, obj_state):
    del obj_state
    d_real, d_fake = _as_float(d_real), _as_float(d_fake)
    return jnp.mean(d_fake) - jnp.mean(d_real), -jnp.mean(d_fake)

  return Objective(loss=loss)


def wgan_gp(gp_weight: float = 10.0, one_sided: bool = False, drift: float = 0.0) -> Objective:
  """WGAN-GP (Gulrajani et al. 2017): :func:`wasserstein`'s losses plus a gradient penalty on D.

      d_loss = E_Q[D(x)] - E_P[D(x)] + drift * E_P[D(x)^2]
      g_loss = -E_Q[D(x)]
      d_penalty = gp_weight * E_xhat[(||grad D(xhat)|| - 1)^2]     (or max(0, . - 1)^2 if one_sided)

  with ``xhat = eps real + (1 - eps) fake``, ``eps ~ U[0, 1]`` per sample (the train step calls
  ``d_penalty(d_fn, real, fake, rng)``; it is :func:`jgan.penalties.gradient_penalty`).

  Note that the penalised critic overshoots W1: when P is Q shifted by ``W1`` along a line, the critic
  ``D(x) = a <e, x>`` maximises ``a W1 - gp_weight (a - 1)^2`` at ``a = 1 + W1 / (2 gp_weight)``, so
  ``E_P[D] - E_Q[D] = W1 (1 + W1 / (2 gp_weight))`` (5% high for W1 = 1 at the default weight;
  measured in ``docs/divergence_estimates.md``).

  Args:
    gp_weight: lambda, 10 in the paper. >= 0.
    one_sided: penalise only gradient norms above 1 (Petzka et al. 2018).
    drift: epsilon_drift of Karras et al. 2018 (ProGAN; 0.001 there) keeping D(real) near 0. >= 0.

  Returns:
    An :class:`Objective` with ``d_penalty`` set.
  """
  if gp_weight < 0 or drift < 0:
    raise ValueError(f"wgan_gp needs gp_weight >= 0 and drift >= 0, got gp_weight={gp_weight}, drift={drift}")

  def loss(d_real, d_fake, obj_state):
    del obj_state
    d_real, d_fake = _as_float(d_real), _as_float(d_fake)
    d_loss = jnp.mean(d_fake) - jnp.mean(d_real) + drift * jnp.mean(jnp.square(d_real))
    return d_loss, -jnp.mean(d_fake)

  penalty = functools.partial(_penalties.gradient_penalty, weight=gp_weight, one_sided=one_sided)
  return Objective(loss=loss, d_penalty=penalty)


# --------------------------------------------------------------------------------------------------
# Least squares, hinge, relativistic
# --------------------------------------------------------------------------------------------------


def least_squares(a: float = 0.0, b: float = 1.0, c: float = 1.0) -> Objective:
  """LSGAN (Mao et al. 2017, eq. 2): least-squares losses with target codes a (fake), b (real), c (G).

      d_loss = 1/2 E_P[(D(x) - b)^2] + 1/2 E_Q[(D(x) - a)^2]
      g_loss = 1/2 E_Q[(D(x) - c)^2]

  D outputs unbounded scores ``[B]``; both losses are in ``[0, inf)``. The default 0-1 coding
  (``a=0, b=c=1``) is the paper's eq. 9 (used in its experiments); ``a=-1, b=1, c=0`` (its eq. 8,
  ``b - c = 1, b - a = 2``) makes G minimise the Pearson chi^2 divergence between P + Q and 2Q.
  """

  def loss(d_real, d_fake, obj_state):
    del obj_state
    d_real, d_fake = _as_float(d_real), _as_float(d_fake)
    d_loss = 0.5 * jnp.mean(jnp.square(d_real - b)) + 0.5 * jnp.mean(jnp.square(d_fake - a))
    return d_loss, 0.5 * jnp.mean(jnp.square(d_fake - c))

  return Objective(loss=loss)


def hinge() -> Objective:
  """Hinge loss (Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018 with spectral norm).

      d_loss = E_P[relu(1 - D(x))] + E_Q[relu(1 + D(x))]    in [0, inf)
      g_loss = -E_Q[D(x)]

  D outputs unbounded scores ``[B]``.
  """

  def loss(d_real, d_fake, obj_state):
    del obj_state
    d_real, d_fake = _as_float(d_real), _as_float(d_fake)
    d_loss = jnp.mean(jax.nn.relu(1.0 - d_real)) + jnp.mean(jax.nn.relu(1.0 + d_fake))
    return d_loss, -jnp.mean(d_fake)

  return Objective(loss=loss)


def relativistic(average: bool = True) -> Objective:
  """Relativistic standard GAN (Jolicoeur-Martineau 2018); RaSGAN by default.

  With raw logits ``C(x)`` and ``sigma`` the logistic sigmoid, average (RaSGAN, ``average=True``):

      Cr = C(x_r) - E_Q[C(x_f)],  Cf = C(x_f) - E_P[C(x_r)]
      d_loss = -E_P[log sigma(Cr)] - E_Q[log(1 - sigma(Cf))]
      g_loss = -E_Q[log sigma(Cf)] - E_P[log(1 - sigma(Cr))]

  paired (RSGAN, ``average=False``; real and fake batches of equal size, paired by index):

      d_loss = -E[log sigma(C(x_r) - C(x_f))],  g_loss = -E[log sigma(C(x_f) - C(x_r))]

  Both losses are in ``[0, inf)``, computed with ``log_sigmoid``. G's loss depends on D's outputs on
  real data, hence ``g_uses_real=True``. Gradients flow through the batch means, as in the paper.
  """

  def loss(d_real, d_fake, obj_state):
    del obj_state
    d_real, d_fake = _as_float(d_real), _as_float(d_fake)
    if average:
      c_real = d_real - jnp.mean(d_fake)
      c_fake = d_fake - jnp.mean(d_real)
      d_loss = -jnp.mean(jax.nn.log_sigmoid(c_real)) - jnp.mean(jax.nn.log_sigmoid(-c_fake))
      g_loss = -jnp.mean(jax.nn.log_sigmoid(c_fake)) - jnp.mean(jax.nn.log_sigmoid(-c_real))
    else:
      if d_real.shape != d_fake.shape:
        raise ValueError(
            f"relativistic(average=False) pairs real and fake: shapes {d_real.shape} != {d_fake.shape}")
      diff = d_real - d_fake
      d_loss = -jnp.mean(jax.nn.log_sigmoid(diff))
      g_loss = -jnp.mean(jax.nn.log_sigmoid(-diff))
    return d_loss, g_loss

  return Objective(loss=loss, g_uses_real=True)


# --------------------------------------------------------------------------------------------------
# Energy-based: EBGAN, BEGAN
# --------------------------------------------------------------------------------------------------


def pull_away_term(codes: Array) -> Array:
  """EBGAN's pull-away term (Zhao, Mathieu & LeCun 2016, Sec. 2.4).

      f_PT(S) = 1 / (N (N - 1)) sum_i sum_{j != i} (S_i . S_j / (||S_i|| ||S_j||))^2

  the mean squared cosine similarity between distinct codes of the batch; it pushes generated
  samples' encodings apart (against mode collapse).

  Args:
    codes: float ``[N, k]``, encoder embeddings of the generated batch.

  Returns:
    scalar float32 in ``[0, 1]`` (0 for ``N < 2``). A 1e-12 under the norms' square roots keeps the
    gradient finite for an all-zero code.
  """
  codes = _as_float(codes)
  n = codes.shape[0]
  if n < 2:
    return jnp.zeros((), codes.dtype)
  unit = codes / jnp.sqrt(jnp.sum(jnp.square(codes), axis=1, keepdims=True) + 1e-12)
  cos2 = jnp.square(unit @ unit.T)
  off_diag = cos2 * (1.0 - jnp.eye(n, dtype=cos2.dtype))
  return jnp.sum(off_diag) / (n * (n - 1))


def _energies(d_out) -> Array:
  """The ``[B]`` energies of an energy-based D's output: ``d_out["energy"]``, or ``d_out`` itself if it
  is a bare ``[B]`` array (e.g. the placeholder a G update passes as ``d_real`` when ``g_uses_real`` is
  False: ``g_loss`` never reads it)."""
  if isinstance(d_out, dict):
    if "energy" not in d_out:
      raise ValueError(
          f"energy-based objectives need D outputs {{'energy': [B], 'code': [B, k]}}, got keys {sorted(d_out)}")
    return _as_float(d_out["energy"])
  d_out = _as_float(d_out)
  if d_out.ndim != 1:
    raise ValueError(
        "energy-based objectives need D outputs {'energy': [B], 'code': [B, k]} or [B] energies, got shape "
        f"{d_out.shape}")
  return d_out


def ebgan(margin: float = 10.0, pt_weight: float = 0.1) -> Objective:
  """EBGAN (Zhao, Mathieu & LeCun 2016, eqs. 1-2 and Sec. 2.4), D an auto-encoder with energy D(x) >= 0.

      d_loss = E_P[D(x)] + E_Q[relu(margin - D(x))]
      g_loss = E_Q[D(x)] + pt_weight * f_PT(codes of the fake batch)   (:func:`pull_away_term`)

  ``d_real`` / ``d_fake`` are dicts ``{"energy": [B] >= 0, "code": [B, k]}``. ``margin`` must match
  the energy's scale: the paper's grid search chose m = 10 for MNIST (the default), 20 for CelebA, 80
  for LSUN, 40/80 for ImageNet 128/256, with the energy the per-image reconstruction MSE; its PT
  weight was 0.1. Losses are in ``[0, inf)``.
  """
  if margin < 0 or pt_weight < 0:
    raise ValueError(
        f"ebgan needs margin >= 0 and pt_weight >= 0, got margin={margin}, pt_weight={pt_weight}")

  def loss(d_real, d_fake, obj_state):
    del obj_state
    e_real, e_fake = _energies(d_real), _energies(d_fake)
    d_loss = jnp.mean(e_real) + jnp.mean(jax.nn.relu(margin - e_fake))
    g_loss = jnp.mean(e_fake)
    if pt_weight:
      g_loss = g_loss + pt_weight * pull_away_term(d_fake["code"])
    return d_loss, g_loss

  return Objective(loss=loss, d_output="energy")


def began(gamma: float = 0.5, lambda_k: float = 0.001, k_init: float = 0.0) -> Objective:
  """BEGAN (Berthelot, Schumm & Metz 2017, eq. 4), D an auto-encoder with loss L(v) >= 0.

  With ``L(x)`` = mean energy of the real batch and ``L(G(z))`` that of the fake batch:

      d_loss = L(x) - k_t L(G(z))
      g_loss = L(G(z))
      k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1)           (update_state)
      M_global = L(x) + |gamma L(x) - L(G(z))|                               (a convergence measure)

  ``k_t`` is a float32 scalar in [0, 1], the objective state (``init_state() = k_init``); it is a
  constant for the losses (``stop_gradient``). ``update_state`` returns the new ``k`` and metrics
  ``{"k_t": k_{t+1}, "m_global": M_global}``. ``gamma`` in [0, 1] is the diversity ratio
  ``E[L(G(z))] / E[L(x)]`` at equilibrium (0.5 in the paper's figures; 0.3-0.7 explored);
  ``lambda_k = 0.001`` and ``k_0 = 0`` are the paper's.
  """
  if not (0.0 <= k_init <= 1.0) or lambda_k < 0 or gamma < 0:
    raise ValueError(
        f"began needs k_init in [0, 1], lambda_k >= 0, gamma >= 0; got {k_init}, {lambda_k}, {gamma}")

  def loss(d_real, d_fake, obj_state):
    k = jax.lax.stop_gradient(_as_float(obj_state))
    l_real, l_fake = jnp.mean(_energies(d_real)), jnp.mean(_energies(d_fake))
    return l_real - k * l_fake, l_fake

  def init_state():
    return jnp.asarray(k_init, jnp.float32)

  def update_state(obj_state, d_real, d_fake):
    l_real = jax.lax.stop_gradient(jnp.mean(_energies(d_real)))
    l_fake = jax.lax.stop_gradient(jnp.mean(_energies(d_fake)))
    balance = gamma * l_real - l_fake
    k = jnp.clip(obj_state + lambda_k * balance, 0.0, 1.0).astype(jnp.float32)
    return k, {"k_t": k, "m_global": l_real + jnp.abs(balance)}

  return Objective(loss=loss, init_state=init_state, update_state=update_state, d_output="energy")


OBJECTIVES: dict[str, Callable[..., Objective]] = {
    "minimax": minimax,
    "non_saturating": non_saturating,
    # f-GAN, one per row of Nowozin et al.'s Table 2
    "total_variation": total_variation,
    "kl": kl,
    "reverse_kl": reverse_kl,
    "pearson": pearson,
    "neyman": neyman,
    "squared_hellinger": squared_hellinger,
    "jeffrey": jeffrey,
    "jensen_shannon": jensen_shannon,
    "gan": gan,
    "wasserstein": wasserstein,
    "wgan_gp": wgan_gp,
    "least_squares": least_squares,
    "hinge": hinge,
    "relativistic": relativistic,
    "ebgan": ebgan,
    "began": began,
}


def objective_params(name: str) -> dict[str, Any]:
  """The parameters of objective ``name`` with their default values (from the factory's signature)."""
  check_objective_name(name)
  sig = inspect.signature(OBJECTIVES[name])
  return {k: p.default for k, p in sig.parameters.items()}


def check_objective_name(name: str) -> None:
  """Raises ValueError naming ``name`` and the registered objectives if it is not one of them."""
  if name not in OBJECTIVES:
    raise ValueError(f"unknown objective {name!r}; valid choices: {', '.join(sorted(OBJECTIVES))}")


def make_objective(name: str, **params) -> Objective:
  """Builds objective ``name`` with ``params``; unknown parameter names raise a ValueError listing the valid ones."""
  valid = objective_params(name)
  unknown = sorted(set(params) - set(valid))
  if unknown:
    raise ValueError(
        f"objective {name!r} got unknown parameter(s) {unknown}; valid parameters: {sorted(valid) or 'none'}"
    )
  return OBJECTIVES[name](**params)
