"""Run outputs: metrics as JSONL and TensorBoard scalars, images as PNG grids and TensorBoard images.

Only the writing process (process 0 in multi-host runs) should create a :class:`RunWriter` with
``enabled=True``; the others get a no-op writer so call sites need no ``if``. Files go through
:mod:`jgan.storage` (a local directory or a ``gs://`` bucket).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import numpy as np

from jgan import storage


def image_grid(images: np.ndarray, ncols: int | None = None, pad: int = 2) -> np.ndarray:
  """Tiles images float [N, H, W, C] in [-1, 1] into one uint8 [rows*(H+pad)+pad, cols*(W+pad)+pad, C] grid.

  ``ncols`` defaults to ceil(sqrt(N)); padding is white. C is 1 or 3.
  """
  images = np.asarray(images, np.float32)
  n, h, w, c = images.shape
  ncols = ncols or int(math.ceil(math.sqrt(n)))
  nrows = int(math.ceil(n / ncols))
  u8 = np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
  grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), 255, np.uint8)
  for i in range(n):
    r, col = divmod(i, ncols)
    grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + col * (w + pad) : pad + col * (w + pad) + w] = u8[i]
  return grid


def save_png(path: str, grid: np.ndarray, scale: int = 1) -> str:
  """Writes a uint8 [H, W, C] image (C in {1, 3}) to ``path``, upscaled by ``scale`` (nearest)."""
  from PIL import Image

  img = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
  if scale > 1:
    img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
  storage.makedirs(storage.dirname(storage.abspath(path)))
  with storage.open(path, "wb") as f:
    img.save(f, format="PNG")
  return path


def _summary_writer_class():
  """tensorboardX's ``SummaryWriter``, imported without importing PyTorch.

  tensorboardX's ``writer`` module runs ``try: import torch`` only to accept torch tensors, which jgan
  never passes; with PyTorch installed (e.g. the ``bench`` extra) that import costs ~2 s of every run's
  start-up (1.9 s measured here). A ``None`` entry in ``sys.modules`` makes that import raise
  ImportError, which tensorboardX handles (numpy arrays only); the entry is removed again at once, so a
  later ``import torch`` by the user works as usual. If torch is already imported, nothing is blocked.
  """
  import sys

  if "torch" in sys.modules or "tensorboardX" in sys.modules:
    from tensorboardX import SummaryWriter

    return SummaryWriter
  sys.modules["torch"] = None
  try:
    from tensorboardX import SummaryWriter
  finally:
    if sys.modules.get("torch", 0) is None:
      del sys.modules["torch"]
  return SummaryWriter


class RunWriter:
  """Appends scalars to ``workdir/metrics.jsonl`` and TensorBoard (``workdir/tb``); writes images.

  ``purge_step``: a resumed run's first step. TensorBoard then hides the events of earlier event files
  at that step and later (written by the interrupted run after its last checkpoint), so the curves show
  each step once, as metrics.jsonl does after :func:`jgan.outputs.drop_metrics_after`.
  """

  def __init__(self, workdir: str, enabled: bool = True, *, filename_suffix: str = "", purge_step: int | None = None):
    self.workdir, self.enabled = workdir, enabled
    self._tb = None
    if enabled:
      storage.makedirs(workdir)
      # tensorboardX names event files by the second and the host only: a second writer opened in the
      # same second (two quick `jgan eval`s) would truncate the first's file; a suffix keeps them apart.
      cls = _summary_writer_class()
      storage.register_tensorboard()  # gs:// event files through jgan.storage
      self._tb = cls(storage.join(workdir, "tb"), flush_secs=30, filename_suffix=filename_suffix, purge_step=purge_step)

  def scalars(self, step: int, values: Mapping[str, float], *, jsonl: bool = True) -> None:
    """Logs float scalars at ``step`` to TensorBoard and (``jsonl``) as one JSON line of metrics.jsonl:
    ``{"step": step, name: value, ...}`` (``jgan eval`` keeps its rows in evals.jsonl instead)."""
    if not self.enabled:
      return
    if jsonl:
      row = {"step": int(step), **{k: float(v) for k, v in values.items()}}
      storage.append_text(storage.join(self.workdir, "metrics.jsonl"), json.dumps(row) + "\n")
    assert self._tb is not None  # enabled
    for k, v in values.items():
      self._tb.add_scalar(k, float(v), int(step))

  def image(self, step: int, name: str, grid: np.ndarray) -> None:
    """Logs a uint8 [H, W, C] image to TensorBoard."""
    if self._tb is not None:
      self._tb.add_image(name, grid, int(step), dataformats="HWC")

  def flush(self) -> None:
    if self._tb is not None:
      self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()
      self._tb = None


def read_jsonl(path: str) -> list[dict]:
  """All rows of a metrics.jsonl file."""
  with storage.open(path) as f:
    return [json.loads(line) for line in f if line.strip()]
