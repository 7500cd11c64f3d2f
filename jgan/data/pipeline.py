"""The host pipeline and the preprocessing every data path shares: Grain orders indices, one map per batch.

Datasets that do not go on the device (:mod:`jgan.data.on_device`) are read here. Earlier every example
went through its own Python map (decode, geometry, float conversion) and Grain stacked them; now Grain
shuffles, shards and batches *indices* and a single map per batch (:class:`BatchReader`) does the work
with numpy on whole batches: a fancy-indexed read of the decoded images (:class:`jgan.data.DecodedSource`,
Stacked MNIST's digits), one pad or stack, one float conversion. Only images that need a Pillow resize
(variable-size datasets such as CelebA) are still handled one by one inside the batch map.

Order: ``MapDataset.range(n).shuffle(seed).repeat()`` is the same permutation as the earlier
``MapDataset.source(src).shuffle(seed).repeat()`` (the shuffle maps positions to indices of its parent,
which here are the indices themselves), so the batches are the earlier ones bit for bit
(``tests/golden.json``). ``data.worker_count > 0`` runs the batch maps in Grain worker processes
(``mp_prefetch``): because batching happens before ``mp_prefetch``, each worker produces whole batches
(worker ``w`` of ``W`` batches ``w, w + W, ...``) and Grain returns them in order, so the batches do not
depend on the number of workers (``tests/test_data_on_device.py`` compares 0 and 2). ``data.prefetch``
batches are prepared ahead, per worker (or by threads in the main process with 0 workers).

:func:`preprocess_uint8` (geometry) and :data:`UINT8_TO_FLOAT` / :func:`to_float` (the float conversion)
are here so that the host pipelines and the on-device path (:mod:`jgan.data.on_device`) share one
definition without importing the package (:mod:`jgan.data` re-exports them).
"""

from __future__ import annotations

import numpy as np

PREFETCH_THREADS = 2  # batch maps run concurrently in the main process (worker_count = 0)


def preprocess_uint8(image: np.ndarray, size: int, crop: int = 0) -> np.ndarray:
  """uint8 [h, w, c] -> uint8 [size, size, c]: the geometric part of preprocessing.

  28 px digits asked for at 32 px are zero-padded by 2 (the usual DCGAN MNIST set-up); otherwise the
  image is centre-cropped to a square (side ``crop`` or the shorter side) and resized with Pillow's
  antialiasing bilinear filter.
  """
  h, w, c = image.shape
  if (h, w) == (28, 28) and size == 32:
    return np.pad(image, ((2, 2), (2, 2), (0, 0)))
  if (h, w) != (size, size):
    from PIL import Image

    side = crop or min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    image = image[top : top + side, left : left + side]
    pil = Image.fromarray(image[..., 0] if c == 1 else image)
    image = np.asarray(pil.resize((size, size), Image.Resampling.BILINEAR)).reshape(size, size, c)
  return np.asarray(image, np.uint8)


# float32 of every uint8 value, computed by the expression the host path always used: the on-device path
# and batch-level conversion look values up here, so every path gives these exact bits on any backend.
UINT8_TO_FLOAT = np.arange(256, dtype=np.uint8).astype(np.float32) / 127.5 - 1.0


def to_float(images: np.ndarray) -> np.ndarray:
  """uint8 [..., c] -> float32 in [-1, 1] (``x / 127.5 - 1``, elementwise; any leading shape, e.g. a batch)."""
  return np.asarray(images).astype(np.float32) / 127.5 - 1.0


def read_batch(src, idx: np.ndarray):
  """The examples ``idx`` (int ``[b]``) of a random-access source: ``(images, labels int32 [b])``.

  ``images`` is uint8 ``[b, h, w, c]`` when the source holds fixed-size decoded images
  (:class:`jgan.data.DecodedSource`, Stacked MNIST over one, subsets of either), read by fancy indexing;
  otherwise a list of ``b`` uint8 ``[h_i, w_i, c]`` arrays read one by one. The sources are recognised by
  their fields (``Subset.indices``, ``StackedSource.triples``, ``DecodedSource.decoded``): importing their
  package here would make an import circle.
  """
  idx = np.asarray(idx, np.int64)
  if hasattr(src, "indices") and hasattr(src, "src"):  # jgan.data.Subset
    return read_batch(src.src, src.indices[idx])
  if hasattr(src, "triples") and hasattr(src, "base"):  # jgan.data.stacked.StackedSource
    images, labels = read_batch(src.base, src.triples[idx].reshape(-1))
    k = src.triples.shape[1]
    if isinstance(images, list):
      images = np.stack([np.asarray(x).reshape(28, 28, 1) for x in images])
    images = images.reshape((len(idx), k) + images.shape[1:3] + (-1,))
    images = np.concatenate([images[:, j] for j in range(k)], axis=-1)  # digits as the channels
    d = labels.reshape(len(idx), k)
    return images, (100 * d[:, 0] + 10 * d[:, 1] + d[:, 2]).astype(np.int32)
  if hasattr(src, "decoded") and hasattr(src, "images"):  # jgan.data.DecodedSource
    for i in idx[~src.decoded[idx]]:
      src[i]  # decodes it once into src.images
    return src.images[idx], src.labels[idx].astype(np.int32)
  exs = list(_threads().map(lambda i: src[int(i)], idx))  # decoders release the GIL
  return [np.asarray(ex["image"]) for ex in exs], np.asarray([ex.get("label", -1) for ex in exs], np.int32)


_POOL = None
DECODE_THREADS = 8  # per process: images decoded / resized one by one (JPEG, Pillow) in parallel


def _threads():
  """The process's thread pool for per-image work (created on first use, so each Grain worker has its own)."""
  global _POOL
  if _POOL is None:
    from concurrent.futures import ThreadPoolExecutor

    _POOL = ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="jgan-decode")
  return _POOL


class BatchReader:
  """Grain's batch map: int ``[b]`` indices -> ``{"x": float32 [b, S, S, C] in [-1, 1], "label": int32 [b]}``.

  The geometry of :func:`preprocess_uint8` (vectorised for the 28 -> 32 px pad and for images already at
  the output size), then :func:`to_float` on the whole batch: per element the same arithmetic as
  :func:`jgan.data.preprocess_image`, so the same bits.
  """

  def __init__(self, src, size: int, crop: int):
    self.src, self.size, self.crop = src, size, crop

  def __call__(self, idx: np.ndarray) -> dict[str, np.ndarray]:
    images, labels = read_batch(self.src, idx)
    s = self.size
    if isinstance(images, np.ndarray) and images.shape[1:3] == (s, s):
      u8 = images
    elif isinstance(images, np.ndarray) and images.shape[1:3] == (28, 28) and s == 32:
      u8 = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)))
    else:
      u8 = np.stack(list(_threads().map(lambda x: preprocess_uint8(np.asarray(x), s, self.crop), images)))
    return {"x": to_float(u8), "label": labels}


def make_iterator(src, data_cfg, batch_size: int, seed: int, shard_index: int = 0, shard_count: int = 1):
  """The host pipeline's infinite, checkpointable iterator of this process's batches (module docstring).

  ``src`` is the run's random-access source (:func:`jgan.data.training_source`). Batches as
  :func:`jgan.data.make_iterator` documents them; ``data_cfg.worker_count`` Grain worker processes (0:
  the main process) and ``data_cfg.prefetch`` batches prepared ahead.
  """
  import grain

  from jgan.data import folder_datasets

  spec = folder_datasets.image_spec(data_cfg.name, data_cfg.get("data_dir", ""))  # built in or prepared
  reader = BatchReader(src, data_cfg.image_size, spec.crop if spec is not None else 0)
  ds = grain.MapDataset.range(len(src)).shuffle(seed=seed).repeat()
  if shard_count > 1:
    ds = ds[shard_index::shard_count]
  ds = ds.batch(batch_size, drop_remainder=True).map(reader)
  prefetch = int(data_cfg.get("prefetch", 2))
  threads = PREFETCH_THREADS if prefetch > 0 and data_cfg.worker_count == 0 else 0
  it_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=threads, prefetch_buffer_size=prefetch))
  if data_cfg.worker_count > 0:
    from absl import flags

    if not flags.FLAGS.is_parsed():  # Grain reads its absl flags in the workers; jgan's command line has none
      flags.FLAGS.mark_as_parsed()
    options = grain.MultiprocessingOptions(num_workers=data_cfg.worker_count, per_worker_buffer_size=max(prefetch, 1))
    it_ds = it_ds.mp_prefetch(options)
  return iter(it_ds)
