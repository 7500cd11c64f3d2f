"""DCGAN's layers written for fast training steps: stride-2 convolutions and BatchNorm.

Both layers keep the parameters of the Flax layers they replace (name ``kernel``, shape
``[4, 4, Cin, Cout]``, same layout) and compute the same outputs; only the order of the arithmetic
differs. Why: on XLA:CPU the gradients of strided convolutions are slow (the weight gradient of a
stride-2 ``conv_transpose`` takes seconds per DCGAN layer, see docs/design.md and docs/performance.md)
while stride-1 convolutions with a 2x2 kernel run at the machine's convolution speed for the forward
pass and both gradients. Stride-1 convolutions are the common fast path on GPU/TPU as well.

``UpConv`` (G's up-sampling, ``nnx.ConvTranspose(cin, cout, (4, 4), strides=(2, 2), padding='SAME')``).
Per axis, ``lax.conv_transpose(x, w, strides=2, padding='SAME')`` with a 4-tap kernel is
``out[2m] = x[m-1] w0 + x[m] w2`` and ``out[2m+1] = x[m] w1 + x[m+1] w3``. With ``xp`` = ``x`` padded by
one on each side (``xp[i] = x[i-1]``), both output phases are 2-tap correlations over ``xp``:
``out[2m] = xp[m] w0 + xp[m+1] w2`` (taps ``w[0::2]``, positions ``0..H-1``) and
``out[2m+1] = xp[m+1] w1 + xp[m+2] w3`` (taps ``w[1::2]``, positions ``1..H``). In 2-D the four phases
(even/odd rows x columns) are the four ``Cout`` blocks of *one* 2x2 'VALID' convolution of ``xp`` to
``4*Cout`` channels at ``(H+1) x (W+1)`` positions; phase ``(py, px)`` reads positions ``py..py+H-1``,
``px..px+W-1``, and depth-to-space interleaves them. The work is ``(H+1)(W+1)/(HW)`` times that of the
transposed convolution (1.56x at 4x4, 1.06x at 32x32) instead of the 2.25x of a 3x3 phase kernel, and
it is a single large convolution rather than four small ones.

``BatchNorm`` is ``nnx.BatchNorm`` (same variables, statistics and outputs) whose training-mode
reductions (the batch mean and mean square forward; the sums of ``dy`` and ``dy * xhat`` backward, with a
hand-written VJP) are matrix-vector products ``ones[N] @ x[N, C]``. Why: XLA:CPU lowers a reduction over
the leading axes of an NHWC map to a slow reduce-window loop, ~5x slower than the same sum as a dot, and
the BatchNorm reductions were a quarter of a DCGAN step on CPU (docs/performance.md).

``DownConv`` (D's down-sampling, ``nnx.Conv(cin, cout, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))``).
Per axis, ``out[n] = sum_k xp[2n+k] w_k`` (``xp`` padded by one). Grouping ``xp`` into pairs
``X[j] = (xp[2j], xp[2j+1])`` (space-to-depth) gives ``out[n] = X[n].(w0, w1) + X[n+1].(w2, w3)``: a
stride-1 2x2 'VALID' convolution with ``4*Cin`` input channels, exactly the strided convolution's work.

Every convolution above is :func:`conv_valid`, whose derivatives of any order are again forward
convolutions, so the step stays fast where XLA:CPU would otherwise emit naive loops (critic updates in a
``lax.scan``, gradient penalties; see its docstring). ``MapConv`` (D's last layer) is a matmul. The
ResNet GANs' stride-1 convolutions are :mod:`jgan.models.same_conv`; the two layer sets ``model.layers``
picks from, :mod:`jgan.models.layer_sets`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

_DN = ("NHWC", "HWIO", "NHWC")

# ``model.layers``: which formulation of the stride-2 convolutions, BatchNorm and D's last conv a model uses.
# "fast": this module's rewrites; "native": the Flax layers they replace (nnx.ConvTranspose, nnx.Conv,
# nnx.BatchNorm); "auto": per backend (:func:`resolve_layers`). Both sets have the same parameters.
LAYER_SETS = ("auto", "fast", "native")
_AUTO_LAYERS = {"cpu": "fast"}  # backend -> set chosen by "auto"; other backends get "native"


def resolve_layers(name: str, backend: str | None = None) -> str:
  """``model.layers`` -> ``"fast"`` or ``"native"``; ValueError naming a bad value and the valid choices.

  Args:
    name: one of :data:`LAYER_SETS`.
    backend: a JAX platform name (``"cpu"``, ``"gpu"``, ``"cuda"``, ``"rocm"``, ``"tpu"``); None: the
      default backend, ``jax.default_backend()``.

  ``"auto"`` picks ``"fast"`` on CPU and ``"native"`` elsewhere. Why: the fast forms were measured only on
  XLA:CPU (where a stride-2 ``conv_transpose`` weight gradient is ~15x slower than the rewrite, see the
  module docstring and docs/performance.md). On GPU/TPU the vendor convolutions are tuned for the native
  ops, but XLA's GPU ``conv_transpose`` gradients have open 32-430x performance gaps, so the rewrite may
  win there too: ``auto`` stays ``"native"`` off CPU until ``benchmarks/bench_layers.py`` run on a device
  says otherwise (then change :data:`_AUTO_LAYERS`).
  """
  if name not in LAYER_SETS:
    raise ValueError(f"unknown model.layers={name!r}; valid choices: {', '.join(LAYER_SETS)}")
  if name != "auto":
    return name
  return _AUTO_LAYERS.get(backend or jax.default_backend(), "native")


@jax.custom_vjp
def conv_valid(x: jax.Array, k: jax.Array) -> jax.Array:
  """Stride-1 'VALID' correlation whose derivatives of every order are the same kind of convolution.

  Args:
    x: [B, H, W, Cin] float (NHWC).
    k: [kh, kw, Cin, Cout] float (HWIO), same dtype as ``x``; ``kh <= H``, ``kw <= W``.

  Returns:
    [B, H - kh + 1, W - kw + 1, Cout]: ``y[b, i, j, o] = sum_{r, s, c} x[b, i + r, j + s, c] k[r, s, c, o]``,
    what ``lax.conv_general_dilated(x, k, (1, 1), 'VALID', ('NHWC', 'HWIO', 'NHWC'))`` returns.

  Why a custom VJP: JAX's own derivatives of a convolution are convolutions with permuted dimension
  numbers and reversed windows. At the top level of a jitted function XLA:CPU rewrites those into its
  fast (Eigen) convolution, but not where they sit inside a loop body (``lax.scan``: n_critic > 1,
  ``train.steps_per_call``) or come from a second derivative (gradient penalties): there XLA:CPU falls
  back to a naive loop, 50-450x slower (docs/performance.md). Here both derivatives are written as
  forward ``conv_valid`` calls on explicitly transposed operands (the rewrite XLA does at the top level),
  so every derivative, of any order and anywhere, stays on the fast path; the maths is unchanged.
  """
  return jax.lax.conv_general_dilated(x, k, (1, 1), "VALID", dimension_numbers=_DN)


def _conv_valid_fwd(x, k):
  return conv_valid(x, k), (x, k)


def _conv_valid_bwd(res, dy):
  x, k = res
  kh, kw = k.shape[0], k.shape[1]
  # dx: the 'full' correlation of dy with the spatially flipped kernel, input/output channels swapped.
  dyp = jnp.pad(dy, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)))
  dx = conv_valid(dyp, jnp.flip(k, (0, 1)).transpose(0, 1, 3, 2))
  # dk[r, s, c, o] = sum_{b, i, j} x[b, i + r, j + s, c] dy[b, i, j, o]: a correlation with Cin as the
  # batch, B as the contracted channels and dy as the kernel.
  dk = conv_valid(x.transpose(3, 1, 2, 0), dy.transpose(1, 2, 0, 3)).transpose(1, 2, 0, 3)
  return dx.astype(x.dtype), dk.astype(k.dtype)


conv_valid.defvjp(_conv_valid_fwd, _conv_valid_bwd)
_conv2x2 = conv_valid  # every DCGAN convolution is a stride-1 2x2 'VALID' one


def upconv2x(x: jax.Array, w: jax.Array) -> jax.Array:
  """Stride-2 4x4 'SAME' transposed convolution via one stride-1 2x2 convolution (see module docstring).

  Args:
    x: [B, H, W, Cin] float.
    w: [4, 4, Cin, Cout] kernel in ``nnx.ConvTranspose`` layout (not flipped, ``transpose_kernel=False``),
      same dtype as ``x``.

  Returns:
    [B, 2H, 2W, Cout] in ``x``'s dtype, equal to ``lax.conv_transpose(x, w, (2, 2), 'SAME')`` up to float
    rounding.
  """
  b, h, wd, cin = x.shape
  cout = w.shape[-1]
  # k[ty, tx, :, (py, px, c)] = w[2 ty + py, 2 tx + px, :, c]: tap t of phase p is w[2t + p].
  k = w.reshape(2, 2, 2, 2, cin, cout).transpose(0, 2, 4, 1, 3, 5).reshape(2, 2, cin, 4 * cout)
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  y = _conv2x2(xp, k).reshape(b, h + 1, wd + 1, 2, 2, cout)
  # Phase (py, px) is read at offset (py, px); stacking gives [B, H, py, W, px, C] = depth-to-space.
  rows = [jnp.stack([y[:, py : py + h, px : px + wd, py, px] for px in (0, 1)], axis=3) for py in (0, 1)]
  return jnp.stack(rows, axis=2).reshape(b, 2 * h, 2 * wd, cout)


def downconv2x(x: jax.Array, w: jax.Array) -> jax.Array:
  """Stride-2 4x4 convolution with padding 1 via space-to-depth and a stride-1 2x2 convolution.

  Args:
    x: [B, H, W, Cin] float with even H and W.
    w: [4, 4, Cin, Cout] kernel in ``nnx.Conv`` (HWIO) layout, same dtype as ``x``.

  Returns:
    [B, H/2, W/2, Cout] in ``x``'s dtype, equal to
    ``lax.conv_general_dilated(x, w, (2, 2), ((1, 1), (1, 1)))`` up to float rounding.
  """
  b, h, wd, cin = x.shape
  cout = w.shape[-1]
  if h % 2 or wd % 2:
    raise ValueError(f"downconv2x needs even spatial sizes, got {h}x{wd}")
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  # [B, H/2+1, 2, W/2+1, 2, Cin] -> [B, H/2+1, W/2+1, (dy, dx, Cin)]
  xs = xp.reshape(b, h // 2 + 1, 2, wd // 2 + 1, 2, cin).transpose(0, 1, 3, 2, 4, 5)
  xs = xs.reshape(b, h // 2 + 1, wd // 2 + 1, 4 * cin)
  # k[ty, tx, (dy, dx, c), o] = w[2 ty + dy, 2 tx + dx, c, o]
  k = w.reshape(2, 2, 2, 2, cin, cout).transpose(0, 2, 1, 3, 4, 5).reshape(2, 2, 4 * cin, cout)
  return _conv2x2(xs, k)


_HIGHEST = jax.lax.Precision.HIGHEST  # full float32 sums also where dots default to TF32 (GPUs)


def colsum(x2: jax.Array) -> jax.Array:
  """Column sums of ``x2`` [N, C] -> [C] as the dot ``ones[N] @ x2`` (full float32 precision)."""
  """[N, C] float32 -> [C]: the column sums, as a matrix-vector product (see the module docstring)."""
  return jnp.dot(jnp.ones((x2.shape[0],), x2.dtype), x2, precision=_HIGHEST)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def batch_norm_train(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float):
  """Training-mode BatchNorm over all axes but the last, with float32 statistics.

  Args:
    x: [..., C] float (any float dtype; statistics are computed in float32).
    scale, bias: [C] float32 parameters.
    epsilon: added to the variance.

  Returns:
    ``(y, mean, var)``: ``y = (x - mean) / sqrt(var + epsilon) * scale + bias`` in ``x``'s dtype, and the
    biased batch mean and variance [C] float32 (``var = E[x^2] - E[x]^2``, clipped at 0, as flax's fast
    variance). Differentiable in all three outputs.
  """
  return _bn_fwd(x, scale, bias, epsilon)[0]


def _bn_fwd(x, scale, bias, epsilon):
  c = x.shape[-1]
  x2 = x.reshape(-1, c).astype(jnp.float32)
  n = x2.shape[0]
  mean = colsum(x2) / n
  var = jnp.maximum(0.0, colsum(x2 * x2) / n - mean * mean)
  r = jax.lax.rsqrt(var + epsilon)
  y = ((x2 - mean[None]) * (r * scale)[None] + bias[None]).astype(x.dtype).reshape(x.shape)
  return (y, mean, var), (x, mean, r, scale)


def _bn_bwd(epsilon, res, cts):
  del epsilon
  x, mean, r, scale = res
  dy, dmean, dvar = cts
  c = x.shape[-1]
  x2 = x.reshape(-1, c).astype(jnp.float32)
  dy2 = dy.reshape(-1, c).astype(jnp.float32)
  n = x2.shape[0]
  xc = x2 - mean[None]
  xhat = xc * r[None]
  sum_dy = colsum(dy2)
  sum_dy_xhat = colsum(dy2 * xhat)
  # d/dx of the normalisation, plus the direct paths through the returned mean and variance.
  dx = (scale * r)[None] * (dy2 - (sum_dy[None] + xhat * sum_dy_xhat[None]) / n) + (
    dmean[None] + 2.0 * dvar[None] * xc
  ) / n
  return dx.astype(x.dtype).reshape(x.shape), sum_dy_xhat, sum_dy


batch_norm_train.defvjp(_bn_fwd, _bn_bwd)


class BatchNorm(nnx.BatchNorm):
  """``nnx.BatchNorm`` with the fast training-mode path :func:`batch_norm_train` (same variables/maths).

  The fast path is taken in training mode for the common configuration (features on the last axis,
  no mask, no named-axis reduction: data parallelism under ``jax.jit`` reduces over the sharded batch by
  itself; with or without scale and bias); everything else falls back to ``nnx.BatchNorm``. Running statistics follow
  flax: ``running = momentum * running + (1 - momentum) * batch`` with the biased batch variance.
  """

  def __call__(self, x, use_running_average: bool | None = None, *, mask: jax.Array | None = None):
    use_ra = self.use_running_average if use_running_average is None else use_running_average
    fast = not use_ra and mask is None and self.axis in (-1, x.ndim - 1) and self.axis_name is None
    if not fast:
      return super().__call__(x, use_running_average, mask=mask)
    # Without a scale or bias (use_scale/use_bias=False: the normalisation of a conditional BatchNorm,
    # which applies its own per-example gain and bias) the fast path runs with constants 1 and 0.
    c = x.shape[-1]
    scale = self.scale[...] if self.scale is not None else jnp.ones((c,), self.param_dtype)
    bias = self.bias[...] if self.bias is not None else jnp.zeros((c,), self.param_dtype)
    dtype = self.dtype or jnp.result_type(x, scale)
    y, mean, var = batch_norm_train(x.astype(dtype), scale, bias, self.epsilon)
    m = self.momentum
    self.mean[...] = jax.lax.stop_gradient(m * self.mean[...] + (1 - m) * mean)
    self.var[...] = jax.lax.stop_gradient(m * self.var[...] + (1 - m) * var)
    return y


def _apply(fn, x: jax.Array, kernel: jax.Array, bias: jax.Array | None, dtype) -> jax.Array:
  """``fn(x, kernel) + bias`` computed in ``dtype`` (None: x's dtype promoted with the kernel's)."""
  # Parameters stay in their float32 storage; only the computation runs in e.g. bfloat16.
  dtype = dtype or jnp.result_type(x, kernel)
  y = fn(x.astype(dtype), kernel.astype(dtype))
  if bias is not None:
    y = y + bias.astype(dtype).reshape(1, 1, 1, -1)
  return y


class UpConv(nnx.Module):
  """Drop-in for ``nnx.ConvTranspose(cin, cout, (4, 4), strides=(2, 2), padding='SAME')``.

  Same parameter names (``kernel`` [4, 4, cin, cout], optional ``bias`` [cout]) and outputs, computed by
  :func:`upconv2x`. Input ``[B, H, W, cin]`` -> output ``[B, 2H, 2W, cout]`` in ``dtype`` (default: the
  input's dtype promoted with the parameters'); parameters are ``param_dtype``.
  """

  def __init__(
    self,
    cin: int,
    cout: int,
    *,
    use_bias: bool = False,
    kernel_init=None,
    dtype=None,
    param_dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    init = kernel_init or nnx.initializers.normal(0.02)
    self.kernel = nnx.Param(init(rngs.params(), (4, 4, cin, cout), param_dtype))
    self.bias = nnx.Param(jnp.zeros((cout,), param_dtype)) if use_bias else None
    self.dtype = dtype

  def __call__(self, x: jax.Array) -> jax.Array:
    return _apply(upconv2x, x, self.kernel[...], None if self.bias is None else self.bias[...], self.dtype)


class DownConv(nnx.Conv):
  """``nnx.Conv(cin, cout, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))`` computed by :func:`downconv2x`.

  A subclass of ``nnx.Conv`` with the same variables (``kernel`` [4, 4, cin, cout], optional ``bias``
  [cout]), so code that finds convolutions by type (e.g. spectral normalisation's ``wrap_layers``) sees
  it; only ``__call__`` differs. Input ``[B, H, W, cin]`` (H, W even) -> ``[B, H/2, W/2, cout]`` in
  ``dtype`` (default: promoted with the parameters').
  """

  def __init__(
    self,
    cin: int,
    cout: int,
    *,
    use_bias: bool = True,
    kernel_init=None,
    dtype=None,
    param_dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    super().__init__(
      cin,
      cout,
      (4, 4),
      strides=(2, 2),
      padding=((1, 1), (1, 1)),
      use_bias=use_bias,
      kernel_init=kernel_init or nnx.initializers.normal(0.02),
      dtype=dtype,
      param_dtype=param_dtype,
      rngs=rngs,
    )

  def __call__(self, x: jax.Array) -> jax.Array:  # type: ignore[override]  # takes the input only
    return _apply(downconv2x, x, self.kernel[...], None if self.bias is None else self.bias[...], self.dtype)


class MapConv(nnx.Conv):
  """``nnx.Conv(cin, cout, (S, S), padding='VALID')`` on an ``S x S`` map, computed as one matmul.

  A convolution whose kernel covers the whole input map is a dense layer over the flattened map
  (``[B, S*S*cin] @ kernel.reshape(S*S*cin, cout)``); as a matmul its gradients are matmuls too, fast at
  any derivative order and inside loop bodies (see :func:`conv_valid`). Same variables as ``nnx.Conv``
  (a subclass, so spectral normalisation finds it). Input ``[B, S, S, cin]`` -> ``[B, 1, 1, cout]``.
  """

  def __call__(self, x: jax.Array) -> jax.Array:  # type: ignore[override]  # takes the input only
    kernel = self.kernel[...]
    if x.shape[1:3] != kernel.shape[:2]:
      raise ValueError(f"MapConv expects a {kernel.shape[0]}x{kernel.shape[1]} map, got {x.shape}")
    dtype = self.dtype or jnp.result_type(x, kernel)
    y = x.reshape(x.shape[0], -1).astype(dtype) @ kernel.reshape(-1, kernel.shape[-1]).astype(dtype)
    if self.bias is not None:
      y = y + self.bias[...].astype(dtype)[None]
    return y.reshape(x.shape[0], 1, 1, -1)
