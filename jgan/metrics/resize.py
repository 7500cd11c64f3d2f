"""How images reach the FID Inception's 299x299 input: the two resizers of clean-fid's mode names.

Parmar et al. 2022 (clean-fid) showed that FID moves by several points with the resizing library
alone, so a FID is only comparable with one computed in the same mode. jgan's modes, as clean-fid
names them:

* ``legacy_pytorch`` (the default, for comparison with published pytorch-fid numbers): pytorch-fid's
  own path, a bilinear resize inside the network without antialiasing (``F.interpolate(...,
  align_corners=False)``; :func:`jgan.metrics.inception.resize_to_input`).
* ``clean``: clean-fid's resizer: each channel of the 8-bit image, as float32, resized by PIL's
  antialiasing bicubic filter (``Image.fromarray(x, mode="F").resize((299, 299), BICUBIC)``), clipped
  to [0, 255]; the network then sees 299 px input and does not resize.

The mode is part of the real-feature cache key and is recorded with every result (``fid_mode``).
"""

from __future__ import annotations

import numpy as np

FID_MODES = ("legacy_pytorch", "clean")
DEFAULT_FID_MODE = "legacy_pytorch"


def check_fid_mode(mode: str) -> str:
  """``mode`` if it is one of :data:`FID_MODES`, else a ValueError naming the valid choices."""
  if mode not in FID_MODES:
    raise ValueError(f"unknown evals.fid_mode {mode!r}; valid choices: {', '.join(FID_MODES)}")
  return mode


def clean_resize(images, size: int = 299) -> np.ndarray:
  """clean-fid's resize of ``[B, H, W, C]`` images in [-1, 1] -> float32 ``[B, size, size, C]`` in [-1, 1].

  The images are taken as the 8-bit images they stand for (``(x + 1) * 127.5``, rounded: jgan
  quantises generated samples to 256 levels before any extractor), each channel resized as a float32
  PIL image with ``BICUBIC`` (PIL antialiases when down-sampling), clipped to [0, 255] and mapped back
  to [-1, 1], which is what the FID network's ``normalize_input`` expects.
  """
  from PIL import Image

  x = np.asarray(images, dtype=np.float32)
  if x.ndim != 4:
    raise ValueError(f"clean_resize needs [B, H, W, C] images; got shape {x.shape}")
  x = np.round((np.clip(x, -1.0, 1.0) + 1.0) * 127.5)
  out = np.empty((x.shape[0], size, size, x.shape[3]), np.float32)
  for i in range(x.shape[0]):
    for c in range(x.shape[3]):
      resized = Image.fromarray(x[i, :, :, c], mode="F").resize((size, size), resample=Image.Resampling.BICUBIC)
      out[i, :, :, c] = np.asarray(resized, dtype=np.float32)
  return np.clip(out, 0.0, 255.0) / 127.5 - 1.0
