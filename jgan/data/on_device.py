"""On-device data: a dataset kept on the device(s) as uint8, each batch gathered inside the jitted step.

The host pipeline (:func:`jgan.data.make_iterator`) builds every batch in Python: a Grain map per example,
a host-side stack, a float32 host-to-device copy. For a dataset that fits in device memory none of that
is needed. :func:`load` preprocesses every example once to its output geometry as uint8 (the
padding, centre crop and Pillow resize of :func:`jgan.data.preprocess_uint8`), and the run places those
bytes on every device of the mesh once. Each call of the jitted step then receives only a cursor (two
scalars: the epoch and the position within it of the call's first example) and :func:`batch` computes
the rest on the device:

* which examples: Grain's shuffle order (:mod:`jgan.data.index_shuffle`, the same permutation of the
  same seed and epoch), with each process's share of the global batch where the host path puts it
  (process ``p`` reads every ``P``-th example of the stream, and its rows are ``p * B/P ..``);
* the gather of those rows (and, for Stacked MNIST, of its three digits per example) and their labels;
* the float conversion, by table lookup in :data:`jgan.data.UINT8_TO_FLOAT`, i.e. the very float32 values
  the host path computes in numpy, on any backend.

So a run's batches are those of the host path bit for bit (``tests/test_data_on_device.py``: 50 batches,
and again after a resume mid-epoch), and its iterator state (``{"next_index": calls}``) is the host
path's too. The host's work per step is constant in the batch size (``benchmarks/bench_input.py``).

``data.on_device`` chooses: ``auto`` (the default) uses this path for datasets of fixed-size images
(the built-in ones with a native size, and every dataset prepared from your own images by ``jgan data
prepare PATH``) whose uint8 bytes fit in ``data.device_limit_mb`` (and a quarter of a device's memory where the backend
reports it); ``on`` forces it (decoding a variable-size dataset once at start), failing before
anything compiles if it cannot apply; ``off`` keeps the host pipeline.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import numpy as np

from jgan.data import folder_datasets, index_shuffle, pipeline
from jgan.data.mixtures import MIXTURES
from jgan.data.specs import ImageSpec

log = logging.getLogger(__name__)

MODES = ("auto", "on", "off")


class DeviceArrays(NamedTuple):
  """The dataset as arrays (host numpy from :func:`load`; device arrays once placed).

  ``images`` uint8 ``[M, S, S, C0]`` (each already at the output size), ``labels`` int32 ``[M]``,
  ``rows`` int32 ``[N, k]``: the rows of ``images`` that example ``i`` stacks along the channels
  (Stacked MNIST: ``k = 3``), or a ``[0, 1]`` placeholder when example ``i`` is row ``i``;
  ``lut`` float32 ``[256]``: :data:`jgan.data.UINT8_TO_FLOAT`.
  """

  images: Any
  labels: Any
  rows: Any
  lut: Any


def _spec(data_cfg) -> ImageSpec:
  """The image dataset's spec: built in, or prepared from the user's images (``jgan data prepare PATH``)."""
  spec = folder_datasets.image_spec(data_cfg.name, data_cfg.get("data_dir", ""))
  if spec is None:
    raise ValueError(f"data.name={data_cfg.name!r} is no image dataset (built in or prepared)")
  return spec


def _layout(data_cfg, src):
  """``(base source, rows or None, n examples)`` of the training source ``src``
  (:func:`jgan.data.training_source`: a subset and Stacked MNIST recognised by their fields)."""
  indices = None
  if hasattr(src, "indices") and hasattr(src, "src"):  # jgan.data.Subset (data.num_examples)
    indices, src = np.asarray(src.indices, np.int32), src.src
  if _spec(data_cfg).stacked:
    base, rows = src.base, np.asarray(src.triples, np.int32)
    rows = rows if indices is None else rows[indices]
  else:
    base, rows = src, (None if indices is None else indices[:, None])
  return base, rows, len(rows) if rows is not None else len(base)


def _nbytes(data_cfg, base, rows) -> int:
  spec, s = _spec(data_cfg), data_cfg.image_size
  m = len(base) if spec.stacked or rows is None else len(rows)
  return m * s * s * (1 if spec.stacked else spec.channels)


def _device_budget() -> int | None:
  """A quarter of this process's first device's memory in bytes, where the backend reports it (GPU, TPU),
  else None. (A local device: the memory of another process's device cannot be asked for.)"""
  import jax

  stats = jax.local_devices()[0].memory_stats() or {}
  limit = stats.get("bytes_limit")
  return int(limit) // 4 if limit else None


def use_on_device(data_cfg, source, *, ensemble: bool = False) -> bool:
  """Whether a run of ``data_cfg`` uses this path (module docstring); raises ValueError (one line, before
  anything compiles) when ``data.on_device='on'`` cannot apply.

  ``source()`` returns the training source (:func:`jgan.data.training_source`); it is called only when
  the dataset's size decides.
  """
  mode = data_cfg.get("on_device", "auto")
  if mode == "off":
    return False
  why = None
  if data_cfg.name in MIXTURES:
    why = f"data.name={data_cfg.name!r} is sampled, not read ({', '.join(MIXTURES)} have no examples to keep)"
  elif ensemble:
    why = "ensembles (train.num_seeds > 1) read each member's batches on the host"
  if why is None:
    spec = _spec(data_cfg)
    if spec.stacked and data_cfg.image_size not in (28, 32):
      why = f"Stacked MNIST is kept as 28 px digits: data.image_size={data_cfg.image_size} (valid: 28, 32)"
    elif mode == "auto" and spec.native_size is None:
      return False  # decoding every variable-size image at start is for the user to ask (on)
  if why is None:
    base, rows, _ = _layout(data_cfg, source())
    size, limit = _nbytes(data_cfg, base, rows), data_cfg.get("device_limit_mb", 0) << 20
    budget = _device_budget()
    if size > limit or (budget is not None and size > budget):
      why = (
        f"the uint8 dataset ({size / 2**20:.0f} MiB) exceeds data.device_limit_mb="
        f"{data_cfg.get('device_limit_mb', 0)}"
        + (f" or a quarter of the device's memory ({budget / 2**20:.0f} MiB)" if budget is not None else "")
      )
  if why is None:
    return True
  if mode == "on":
    raise ValueError(f"data.on_device='on' cannot apply: {why}; valid choices: auto (use it where it fits), off")
  return False


def load(data_cfg, src) -> tuple[DeviceArrays, int]:
  """The training source ``src`` (:func:`jgan.data.training_source`) of an image dataset as host arrays
  (:class:`DeviceArrays`) and its size ``n``.

  Every stored image is decoded once and passed through :func:`jgan.data.preprocess_uint8` (the host
  pipeline's geometry, so the bytes are the ones it would convert). With ``data.num_examples`` only the
  chosen examples are stored; Stacked MNIST stores its base digits and the triples.
  """
  spec = _spec(data_cfg)
  size = data_cfg.image_size
  base, rows, n = _layout(data_cfg, src)
  if n < 2:
    raise ValueError(f"data.num_examples={n}: the on-device path needs at least 2 examples")
  keep = np.arange(len(base)) if spec.stacked or rows is None else rows[:, 0]
  c0 = 1 if spec.stacked else spec.channels
  images = np.empty((len(keep), size, size, c0), np.uint8)
  labels = np.empty((len(keep),), np.int32)
  for out, i in enumerate(keep):
    ex = base[int(i)]
    images[out] = pipeline.preprocess_uint8(np.asarray(ex["image"]), size, spec.crop)
    labels[out] = int(ex.get("label", -1))
  if not spec.stacked:
    rows = None  # the stored images are the examples, in order
  placeholder = np.zeros((0, 1), np.int32)
  arrays = DeviceArrays(images, labels, placeholder if rows is None else rows, pipeline.UINT8_TO_FLOAT.copy())
  return arrays, n


def offsets(lead: tuple[int, ...], process_count: int = 1) -> np.ndarray:
  """int32 ``lead + (B,)``: each global batch row's position in the call's slice of the stream.

  ``lead`` is ``(steps_per_call?, n_critic, B)``. Process ``p`` of ``P`` reads the stream positions
  ``p, p + P, ...`` (Grain's ``ds[p::P]``) and fills rows ``p * B/P .. (p + 1) * B/P - 1`` of every
  ``[.., B]`` batch (:func:`jgan.sharding.put_batch`); its ``t``-th example of the call is position
  ``t * P + p``.
  """
  *outer, b = lead
  per = b // process_count
  col = np.arange(b)
  p, j = col // per, col % per
  first = np.arange(int(np.prod(outer, dtype=np.int64))).reshape(tuple(outer) + (1,)) * per  # this call's t so far
  return ((first + j) * process_count + p).astype(np.int32)


def batch(arrays: DeviceArrays, epoch, within, *, offs: np.ndarray, n: int, seed: int, stacked: bool, with_labels):
  """The call's batch, computed inside a jitted function (module docstring).

  Args:
    arrays: the placed :class:`DeviceArrays`.
    epoch: uint32 scalar, the epoch of the call's first stream position; within: int32 scalar, its
      position in that epoch (:meth:`Cursor.__next__`).
    offs: :func:`offsets` (static).
    n: examples per epoch; seed: the run's seed; stacked: three digits per example (static).
    with_labels: also return ``"label"``.

  Returns:
    ``{"x": float32 offs.shape + (S, S, C) in [-1, 1], "label": int32 offs.shape}``.
  """
  import jax.numpy as jnp

  idx = index_shuffle.positions(epoch, within, offs, n, seed, jnp)
  if stacked:
    parts = arrays.rows[idx]  # [..., 3] digit rows
    x = jnp.concatenate([arrays.images[parts[..., k]] for k in range(parts.shape[-1])], axis=-1)
    lab = arrays.labels[parts]
    label = 100 * lab[..., 0] + 10 * lab[..., 1] + lab[..., 2]
  else:
    x, label = arrays.images[idx], arrays.labels[idx]
  out = {"x": arrays.lut[x.astype(jnp.int32)]}
  if with_labels:
    out["label"] = label.astype(jnp.int32)
  return out


class Cursor:
  """The on-device path's iterator: ``next()`` is the call's ``(epoch uint32, within int32)`` scalars.

  ``rows_per_call`` stream positions are consumed per call (the global batch rows). Its state is the host
  pipeline's, ``{"next_index": calls}`` (Grain counts batches of the per-process iterator, one per call).
  """

  def __init__(self, n: int, rows_per_call: int):
    self.n, self.rows, self.next_index = n, rows_per_call, 0

  def __iter__(self):
    return self

  def __next__(self) -> tuple[np.uint32, np.int32]:
    epoch, within = divmod(self.next_index * self.rows, self.n)
    self.next_index += 1
    return np.uint32(epoch % (1 << 32)), np.int32(within)

  def get_state(self) -> dict:
    return {"next_index": self.next_index}

  def set_state(self, state: dict) -> None:
    if not isinstance(state, dict) or "next_index" not in state:
      raise ValueError(
        f"the checkpoint's data state {str(state)[:200]} is not the single-process pipeline's "
        f"{{'next_index': N}} (written with data.worker_count > 0?); resume with the settings it was written with"
      )
    self.next_index = int(state["next_index"])


def make_iterator(data_cfg, lead: tuple[int, ...], n: int, process_count: int = 1) -> Cursor:
  """The :class:`Cursor` of a run whose calls take ``lead = (steps_per_call?, n_critic, B)`` examples."""
  del data_cfg, process_count  # the same cursor for every process: the shares are in the offsets
  return Cursor(n, int(np.prod(lead)))
