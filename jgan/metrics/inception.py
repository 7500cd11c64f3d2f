"""Inception-v3 in its FID variant (the TF 2015-12-05 graph as ported by pytorch-fid), as a Flax NNX module.

FID, KID, IS and precision/recall are only comparable across papers when computed with *this* network:
the TensorFlow Inception graph ``inception-2015-12-05`` that the original FID / IS code used, whose
PyTorch port is ``pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid). It differs from torchvision's
Inception-v3 in weights and in three pooling details, all reproduced here:

* the average pools of the InceptionA / InceptionC / first InceptionE blocks exclude the zero padding
  from the average (TF's ``avg_pool`` with SAME padding; PyTorch's ``count_include_pad=False``);
* the last InceptionE block (``Mixed_7c``) max-pools its pool branch instead of average-pooling;
* 1008 output classes (1000 ImageNet classes plus 8 unused), not 1000.

Input pipeline (pytorch-fid's ``InceptionV3(resize_input=True, normalize_input=True)``): images are
resized to 299x299 with bilinear interpolation, half-pixel centres, no antialiasing (``F.interpolate(...,
align_corners=False)``), in [-1, 1]; grayscale images are repeated to 3 channels. Outputs: the 2048-d
``pool3`` features (global average of ``Mixed_7c``; FID, KID, PR) and the 1008 logits. The Inception
Score uses the logits *without* the fc bias, as the original OpenAI code (``pool3 @ W``) and
torch-fidelity's ``logits_unbiased`` do.

Every ``BasicConv2d`` (conv without bias, BatchNorm with eps 1e-3, ReLU) is stored with its inference
BatchNorm folded into the convolution: ``W' = W * gamma / sqrt(var + eps)``, ``b' = beta - mean * gamma /
sqrt(var + eps)``, so a layer is one conv plus a bias. Weights come from the user's file
(:func:`load_weights`): pytorch-fid's release file, downloaded and SHA-256 checked on first use, or the
user's own copy (:func:`jgan.metrics.inception_weights.weights_path`); :func:`read_state_dict` reads the
``.pth`` file without PyTorch.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jgan.metrics.inception_weights import file_digest, weights_path
from jgan.metrics.pth_files import read_state_dict

INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008
BN_EPS = 1e-3  # torchvision's BasicConv2d BatchNorm epsilon (the TF graph's)


def _pair(v) -> tuple[int, int]:
  return (v, v) if isinstance(v, int) else tuple(v)


class BasicConv(nnx.Module):
  """torchvision's ``BasicConv2d`` with BatchNorm folded in: ``relu(conv(x, kernel) + bias)``.

  ``kernel`` is ``[kh, kw, cin, cout]`` (HWIO), ``bias`` ``[cout]``; ``x`` is NHWC float32. Padding is
  symmetric zero padding of ``padding`` pixels per side (PyTorch's ``padding`` argument).
  """

  def __init__(self, cin: int, cout: int, kernel_size, stride=1, padding=0, *, rngs: nnx.Rngs):
    kh, kw = _pair(kernel_size)
    # He-normal init, so random-weight networks (tests, benchmarks) keep activations O(1) through 94
    # layers. Drawn with numpy: eager jax.random compiles once per distinct shape (minutes for 94 layers).
    gen = np.random.default_rng(np.asarray(jax.random.key_data(rngs.params())))
    std = np.sqrt(2.0 / (kh * kw * cin))
    # jax.device_put, not jnp.asarray: the latter compiles a copy per distinct shape.
    self.kernel = nnx.Param(jax.device_put(gen.normal(0.0, std, (kh, kw, cin, cout)).astype(np.float32)))
    self.bias = nnx.Param(jax.device_put(np.zeros((cout,), np.float32)))
    self.stride = _pair(stride)
    self.padding = _pair(padding)

  def __call__(self, x: jax.Array) -> jax.Array:
    ph, pw = self.padding
    y = jax.lax.conv_general_dilated(
      x, self.kernel[...], self.stride, ((ph, ph), (pw, pw)), dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return jax.nn.relu(y + self.bias[...].reshape(1, 1, 1, -1))


def max_pool(x: jax.Array, stride: int, padding: int = 0) -> jax.Array:
  """3x3 max pool of NHWC ``x`` (PyTorch ``max_pool2d``: padding counts as -inf)."""
  return jax.lax.reduce_window(
    x,
    -jnp.inf,
    jax.lax.max,
    (1, 3, 3, 1),
    (1, stride, stride, 1),
    ((0, 0), (padding, padding), (padding, padding), (0, 0)),
  )


def avg_pool_exclude_pad(x: jax.Array) -> jax.Array:
  """3x3 stride-1 'same' average pool that divides by the number of *real* pixels in each window.

  This is TF's ``avg_pool`` with SAME padding (PyTorch ``count_include_pad=False``): border outputs
  average 4 or 6 pixels, not 9 with zeros.
  """
  pad = ((0, 0), (1, 1), (1, 1), (0, 0))
  total = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 3, 3, 1), (1, 1, 1, 1), pad)
  count = jax.lax.reduce_window(
    jnp.ones((1,) + x.shape[1:3] + (1,), x.dtype), 0.0, jax.lax.add, (1, 3, 3, 1), (1, 1, 1, 1), pad
  )
  return total / count


class InceptionA(nnx.Module):
  """Mixed_5b/5c/5d: 35x35 blocks; ``cin -> 224 + pool_features`` channels."""

  def __init__(self, cin: int, pool_features: int, *, rngs: nnx.Rngs):
    self.branch1x1 = BasicConv(cin, 64, 1, rngs=rngs)
    self.branch5x5_1 = BasicConv(cin, 48, 1, rngs=rngs)
    self.branch5x5_2 = BasicConv(48, 64, 5, padding=2, rngs=rngs)
    self.branch3x3dbl_1 = BasicConv(cin, 64, 1, rngs=rngs)
    self.branch3x3dbl_2 = BasicConv(64, 96, 3, padding=1, rngs=rngs)
    self.branch3x3dbl_3 = BasicConv(96, 96, 3, padding=1, rngs=rngs)
    self.branch_pool = BasicConv(cin, pool_features, 1, rngs=rngs)

  def __call__(self, x):
    b1 = self.branch1x1(x)
    b5 = self.branch5x5_2(self.branch5x5_1(x))
    b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    bp = self.branch_pool(avg_pool_exclude_pad(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nnx.Module):
  """Mixed_6a: 35x35 -> 17x17 reduction; ``cin -> 480 + cin`` channels."""

  def __init__(self, cin: int, *, rngs: nnx.Rngs):
    self.branch3x3 = BasicConv(cin, 384, 3, stride=2, rngs=rngs)
    self.branch3x3dbl_1 = BasicConv(cin, 64, 1, rngs=rngs)
    self.branch3x3dbl_2 = BasicConv(64, 96, 3, padding=1, rngs=rngs)
    self.branch3x3dbl_3 = BasicConv(96, 96, 3, stride=2, rngs=rngs)

  def __call__(self, x):
    b3 = self.branch3x3(x)
    bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    return jnp.concatenate([b3, bd, max_pool(x, 2)], axis=-1)


class InceptionC(nnx.Module):
  """Mixed_6b..6e: 17x17 blocks with factorised 7x7 convolutions; 768 -> 768 channels."""

  def __init__(self, cin: int, c7: int, *, rngs: nnx.Rngs):
    self.branch1x1 = BasicConv(cin, 192, 1, rngs=rngs)
    self.branch7x7_1 = BasicConv(cin, c7, 1, rngs=rngs)
    self.branch7x7_2 = BasicConv(c7, c7, (1, 7), padding=(0, 3), rngs=rngs)
    self.branch7x7_3 = BasicConv(c7, 192, (7, 1), padding=(3, 0), rngs=rngs)
    self.branch7x7dbl_1 = BasicConv(cin, c7, 1, rngs=rngs)
    self.branch7x7dbl_2 = BasicConv(c7, c7, (7, 1), padding=(3, 0), rngs=rngs)
    self.branch7x7dbl_3 = BasicConv(c7, c7, (1, 7), padding=(0, 3), rngs=rngs)
    self.branch7x7dbl_4 = BasicConv(c7, c7, (7, 1), padding=(3, 0), rngs=rngs)
    self.branch7x7dbl_5 = BasicConv(c7, 192, (1, 7), padding=(0, 3), rngs=rngs)
    self.branch_pool = BasicConv(cin, 192, 1, rngs=rngs)

  def __call__(self, x):
    b1 = self.branch1x1(x)
    b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
    bd = x
    for layer in (
      self.branch7x7dbl_1,
      self.branch7x7dbl_2,
      self.branch7x7dbl_3,
      self.branch7x7dbl_4,
      self.branch7x7dbl_5,
    ):
      bd = layer(bd)
    bp = self.branch_pool(avg_pool_exclude_pad(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nnx.Module):
  """Mixed_7a: 17x17 -> 8x8 reduction; ``cin -> 512 + cin`` channels."""

  def __init__(self, cin: int, *, rngs: nnx.Rngs):
    self.branch3x3_1 = BasicConv(cin, 192, 1, rngs=rngs)
    self.branch3x3_2 = BasicConv(192, 320, 3, stride=2, rngs=rngs)
    self.branch7x7x3_1 = BasicConv(cin, 192, 1, rngs=rngs)
    self.branch7x7x3_2 = BasicConv(192, 192, (1, 7), padding=(0, 3), rngs=rngs)
    self.branch7x7x3_3 = BasicConv(192, 192, (7, 1), padding=(3, 0), rngs=rngs)
    self.branch7x7x3_4 = BasicConv(192, 192, 3, stride=2, rngs=rngs)

  def __call__(self, x):
    b3 = self.branch3x3_2(self.branch3x3_1(x))
    b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
    return jnp.concatenate([b3, b7, max_pool(x, 2)], axis=-1)


class InceptionE(nnx.Module):
  """Mixed_7b / 7c: 8x8 blocks, ``cin -> 2048`` channels. ``max_pool_branch``: the FID graph's 7c quirk."""

  def __init__(self, cin: int, *, max_pool_branch: bool, rngs: nnx.Rngs):
    self.branch1x1 = BasicConv(cin, 320, 1, rngs=rngs)
    self.branch3x3_1 = BasicConv(cin, 384, 1, rngs=rngs)
    self.branch3x3_2a = BasicConv(384, 384, (1, 3), padding=(0, 1), rngs=rngs)
    self.branch3x3_2b = BasicConv(384, 384, (3, 1), padding=(1, 0), rngs=rngs)
    self.branch3x3dbl_1 = BasicConv(cin, 448, 1, rngs=rngs)
    self.branch3x3dbl_2 = BasicConv(448, 384, 3, padding=1, rngs=rngs)
    self.branch3x3dbl_3a = BasicConv(384, 384, (1, 3), padding=(0, 1), rngs=rngs)
    self.branch3x3dbl_3b = BasicConv(384, 384, (3, 1), padding=(1, 0), rngs=rngs)
    self.branch_pool = BasicConv(cin, 192, 1, rngs=rngs)
    self.max_pool_branch = max_pool_branch

  def __call__(self, x):
    b1 = self.branch1x1(x)
    b3 = self.branch3x3_1(x)
    b3 = jnp.concatenate([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], axis=-1)
    bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
    bd = jnp.concatenate([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], axis=-1)
    pooled = max_pool(x, 1, padding=1) if self.max_pool_branch else avg_pool_exclude_pad(x)
    return jnp.concatenate([b1, b3, bd, self.branch_pool(pooled)], axis=-1)


def resize_to_input(images: jax.Array) -> jax.Array:
  """``[B, H, W, C]`` images (C = 1 or 3) -> ``[B, 299, 299, 3]``, bilinear as PyTorch's ``interpolate``.

  Half-pixel centres and no antialiasing (``align_corners=False, antialias=False``): up-sampling is the
  same either way; down-sampling from > 299 px matches pytorch-fid only without antialiasing.
  """
  b, h, w, c = images.shape
  if c not in (1, 3):
    raise ValueError(f"Inception needs 1- or 3-channel images; got shape {images.shape}")
  x = images.astype(jnp.float32)
  if (h, w) != (INPUT_SIZE, INPUT_SIZE):
    x = jax.image.resize(x, (b, INPUT_SIZE, INPUT_SIZE, c), "bilinear", antialias=False)
  return jnp.broadcast_to(x, (b, INPUT_SIZE, INPUT_SIZE, 3)) if c == 1 else x


class InceptionV3(nnx.Module):
  """FID Inception-v3: images ``[B, H, W, C]`` in [-1, 1] -> ``(pool3 [B, 2048], logits [B, 1008])``.

  Attribute names follow the PyTorch state_dict (``Conv2d_1a_3x3``, ``Mixed_5b.branch1x1``, ``fc``), so
  :func:`load_weights` maps keys by name. Any input size; it is resized to 299 (see
  :func:`resize_to_input`). Built with random He-normal weights; load the real ones before use.
  """

  def __init__(self, *, rngs: nnx.Rngs):
    self.Conv2d_1a_3x3 = BasicConv(3, 32, 3, stride=2, rngs=rngs)
    self.Conv2d_2a_3x3 = BasicConv(32, 32, 3, rngs=rngs)
    self.Conv2d_2b_3x3 = BasicConv(32, 64, 3, padding=1, rngs=rngs)
    self.Conv2d_3b_1x1 = BasicConv(64, 80, 1, rngs=rngs)
    self.Conv2d_4a_3x3 = BasicConv(80, 192, 3, rngs=rngs)
    self.Mixed_5b = InceptionA(192, 32, rngs=rngs)
    self.Mixed_5c = InceptionA(256, 64, rngs=rngs)
    self.Mixed_5d = InceptionA(288, 64, rngs=rngs)
    self.Mixed_6a = InceptionB(288, rngs=rngs)
    self.Mixed_6b = InceptionC(768, 128, rngs=rngs)
    self.Mixed_6c = InceptionC(768, 160, rngs=rngs)
    self.Mixed_6d = InceptionC(768, 160, rngs=rngs)
    self.Mixed_6e = InceptionC(768, 192, rngs=rngs)
    self.Mixed_7a = InceptionD(768, rngs=rngs)
    self.Mixed_7b = InceptionE(1280, max_pool_branch=False, rngs=rngs)
    self.Mixed_7c = InceptionE(2048, max_pool_branch=True, rngs=rngs)
    self.fc = nnx.Linear(FEATURE_DIM, NUM_CLASSES, rngs=rngs)

  def features(self, images: jax.Array) -> jax.Array:
    """``pool3``: float32 ``[B, 2048]`` (>= 0, ReLU outputs averaged over the final 8x8 map)."""
    x = resize_to_input(images)
    x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
    x = max_pool(x, 2)
    x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
    x = max_pool(x, 2)
    for block in (
      self.Mixed_5b,
      self.Mixed_5c,
      self.Mixed_5d,
      self.Mixed_6a,
      self.Mixed_6b,
      self.Mixed_6c,
      self.Mixed_6d,
      self.Mixed_6e,
      self.Mixed_7a,
      self.Mixed_7b,
      self.Mixed_7c,
    ):
      x = block(x)
    return jnp.mean(x, axis=(1, 2))

  def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    pool = self.features(images)
    return pool, self.fc(pool)


def conv_layer_names(model: InceptionV3) -> list[str]:
  """Dotted names of every BasicConv (94), e.g. ``"Mixed_5b.branch5x5_1"``, sorted."""
  return sorted(".".join(str(p) for p in path) for path, node in nnx.iter_graph(model) if isinstance(node, BasicConv))


def fold_batchnorm(weight, gamma, beta, mean, var, eps: float = BN_EPS) -> tuple[np.ndarray, np.ndarray]:
  """PyTorch conv weight ``[cout, cin, kh, kw]`` + BatchNorm stats ``[cout]`` -> HWIO kernel and bias.

  Inference BatchNorm ``gamma (y - mean) / sqrt(var + eps) + beta`` after a bias-free conv ``y = W * x``
  equals a conv with ``W * s`` plus bias ``beta - mean * s``, ``s = gamma / sqrt(var + eps)``. Computed in
  float64 and returned as float32 ``[kh, kw, cin, cout]`` and ``[cout]``.
  """
  s = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
  w = np.asarray(weight, np.float64) * s[:, None, None, None]
  b = np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * s
  return w.transpose(2, 3, 1, 0).astype(np.float32), b.astype(np.float32)


def load_weights(model: InceptionV3, state_dict: dict[str, np.ndarray]) -> InceptionV3:
  """Copies a pytorch-fid state_dict into ``model`` (in place, BatchNorm folded); returns ``model``.

  Expected keys: for each of the 94 conv layers ``<name>.conv.weight`` and ``<name>.bn.{weight, bias,
  running_mean, running_var}`` (``<name>.bn.num_batches_tracked`` is ignored if present), plus
  ``fc.weight [1008, 2048]`` and ``fc.bias [1008]``. Raises ValueError listing missing or unexpected
  keys and shape mismatches, so a file of another network fails loudly instead of silently.
  """
  sd = {k: np.asarray(v) for k, v in state_dict.items() if not k.endswith(".num_batches_tracked")}
  used, missing, bad_shape = set(), [], []

  def take(key, shape):
    if key not in sd:
      missing.append(key)
      return None
    used.add(key)
    if tuple(sd[key].shape) != tuple(shape):
      bad_shape.append(f"{key}: file {tuple(sd[key].shape)} vs model {tuple(shape)}")
      return None
    return sd[key]

  updates = []
  for name in conv_layer_names(model):
    layer: Any = functools.reduce(getattr, name.split("."), model)  # a BasicConv2d
    kh, kw, cin, cout = layer.kernel.shape
    w = take(f"{name}.conv.weight", (cout, cin, kh, kw))
    bn = [take(f"{name}.bn.{p}", (cout,)) for p in ("weight", "bias", "running_mean", "running_var")]
    if w is not None and all(v is not None for v in bn):
      updates.append((layer, fold_batchnorm(w, *bn)))
  fc_w = take("fc.weight", (NUM_CLASSES, FEATURE_DIM))
  fc_b = take("fc.bias", (NUM_CLASSES,))
  unexpected = sorted(set(sd) - used)
  if missing or unexpected or bad_shape:
    raise ValueError(
      "the file is not a pytorch-fid Inception state_dict: "
      f"{len(missing)} missing keys {missing[:5]}, {len(unexpected)} unexpected keys "
      f"{unexpected[:5]}, {len(bad_shape)} shape mismatches {bad_shape[:5]}"
    )
  for layer, (kernel, bias) in updates:
    layer.kernel.set_value(jax.device_put(kernel))
    layer.bias.set_value(jax.device_put(bias))
  fc: Any = model.fc
  fc.kernel.set_value(jax.device_put(np.ascontiguousarray(fc_w.T, np.float32)))
  fc.bias.set_value(jax.device_put(fc_b.astype(np.float32)))
  return model


def load_inception(path: str = "") -> tuple[InceptionV3, str]:
  """The FID Inception with weights from :func:`weights_path` ``(path)``; returns ``(model, digest)``.

  ``digest`` is the SHA-256 of the weights file (it keys cached real-data features). Reads ``.pth``
  (PyTorch zip or legacy format, no PyTorch needed) or ``.npz`` files with the state_dict's keys.
  """
  path = weights_path(path)
  model = InceptionV3(rngs=nnx.Rngs(0))
  load_weights(model, read_state_dict(path))
  return model, file_digest(path, os.path.getmtime(path))


def make_apply(model: InceptionV3) -> Callable[[jax.Array], tuple[jax.Array, jax.Array]]:
  """A jitted pure function ``images [B, H, W, C] in [-1, 1] -> (pool3 [B, 2048], probs [B, 1008])``.

  ``probs`` is the softmax of the *unbiased* logits ``pool3 @ W`` (the Inception Score's convention; see
  the module docstring). The model is split once; its parameters are an argument, not constants.
  """
  graphdef, params = nnx.split(model)
  return functools.partial(_apply, graphdef, params)


@functools.partial(jax.jit, static_argnums=0)
def _apply(graphdef, params, images):
  # Module level with a static graphdef: models loaded again (a new evaluator) reuse the compilation.
  model = nnx.merge(graphdef, params)
  pool = model.features(images)
  return pool, jax.nn.softmax(pool @ model.fc.kernel[...], axis=-1)
