"""LeCam regularisation (Tseng, Jiang, Liu, Yang, Yang, CVPR 2021) of D, on top of any logit objective.

    R_LC = E_real[(D(x) - alpha_F)^2] + E_fake[(D(G(z)) - alpha_R)^2]

``alpha_R`` / ``alpha_F`` are exponential moving averages (decay 0.99 in the paper) of D's mean output on
real and generated batches; ``lambda * R_LC`` is added to D's loss (G's loss is unchanged). It pulls D's
outputs on real data towards its recent outputs on fakes and vice versa, bounding how far apart they
drift: the paper shows it minimises a LeCam divergence and helps most with limited data (BigGAN + LeCam
is among StudioGAN's best CIFAR-10 rows).

The anchors are the objective's state (:class:`LeCamState`, next to the wrapped objective's own state),
so a checkpoint holds them and a resumed run continues bit for bit. As in the authors' code
(google/lecam-gan, BigGAN-PyTorch ``train_fns.py``), each D update first moves the anchors with the
batch's means and then regularises against the moved anchors; the anchors start at 0. The authors' code
also clips the terms (``relu(D(x) - alpha_F)^2`` and ``relu(alpha_R - D(G(z)))^2``): the same values while
D scores real data above the fake anchor and fakes below the real one, which is the usual state; here
the paper's form (eq. 3). Config: ``lecam.weight`` (lambda, 0 = off) and ``lecam.decay``, applied to whichever
objective the run has (:func:`jgan.components.build`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jgan.objectives.base import Array, Objective, as_float


class LeCamState(NamedTuple):
  """The wrapped objective's state and the anchors: EMAs of D's mean raw output on real and fake batches."""

  inner: Any
  alpha_real: Array  # float32 scalar
  alpha_fake: Array


def moved_anchors(state: LeCamState, d_real, d_fake, decay: float) -> tuple[Array, Array]:
  """``(alpha_R, alpha_F)`` after one D update that saw ``d_real`` / ``d_fake`` ``[B]``:
  ``decay * alpha + (1 - decay) * mean(D)``, without gradient."""
  m_real = jax.lax.stop_gradient(jnp.mean(as_float(d_real)))
  m_fake = jax.lax.stop_gradient(jnp.mean(as_float(d_fake)))
  return decay * state.alpha_real + (1.0 - decay) * m_real, decay * state.alpha_fake + (1.0 - decay) * m_fake


def regulariser(d_real, d_fake, alpha_real, alpha_fake) -> Array:
  """``R_LC = mean((d_real - alpha_fake)^2) + mean((d_fake - alpha_real)^2)``: float32 scalar >= 0."""
  d_real, d_fake = as_float(d_real), as_float(d_fake)
  return jnp.mean(jnp.square(d_real - alpha_fake)) + jnp.mean(jnp.square(d_fake - alpha_real))


def with_lecam(objective: Objective, weight: float, decay: float = 0.99) -> Objective:
  """``objective`` with ``weight * R_LC`` added to D's loss and the anchors in its state (module docstring).

  Raises ValueError for an energy objective (EBGAN, BEGAN: no raw scores), ``weight < 0`` or ``decay``
  outside ``[0, 1)``.
  """
  if objective.d_output != "logit":
    raise ValueError("lecam.weight regularises raw D scores; energy objectives (ebgan, began) have none")
  if not weight >= 0:
    raise ValueError(f"lecam.weight={weight!r} must be >= 0 (0 = off)")
  if not 0.0 <= decay < 1.0:
    raise ValueError(f"lecam.decay={decay!r} must be in [0, 1)")

  def init_state() -> LeCamState:
    return LeCamState(objective.init_state(), jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))

  def loss(d_real, d_fake, state: LeCamState):
    d_loss, g_loss = objective.loss(d_real, d_fake, state.inner)
    alpha_real, alpha_fake = moved_anchors(state, d_real, d_fake, decay)
    return d_loss + weight * regulariser(d_real, d_fake, alpha_real, alpha_fake), g_loss

  def update_state(state: LeCamState, d_real, d_fake):
    inner, metrics = objective.update_state(state.inner, d_real, d_fake)
    alpha_real, alpha_fake = moved_anchors(state, d_real, d_fake, decay)
    reg = regulariser(d_real, d_fake, alpha_real, alpha_fake)
    out = {**metrics, "lecam": reg, "lecam_alpha_real": alpha_real, "lecam_alpha_fake": alpha_fake}
    return LeCamState(inner, alpha_real, alpha_fake), out

  return objective._replace(loss=loss, init_state=init_state, update_state=update_state)
