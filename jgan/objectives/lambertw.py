"""Lambert W and Wright omega in JAX (jit-able, differentiable): Jeffrey's conjugate needs them."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jgan.objectives.base import Array, as_float

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
  x = as_float(x)
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
  z = as_float(z)
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
