"""The ResNet GANs' convolutions: stride-1 'SAME' k x k convolutions, optionally after nearest x2
up-sampling or before 2x2 average pooling, on XLA:CPU's fast path (:class:`SameConv`), and the same
layers written with Flax's own convolution (:class:`NativeSameConv`).

Nearest up-sampling + 3x3 conv is one 2x2 convolution to 4x the channels at the input resolution (16
instead of 36 taps per 2x2 outputs) and 3x3 conv + 2x2 average pooling one stride-2 4x4 convolution
(:func:`jgan.models.layers.downconv2x`); every convolution is :func:`jgan.models.layers.conv_valid`, so
derivatives of any order stay forward convolutions (docs/design.md). Conv biases' gradients are dots
(:func:`add_bias`): XLA:CPU lowers the reduction over the leading NHWC axes to a slow reduce-window.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jgan.models.layers import colsum, conv_valid, downconv2x

# --- Stride-1 'SAME' convolutions with nearest up-sampling or 2x2 average pooling (ResNet GANs) ---
RESAMPLE = (None, "up", "down")
# Per axis, nearest x2 up-sampling then a 3-tap 'SAME' correlation: output phase p (even/odd rows) is a
# 2-tap correlation of x padded by one, at offset p, with the taps summed as _UP3[p, t, :] selects.
# numpy, not jnp: a module-level jnp array would initialise JAX's backends at import, which
# jax.distributed.initialize (multihost.initialize) must precede.
_UP3 = np.array([[[1, 0, 0], [0, 1, 1]], [[1, 1, 0], [0, 0, 1]]], np.float32)
# Per axis, a 3-tap 'SAME' correlation then 2x2 average pooling is a 4-tap stride-2 correlation of x
# padded by one whose taps are v_t = (w_t + w_{t-1}) / 2 (see :func:`conv_pool2x`).
_POOL3 = 0.5 * np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]], np.float32)


def nearest_up2x(x: jax.Array) -> jax.Array:
  """[B, H, W, C] -> [B, 2H, 2W, C]: nearest-neighbour up-sampling (each pixel repeated 2x2)."""
  b, h, w, c = x.shape
  return jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c)).reshape(b, 2 * h, 2 * w, c)


def avg_pool2x(x: jax.Array) -> jax.Array:
  """[B, H, W, C] (H, W even) -> [B, H/2, W/2, C]: 2x2 average pooling with stride 2."""
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def same(x: jax.Array, k: jax.Array) -> jax.Array:
  """Stride-1 'SAME' correlation (odd kernel) as zero padding plus :func:`conv_valid`; 1x1 as a matmul."""
  kh, kw, cin, cout = k.shape
  if (kh, kw) == (1, 1):
    return (x.reshape(-1, cin) @ k.reshape(cin, cout)).reshape(*x.shape[:-1], cout)
  return conv_valid(jnp.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0))), k)


def up_conv2x(x: jax.Array, w: jax.Array) -> jax.Array:
  """``convsame(nearest_up2x(x), w)`` for a 3x3 or 1x1 kernel, computed at the input resolution.

  Args:
    x: [B, H, W, Cin] float; w: [k, k, Cin, Cout] (HWIO, k = 1 or 3), same dtype.

  Returns:
    [B, 2H, 2W, Cout], equal up to float rounding to the stride-1 'SAME' correlation of the up-sampled
    map. A 1x1 kernel commutes with the up-sampling (4x less work). For 3x3 the four output phases
    (even/odd rows x columns) are 2x2 correlations of ``x`` padded by one (the per-axis taps are the
    sums in ``_UP3``), evaluated as one 2x2 'VALID' convolution to ``4 Cout`` channels and interleaved
    (depth-to-space): 16 taps per output pixel quadruple instead of 36, and no 4x larger input map.
  """
  if w.shape[:2] == (1, 1):
    return nearest_up2x(same(x, w))
  if w.shape[:2] != (3, 3):
    raise ValueError(f"up_conv2x supports 1x1 and 3x3 kernels, got {w.shape[:2]}")
  b, h, wd, cin = x.shape
  cout = w.shape[-1]
  m = jnp.asarray(_UP3, w.dtype)
  # k[ty, tx, c, (py, px, o)] = sum_{r, s} M[py, ty, r] M[px, tx, s] w[r, s, c, o]
  k = jnp.einsum("ytr,xus,rsco->tucyxo", m, m, w).reshape(2, 2, cin, 4 * cout)
  y = conv_valid(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), k).reshape(b, h + 1, wd + 1, 2, 2, cout)
  rows = [jnp.stack([y[:, py : py + h, px : px + wd, py, px] for px in (0, 1)], axis=3) for py in (0, 1)]
  return jnp.stack(rows, axis=2).reshape(b, 2 * h, 2 * wd, cout)


def conv_pool2x(x: jax.Array, w: jax.Array) -> jax.Array:
  """``avg_pool2x(convsame(x, w))`` for a 3x3 or 1x1 kernel, as one stride-2 convolution.

  Args:
    x: [B, H, W, Cin] float, H and W even; w: [k, k, Cin, Cout] (HWIO, k = 1 or 3), same dtype.

  Returns:
    [B, H/2, W/2, Cout], equal up to float rounding. A 1x1 kernel commutes with the pooling (pool
    first: 4x less work). For 3x3, per axis ``out[n] = (y[2n] + y[2n+1]) / 2`` with ``y`` the 'SAME'
    correlation is ``sum_t v_t xp[2n + t]`` (``xp`` = ``x`` padded by one, ``v_t = (w_t + w_{t-1}) / 2``):
    a 4x4 stride-2 convolution with padding one, computed by :func:`downconv2x` (16 taps per output
    pixel instead of 36 plus the pooling).
  """
  if w.shape[:2] == (1, 1):
    return same(avg_pool2x(x), w)
  if w.shape[:2] != (3, 3):
    raise ValueError(f"conv_pool2x supports 1x1 and 3x3 kernels, got {w.shape[:2]}")
  p = jnp.asarray(_POOL3, w.dtype)
  return downconv2x(x, jnp.einsum("ar,bs,rsco->abco", p, p, w))


@jax.custom_vjp
def add_bias(y: jax.Array, b: jax.Array) -> jax.Array:
  """``y + b`` for ``y`` [..., C] and ``b`` [C] (same dtype), whose gradient for ``b`` (the sum of the
  cotangent over every axis but the last) is a matrix-vector product: XLA:CPU lowers that reduction over
  the leading axes of an NHWC map to a slow reduce-window loop (see the module docstring's BatchNorm)."""
  return y + b.reshape((1,) * (y.ndim - 1) + (-1,))


def _add_bias_fwd(y, b):
  return add_bias(y, b), None


def _add_bias_bwd(_, dy):
  return dy, colsum(dy.reshape(-1, dy.shape[-1]).astype(jnp.float32)).astype(dy.dtype)


add_bias.defvjp(_add_bias_fwd, _add_bias_bwd)


def _check_conv_args(kernel_size: int, resample) -> None:
  if resample not in RESAMPLE:
    raise ValueError(f"unknown resample={resample!r}; valid choices: {', '.join(map(repr, RESAMPLE))}")
  if kernel_size % 2 == 0 or (resample is not None and kernel_size not in (1, 3)):
    raise ValueError(f"kernel_size={kernel_size} is not supported (odd; 1 or 3 with resample={resample!r})")


class _SameConvBase(nnx.Conv):
  """``nnx.Conv(cin, cout, (k, k), padding='SAME')`` plus a ``resample`` mode (None, "up", "down")."""

  def __init__(
    self,
    cin: int,
    cout: int,
    kernel_size: int,
    *,
    resample: str | None = None,
    use_bias: bool = True,
    kernel_init=None,
    dtype=None,
    param_dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    _check_conv_args(kernel_size, resample)
    init = kernel_init or nnx.initializers.lecun_normal()
    k = (kernel_size, kernel_size)
    super().__init__(cin, cout, k, use_bias=use_bias, kernel_init=init, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.resample = resample


class SameConv(_SameConvBase):
  """``nnx.Conv(cin, cout, (k, k), padding='SAME')`` with optional resampling, on XLA:CPU's fast path.

  ``resample``: None (the convolution), ``"up"`` (nearest x2 up-sampling first: :func:`up_conv2x`) or
  ``"down"`` (2x2 average pooling after: :func:`conv_pool2x`). Every convolution is :func:`conv_valid`
  (1x1 kernels are matmuls), so its derivatives stay forward convolutions. Same variables as
  ``nnx.Conv`` (``kernel`` [k, k, cin, cout], optional ``bias`` [cout]; a subclass, so spectral
  normalisation finds it). Input ``[B, H, W, cin]`` -> ``[B, H', W', cout]`` in ``dtype`` (default:
  promoted with the parameters'), ``H' = 2H``, ``H / 2`` or ``H``.
  """

  def __call__(self, x: jax.Array) -> jax.Array:  # type: ignore[override]  # takes the input only
    fn = {None: same, "up": up_conv2x, "down": conv_pool2x}[self.resample]
    kernel = self.kernel[...]
    dtype = self.dtype or jnp.result_type(x, kernel)
    y = fn(x.astype(dtype), kernel.astype(dtype))
    return y if self.bias is None else add_bias(y, self.bias[...].astype(dtype))


class NativeSameConv(_SameConvBase):
  """:class:`SameConv` written with Flax's own layer: ``nnx.Conv`` (padding 'SAME') on the up-sampled
  map (``resample="up"``), or pooled after (``"down"``). Same variables and arguments."""

  def __call__(self, x: jax.Array) -> jax.Array:  # type: ignore[override]  # takes the input only
    y = super().__call__(nearest_up2x(x) if self.resample == "up" else x)
    return avg_pool2x(y) if self.resample == "down" else y
