"""Spectral normalisation (Miyato et al. 2018) that keeps the optimiser on the raw weight.

``SpectralNorm(layer)`` divides the layer's ``kernel`` W by an estimate of its largest singular value
sigma(W), obtained by power iteration with a persistent vector ``u`` (an ``nnx.BatchStat``, so it travels
with the other statistics through the functional train step and into checkpoints). The paper's
semantics: the forward pass uses W / sigma(W), gradients flow through that quotient to the *raw* W,
and the optimiser updates the raw W.

Why not ``nnx.SpectralNorm``: it writes W / sigma into the kernel in place (google/flax#5576), so a
second call in the same step (D on real, then on fake) would normalise an already normalised kernel.
Here the normalised kernel is swapped in for the call and the raw one put back.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx


def _l2_normalize(x: jax.Array, eps: float) -> jax.Array:
  return x * jax.lax.rsqrt(jnp.sum(x * x) + eps)


def power_iteration(w: jax.Array, u: jax.Array, n_steps: int = 1, eps: float = 1e-12):
  """Estimates the top singular value of a kernel.

  Args:
    w: kernel of any rank >= 2; treated as the matrix ``[prod(shape[:-1]), shape[-1]]``.
    u: float32 ``[1, shape[-1]]``, the previous right singular vector estimate.
    n_steps: power iterations (1 per training step, as in the paper, suffices once ``u`` has converged).

  Returns:
    ``(sigma, u)``: sigma a float32 scalar (> 0) with gradients flowing to ``w`` only, and the new ``u``.
  """
  mat = w.reshape(-1, w.shape[-1])
  v = u @ mat.T  # overwritten by the first iteration (n_steps >= 1)
  for _ in range(n_steps):
    v = _l2_normalize(u @ mat.T, eps)
    u = _l2_normalize(v @ mat, eps)
  u, v = jax.lax.stop_gradient(u), jax.lax.stop_gradient(v)
  return (v @ mat @ u.T)[0, 0], u


class SpectralNorm(nnx.Module):
  """Wraps a layer with a ``kernel`` (nnx.Conv, nnx.Linear, ...) so it uses ``kernel / sigma(kernel)``.

  ``param`` names the weight to normalise (``"kernel"``; ``"embedding"`` for an ``nnx.Embed``, whose
  ``[num_classes, features]`` table is the matrix, as the projection discriminator's ``SNEmbedID``).
  In train mode each call runs ``n_steps`` power iterations and stores ``u``; in eval mode
  (``.eval()``, which sets ``use_running_average``) ``u`` is left unchanged.
  """

  def __init__(self, layer: Any, *, n_steps: int = 1, eps: float = 1e-12, param: str = "kernel", rngs: nnx.Rngs):
    self.layer = layer
    self.n_steps, self.eps, self.param = n_steps, eps, param
    out = getattr(layer, param).shape[-1]
    self.u = nnx.BatchStat(_l2_normalize(jax.random.normal(rngs.params(), (1, out), jnp.float32), eps))
    self.use_running_average = False

  def __call__(self, x: jax.Array) -> jax.Array:
    var = getattr(self.layer, self.param)
    w = var[...]
    sigma, u = power_iteration(w, self.u[...], self.n_steps, self.eps)
    if not self.use_running_average:
      self.u[...] = u
    var[...] = w / sigma
    y = self.layer(x)
    var[...] = w  # the raw weight stays the parameter
    return y


def wrap_layers(module: nnx.Module, rngs: nnx.Rngs, n_steps: int = 1) -> nnx.Module:
  """Wraps every ``nnx.Conv`` / ``nnx.Linear`` of ``module`` in SpectralNorm, at any depth.

  Attributes, ``nnx.List`` entries and the attributes of nested modules (residual blocks, a projection
  discriminator's base) are visited depth first in attribute order; layers already inside a
  ``SpectralNorm`` are left as they are (never normalised twice). Mutates and returns ``module``.
  Used for discriminators: ``model.d_spectral_norm = True``.
  """

  def wrap(m):
    if isinstance(m, (nnx.Conv, nnx.Linear)):
      return SpectralNorm(m, n_steps=n_steps, rngs=rngs)
    if isinstance(m, nnx.List):  # a List is a Module too; rebuild it with its entries wrapped
      return nnx.List([wrap(e) for e in m])
    if isinstance(m, nnx.Module) and not isinstance(m, SpectralNorm):
      wrap_layers(m, rngs, n_steps)
    return m

  for name, value in list(vars(module).items()):
    if isinstance(value, nnx.Module):
      setattr(module, name, wrap(value))
  return module
