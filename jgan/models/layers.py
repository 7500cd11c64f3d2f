"""Layers shared by the models, written for fast gradients on every backend.

``UpConv`` computes exactly what a stride-2, 4x4, 'SAME' transposed convolution computes (DCGAN's
generator layer, ``nnx.ConvTranspose(..., kernel_size=(4, 4), strides=(2, 2))``) with the same kernel
layout, but as *one stride-1 convolution followed by depth-to-space* (the sub-pixel / phase
decomposition). Why: on XLA:CPU the weight gradient of a stride-2 ``conv_transpose`` takes seconds per
DCGAN layer (see docs/design.md) while stride-1 convolutions take tens of milliseconds.

Derivation (1-D, per axis). ``lax.conv_transpose(x, w, strides=2, padding='SAME')`` with a 4-tap kernel
dilates ``x`` by 2 and pads it by 2 on each side, then correlates with ``w``:
``out[2m] = x[m-1] w[0] + x[m] w[2]`` and ``out[2m+1] = x[m] w[1] + x[m+1] w[3]``.
Padding ``x`` by one on each side, both phases are 3-tap stride-1 correlations with kernels
``[w0, w2, 0]`` (even) and ``[0, w1, w3]`` (odd). In 2-D the four phases (even/odd rows x columns)
become four blocks of output channels of one 3x3 convolution, interleaved by depth-to-space.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def _phase_kernel(w: jax.Array) -> jax.Array:
  """[4, 4, Cin, Cout] transposed-conv kernel -> [3, 3, Cin, 4*Cout] stride-1 kernel (phase-major)."""
  zeros = jnp.zeros_like(w[:1])
  # Per axis: even phase taps (w0, w2, 0), odd phase taps (0, w1, w3).
  even = jnp.concatenate([w[0:1], w[2:3], zeros], axis=0)
  odd = jnp.concatenate([zeros, w[1:2], w[3:4]], axis=0)
  rows = [even, odd]  # each [3, 4, Cin, Cout]
  blocks = []
  for r in rows:
    zc = jnp.zeros_like(r[:, :1])
    ce = jnp.concatenate([r[:, 0:1], r[:, 2:3], zc], axis=1)
    co = jnp.concatenate([zc, r[:, 1:2], r[:, 3:4]], axis=1)
    blocks += [ce, co]  # order: (row even, col even), (even, odd), (odd, even), (odd, odd)
  return jnp.concatenate(blocks, axis=-1)


def upconv2x(x: jax.Array, w: jax.Array) -> jax.Array:
  """Stride-2 4x4 'SAME' transposed convolution via the phase decomposition.

  Args:
    x: [B, H, W, Cin] float.
    w: [4, 4, Cin, Cout] kernel in ``nnx.ConvTranspose`` layout (not flipped, ``transpose_kernel=False``).

  Returns:
    [B, 2H, 2W, Cout], equal to ``lax.conv_transpose(x, w, (2, 2), 'SAME')`` up to float rounding.
  """
  b, h, wd, _ = x.shape
  cout = w.shape[-1]
  k = _phase_kernel(w)
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  y = jax.lax.conv_general_dilated(
      xp, k.astype(x.dtype), (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
  )  # [B, H, W, 4*Cout], blocks ordered (py, px)
  y = y.reshape(b, h, wd, 2, 2, cout)
  y = y.transpose(0, 1, 3, 2, 4, 5)  # [B, H, py, W, px, C]
  return y.reshape(b, 2 * h, 2 * wd, cout)


class UpConv(nnx.Module):
  """Drop-in for ``nnx.ConvTranspose(cin, cout, (4, 4), strides=(2, 2), padding='SAME')``.

  Same parameter name (``kernel``), shape ``[4, 4, cin, cout]`` and output; gradients are fast on
  XLA:CPU. Input ``[B, H, W, cin]`` -> output ``[B, 2H, 2W, cout]``.
  """

  def __init__(self, cin: int, cout: int, *, use_bias: bool = False, kernel_init=None, rngs: nnx.Rngs):
    init = kernel_init or nnx.initializers.normal(0.02)
    self.kernel = nnx.Param(init(rngs.params(), (4, 4, cin, cout), jnp.float32))
    self.bias = nnx.Param(jnp.zeros((cout,), jnp.float32)) if use_bias else None

  def __call__(self, x: jax.Array) -> jax.Array:
    y = upconv2x(x, self.kernel[...].astype(x.dtype))
    if self.bias is not None:
      y = y + self.bias[...].astype(y.dtype).reshape(1, 1, 1, -1)
    return y
