"""Minimax / non-saturating GAN, Wasserstein (WGAN, WGAN-GP), least squares, hinge, relativistic, RpGAN."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jgan import penalties as _penalties
from jgan.objectives.base import Objective, as_float


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
    d_real, d_fake = as_float(d_real), as_float(d_fake)
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
    d_real, d_fake = as_float(d_real), as_float(d_fake)
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
    d_real, d_fake = as_float(d_real), as_float(d_fake)
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
    d_real, d_fake = as_float(d_real), as_float(d_fake)
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
    d_real, d_fake = as_float(d_real), as_float(d_fake)
    if average:
      c_real = d_real - jnp.mean(d_fake)
      c_fake = d_fake - jnp.mean(d_real)
      d_loss = -jnp.mean(jax.nn.log_sigmoid(c_real)) - jnp.mean(jax.nn.log_sigmoid(-c_fake))
      g_loss = -jnp.mean(jax.nn.log_sigmoid(c_fake)) - jnp.mean(jax.nn.log_sigmoid(-c_real))
    else:
      if d_real.shape != d_fake.shape:
        raise ValueError(f"relativistic(average=False) pairs real and fake: shapes {d_real.shape} != {d_fake.shape}")
      diff = d_real - d_fake
      d_loss = -jnp.mean(jax.nn.log_sigmoid(diff))
      g_loss = -jnp.mean(jax.nn.log_sigmoid(-diff))
    return d_loss, g_loss

  return Objective(loss=loss, g_uses_real=True)


def rpgan() -> Objective:
  """RpGAN, the relativistic pairing GAN of R3GAN (Huang et al. 2024, eq. 2; Jolicoeur-Martineau 2018's
  RSGAN) as its reference trains it (brownvc/R3GAN ``R3GAN/Trainer.py``), with G on a batch of its own.

  With raw logits ``D`` on real and fake batches of equal size, paired by index:

      d_loss = E[softplus(-(D(x_r) - D(x_f)))],  g_loss = E[softplus(-(D(x_f) - D(x_r)))]

  Both in ``[0, inf)``; the same values as ``relativistic(average=False)``. ``g_own_batch``: D and G draw
  separate real batches and noise, as the reference's training loop does (``D_img`` / ``G_img``,
  ``D_z`` / ``G_z``): the train step gives G's update one more real batch (``batch["x"]`` has
  ``n_critic + 1`` rows, the last G's), fresh ``z`` and, conditional, that batch's labels. The paper
  pairs it with R1 + R2 (``penalty.name = r1_r2``): RpGAN + R1 alone is not locally convergent.
  """

  def loss(d_real, d_fake, obj_state):
    del obj_state
    d_real, d_fake = as_float(d_real), as_float(d_fake)
    if d_real.shape != d_fake.shape:
      raise ValueError(f"rpgan pairs real and fake by index: shapes {d_real.shape} != {d_fake.shape}")
    return jnp.mean(jax.nn.softplus(d_fake - d_real)), jnp.mean(jax.nn.softplus(d_real - d_fake))

  return Objective(loss=loss, g_uses_real=True, g_own_batch=True)
