"""Energy-based objectives with an auto-encoder D: EBGAN and BEGAN."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jgan.objectives.base import Array, Objective, as_float


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
  codes = as_float(codes)
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
        f"energy-based objectives need D outputs {{'energy': [B], 'code': [B, k]}}, got keys {sorted(d_out)}"
      )
    return as_float(d_out["energy"])
  d_out = as_float(d_out)
  if d_out.ndim != 1:
    raise ValueError(
      "energy-based objectives need D outputs {'energy': [B], 'code': [B, k]} or [B] energies, got shape "
      f"{d_out.shape}"
    )
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
    raise ValueError(f"ebgan needs margin >= 0 and pt_weight >= 0, got margin={margin}, pt_weight={pt_weight}")

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
    raise ValueError(f"began needs k_init in [0, 1], lambda_k >= 0, gamma >= 0; got {k_init}, {lambda_k}, {gamma}")

  def loss(d_real, d_fake, obj_state):
    k = jax.lax.stop_gradient(as_float(obj_state))
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
