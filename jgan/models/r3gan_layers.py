"""R3GAN's layers (Huang et al. 2024, config E; brownvc/R3GAN ``R3GAN/Networks.py``, ``Resamplers.py``,
``FusedOperators.py``), each in the two formulations ``model.layers`` picks between.

* :class:`Conv`: a k x k 'SAME' convolution without bias, optionally grouped (``feature_group_count``):
  the 1x1 convolutions and the grouped 3x3 convolution of the residual blocks. ``nnx.Conv``'s
  variables (``kernel`` ``[k, k, cin / groups, cout]``).
* :class:`MapDepthwise`: D's last spatial layer, a depthwise convolution whose kernel covers the whole
  ``S x S`` map (``[S, S, 1, C]``, no bias): one value per channel.
* :class:`BiasedActivation`: ``leaky_relu(x + bias, 0.2)``; the biases of the network live here (the
  convolutions have none), starting at 0. The reference's fused op runs with gain 1.
* :func:`upsample2x` / :func:`downsample2x`: the interpolative resamplers, ``upfirdn2d`` with the
  low-pass filter ``[1, 3, 3, 1]`` (the reference's ``[1, 2, 1]`` convolved with ``[1, 1]``), per axis
  ``y[2m] = (x[m-1] + 3 x[m]) / 4``, ``y[2m+1] = (3 x[m] + x[m+1]) / 4`` up and
  ``y[n] = (x[2n-1] + 3 x[2n] + 3 x[2n+1] + x[2n+2]) / 8`` down, zero outside the map.

``fast`` (XLA:CPU, ``model.layers=fast``): the resamplers are shifted slices and sums, the 1x1
convolutions matmuls, the grouped 3x3 convolution one batched ``einsum`` over its nine shifted inputs
(:func:`grouped_conv`; one group: :func:`jgan.models.layers.conv_valid`) and the map-covering depthwise
convolution an ``einsum``, so derivatives of every order (R1/R2 penalties are
second derivatives) stay dots and forward convolutions (docs/design.md). ``native``: Flax's ``nnx.Conv``
with ``feature_group_count`` and ``lax.conv_general_dilated`` with the 4x4 filter (what ``upfirdn2d``
computes). Both create the same variables and compute the same function (tests/test_models_r3gan.py).

Initialisation (the reference's ``MSRInitializer``): weights ``N(0, (gain / sqrt(fan_in))^2)`` with
``fan_in = cin / groups * k * k`` -- :func:`msr_init`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jgan.models.layers import conv_valid
from jgan.models.same_conv import add_bias

LEAK = 0.2  # leaky ReLU slope
ACTIVATION_GAIN = math.sqrt(2.0 / (1.0 + LEAK**2))  # He gain of the leaky ReLU (reference: BiasedActivation.Gain)
_DN = ("NHWC", "HWIO", "NHWC")
# The [1, 3, 3, 1] low-pass filter per axis: up-sampling taps (gain 2 per axis) and down-sampling taps.
_UP_TAPS = np.array([1.0, 3.0, 3.0, 1.0], np.float32) / 4.0
_DOWN_TAPS = np.array([1.0, 3.0, 3.0, 1.0], np.float32) / 8.0


def msr_init(gain: float):
  """He ("MSR") initialiser: ``N(0, gain^2 / fan_in)`` over a kernel's leading axes and its input axis
  (``[k, k, cin, cout]`` -> ``fan_in = k * k * cin``; ``[in, out]`` -> ``in``); ``gain = 0``: zeros."""
  if gain == 0:
    return nnx.initializers.zeros
  return nnx.initializers.variance_scaling(gain**2, "fan_in", "normal")


def _up_axis(x: jax.Array, axis: int) -> jax.Array:
  """Per-axis x2 up-sampling with ``[1, 3, 3, 1] / 4``: even outputs ``x[m-1]/4 + 3x[m]/4``, odd ones
  ``3x[m]/4 + x[m+1]/4`` (zero outside), interleaved."""
  n = x.shape[axis]
  pad = [(0, 0)] * x.ndim
  pad[axis] = (1, 1)
  xp = jnp.pad(x, pad)
  prev, nxt = jax.lax.slice_in_dim(xp, 0, n, axis=axis), jax.lax.slice_in_dim(xp, 2, n + 2, axis=axis)
  even, odd = 0.25 * prev + 0.75 * x, 0.75 * x + 0.25 * nxt
  y = jnp.stack([even, odd], axis=axis + 1)
  return y.reshape(x.shape[:axis] + (2 * n,) + x.shape[axis + 1 :])


def _down_axis(x: jax.Array, axis: int) -> jax.Array:
  """Per-axis /2 down-sampling: ``y[n] = (x[2n-1] + 3 x[2n] + 3 x[2n+1] + x[2n+2]) / 8`` (zero outside)."""
  n = x.shape[axis]
  pad = [(0, 0)] * x.ndim
  pad[axis] = (1, 1)
  xp = jnp.pad(x, pad)
  half = n // 2
  taps = [jax.lax.slice_in_dim(xp, t, t + 2 * half - 1, stride=2, axis=axis) for t in range(4)]
  return (taps[0] + 3.0 * taps[1] + 3.0 * taps[2] + taps[3]) * 0.125


def _filter2d(taps: np.ndarray, c: int, dtype) -> jax.Array:
  """The separable 4x4 filter ``outer(taps, taps)`` as a depthwise HWIO kernel ``[4, 4, 1, c]``."""
  f = np.outer(taps, taps).astype(np.float32)
  return jnp.broadcast_to(jnp.asarray(f, dtype)[:, :, None, None], (4, 4, 1, c))


def upsample2x(x: jax.Array, *, fast: bool = True) -> jax.Array:
  """``[B, H, W, C]`` -> ``[B, 2H, 2W, C]``: the reference's ``upfirdn2d.upsample2d`` with ``[1, 3, 3, 1]``.

  ``fast``: shifted slices per axis; otherwise a depthwise transposed convolution (zero insertion, pad
  (2, 2) around the dilated map, the 4x4 filter times 4). Equal up to float rounding.
  """
  if fast:
    return _up_axis(_up_axis(x, 1), 2)
  k = _filter2d(_UP_TAPS, x.shape[-1], x.dtype)
  return jax.lax.conv_general_dilated(
    x, k, (1, 1), ((2, 2), (2, 2)), lhs_dilation=(2, 2), dimension_numbers=_DN, feature_group_count=x.shape[-1]
  )


def downsample2x(x: jax.Array, *, fast: bool = True) -> jax.Array:
  """``[B, H, W, C]`` (H, W even) -> ``[B, H/2, W/2, C]``: ``upfirdn2d.downsample2d`` with ``[1, 3, 3, 1]``.

  ``fast``: strided slices per axis; otherwise a depthwise stride-2 convolution, padding 1. Equal up to
  float rounding.
  """
  if x.shape[1] % 2 or x.shape[2] % 2:
    raise ValueError(f"downsample2x needs even spatial sizes, got {x.shape[1]}x{x.shape[2]}")
  if fast:
    return _down_axis(_down_axis(x, 1), 2)
  k = _filter2d(_DOWN_TAPS, x.shape[-1], x.dtype)
  return jax.lax.conv_general_dilated(
    x, k, (2, 2), ((1, 1), (1, 1)), dimension_numbers=_DN, feature_group_count=x.shape[-1]
  )


def grouped_conv(x: jax.Array, k: jax.Array, groups: int) -> jax.Array:
  """Stride-1 'SAME' grouped correlation on the fast path.

  Args:
    x: ``[B, H, W, groups * c]``; k: ``[kh, kw, c, groups * o]`` (``nnx.Conv`` layout: output block ``g``
      reads input block ``g``), odd kh, kw; same dtype.

  Returns:
    ``[B, H, W, groups * o]``: a 1x1 kernel is a (block) matmul; a k x k one with one group a
    :func:`conv_valid` on the zero-padded map; with several groups the ``kh * kw`` shifted copies of the
    padded map are stacked and contracted with the kernel in one batched ``einsum`` over the groups
    (``bhwtgc,tcgo->bhwgo``). Its derivatives of every order are einsums, pads and slices, and the program
    stays small: one convolution per group (the reference CIFAR-10 network has 96 per layer) took ~10 min
    to compile for one R3GAN step with R1 + R2 on the loaded 2-core CPU, this ~35 s.
  """
  kh, kw, c, go = k.shape
  o = go // groups
  if (kh, kw) == (1, 1):
    if groups == 1:
      return (x.reshape(-1, c) @ k.reshape(c, go)).reshape(*x.shape[:-1], go)
    xs = x.reshape(-1, groups, c)
    return jnp.einsum("ngc,cgo->ngo", xs, k.reshape(c, groups, o)).reshape(*x.shape[:-1], go)
  xp = jnp.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
  if groups == 1:
    return conv_valid(xp, k)
  b, h, w = x.shape[:3]
  taps = jnp.stack([xp[:, i : i + h, j : j + w] for i in range(kh) for j in range(kw)], axis=3)
  taps = taps.reshape(b, h, w, kh * kw, groups, c)
  y = jnp.einsum("bhwtgc,tcgo->bhwgo", taps, k.reshape(kh * kw, c, groups, o))
  return y.reshape(b, h, w, go)


class Conv(nnx.Conv):
  """``nnx.Conv(cin, cout, (k, k), padding='SAME', feature_group_count=groups, use_bias=False)``.

  ``fast``: computed by :func:`grouped_conv`; otherwise by ``nnx.Conv``. Input ``[B, H, W, cin]`` ->
  ``[B, H, W, cout]`` in ``dtype`` (None: the input's promoted with the kernel's).
  """

  def __init__(
    self, cin: int, cout: int, k: int = 1, *, groups: int = 1, fast: bool, kernel_init, dtype=None, rngs: nnx.Rngs
  ):
    if cin % groups or cout % groups:
      raise ValueError(f"a grouped convolution needs channels divisible by its {groups} groups, got {cin} -> {cout}")
    super().__init__(
      cin,
      cout,
      (k, k),
      padding="SAME",
      feature_group_count=groups,
      use_bias=False,
      kernel_init=kernel_init,
      dtype=dtype,
      rngs=rngs,
    )
    self.fast = fast

  def __call__(self, x: jax.Array) -> jax.Array:  # type: ignore[override]  # takes the input only
    if not self.fast:
      return super().__call__(x)
    kernel = self.kernel[...]
    dtype = self.dtype or jnp.result_type(x, kernel)
    return grouped_conv(x.astype(dtype), kernel.astype(dtype), self.feature_group_count)


class MapDepthwise(nnx.Conv):
  """Depthwise ``S x S`` 'VALID' convolution on an ``S x S`` map, no bias: ``[B, S, S, C]`` -> ``[B, C]``,
  ``y[b, c] = sum_{h, w} x[b, h, w, c] kernel[h, w, 0, c]`` (the reference's ``DiscriminativeBasis.Basis``).

  ``fast``: one ``einsum``; otherwise ``nnx.Conv`` with ``feature_group_count = C``. Variables:
  ``kernel`` ``[S, S, 1, C]``, He-initialised with ``fan_in = S * S``.
  """

  def __init__(self, c: int, size: int, *, fast: bool, dtype=None, rngs: nnx.Rngs):
    init = msr_init(1.0)
    super().__init__(
      c,
      c,
      (size, size),
      padding="VALID",
      feature_group_count=c,
      use_bias=False,
      kernel_init=init,
      dtype=dtype,
      rngs=rngs,
    )
    self.fast = fast

  def __call__(self, x: jax.Array) -> jax.Array:  # type: ignore[override]  # takes the input only
    kernel = self.kernel[...]
    if x.shape[1:3] != kernel.shape[:2]:
      raise ValueError(f"MapDepthwise expects a {kernel.shape[0]}x{kernel.shape[1]} map, got {x.shape}")
    if not self.fast:
      return super().__call__(x).reshape(x.shape[0], -1)
    dtype = self.dtype or jnp.result_type(x, kernel)
    return jnp.einsum("bhwc,hwc->bc", x.astype(dtype), kernel[:, :, 0, :].astype(dtype))


class BiasedActivation(nnx.Module):
  """``leaky_relu(x + bias, 0.2)`` over the last axis of ``[..., C]``; ``bias`` ``[C]`` starts at 0.

  ``fast``: the bias gradient as a dot (:func:`jgan.models.same_conv.add_bias`)."""

  def __init__(self, c: int, *, fast: bool, param_dtype=jnp.float32):
    self.bias = nnx.Param(jnp.zeros((c,), param_dtype))
    self.fast = fast

  def __call__(self, x: jax.Array) -> jax.Array:
    b = self.bias[...].astype(x.dtype)
    y = add_bias(x, b) if self.fast else x + b.reshape((1,) * (x.ndim - 1) + (-1,))
    return jax.nn.leaky_relu(y, LEAK)
