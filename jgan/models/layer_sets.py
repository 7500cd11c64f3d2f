"""The two layer sets ``model.layers`` chooses between (``fast`` and ``native``, :data:`LAYERS`): the same
layers (names, shapes and initial values of their variables, and their outputs) written for XLA:CPU's
fast path (:mod:`jgan.models.layers`, :mod:`jgan.models.same_conv`) or with Flax's own layers."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from flax import nnx

from jgan.models.layers import BatchNorm, DownConv, MapConv, UpConv, resolve_layers
from jgan.models.same_conv import NativeSameConv, SameConv


def _native_up(cin: int, cout: int, *, use_bias: bool = False, kernel_init=None, dtype=None, rngs: nnx.Rngs):
  return nnx.ConvTranspose(
    cin,
    cout,
    (4, 4),
    strides=(2, 2),
    padding="SAME",
    use_bias=use_bias,
    kernel_init=kernel_init or nnx.initializers.normal(0.02),
    dtype=dtype,
    rngs=rngs,
  )


def _native_down(cin: int, cout: int, *, use_bias: bool = True, kernel_init=None, dtype=None, rngs: nnx.Rngs):
  return nnx.Conv(
    cin,
    cout,
    (4, 4),
    strides=(2, 2),
    padding=((1, 1), (1, 1)),
    use_bias=use_bias,
    kernel_init=kernel_init or nnx.initializers.normal(0.02),
    dtype=dtype,
    rngs=rngs,
  )


class LayerSet(NamedTuple):
  """Constructors of the layers whose formulation ``model.layers`` picks; both sets take the same
  arguments and create the same variables (names, shapes, initial values for the same ``rngs``).

  * ``up(cin, cout, *, use_bias, kernel_init, dtype, rngs)``: stride-2 4x4 'SAME' transposed convolution.
  * ``down(cin, cout, *, use_bias, kernel_init, dtype, rngs)``: stride-2 4x4 convolution, padding 1.
  * ``batch_norm(c, **nnx.BatchNorm kwargs)``.
  * ``map_conv(cin, cout, (S, S), **nnx.Conv kwargs)``: the convolution over a whole ``S x S`` map.
  * ``conv(cin, cout, k, *, resample, use_bias, kernel_init, dtype, rngs)``: stride-1 'SAME' k x k
    convolution, optionally after nearest x2 up-sampling or before 2x2 average pooling (the ResNet
    GANs' layers, :class:`SameConv`).
  """

  up: Callable[..., nnx.Module]
  down: Callable[..., nnx.Module]
  batch_norm: Callable[..., nnx.Module]
  map_conv: Callable[..., nnx.Module]
  conv: Callable[..., nnx.Module]


LAYERS = {
  "fast": LayerSet(UpConv, DownConv, BatchNorm, MapConv, SameConv),
  "native": LayerSet(_native_up, _native_down, nnx.BatchNorm, nnx.Conv, NativeSameConv),
}


def layer_set(name: str = "auto", backend: str | None = None) -> LayerSet:
  """The :class:`LayerSet` of ``model.layers = name`` (see :func:`resolve_layers`)."""
  return LAYERS[resolve_layers(name, backend)]
