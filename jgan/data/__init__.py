"""Data: one interface for TFDS image datasets, the embedded mnist5k, the user's own image folders and zips
(prepared once, :mod:`jgan.data.folder_datasets`) and generated 2-D mixtures.

``make_iterator(data_cfg, batch_size, seed, ...)`` returns an infinite, checkpointable iterator
(``get_state`` / ``set_state``) of host batches:

* images: ``{"x": float32 [batch_size, S, S, C] in [-1, 1], "label": int32 [batch_size]}``
  (``stacked_mnist5k``: three mnist5k digits as the RGB channels, label ``100 d0 + 10 d1 + d2``,
  :mod:`jgan.data.stacked`);
* 2-D mixtures: ``{"x": float32 [batch_size, 2]}``.

Image datasets are read with ``tfds.data_source`` (random access into prepared array_record files, no
TensorFlow needed) and ordered by Grain: shuffled with the run's seed, reshuffled every epoch, split by
process (``shard_index``/``shard_count``), deterministic for a given process count.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from jgan.data import folder_datasets, mixtures, mnist5k, stacked
from jgan.data.pipeline import UINT8_TO_FLOAT, preprocess_uint8, to_float  # noqa: F401  (re-exported)
from jgan.data.specs import IMAGE_DATASETS, ImageSpec  # noqa: F401  (re-exported: jgan.data.ImageSpec)

MIXTURES = mixtures.MIXTURES  # name -> Mixture(centres, sigma)
DATASETS = tuple(sorted(IMAGE_DATASETS)) + tuple(MIXTURES)  # built in; prepared folders come on top


def check_dataset_name(name: str, data_dir: str = "", what: str = "data.name") -> None:
  """Raises ValueError unless ``name`` is built in or prepared from a folder under ``data_dir`` ("": TFDS's
  default), listing both kinds; the message names the setting ``what`` (a config key, or a flag such as
  ``--data``) it came from."""
  if name in DATASETS or folder_datasets.find_spec(name, data_dir) is not None:
    return
  prepared = folder_datasets.prepared_names(data_dir)
  given = f"{what} {name!r}" if what.startswith("--") else f"{what}={name!r}"
  raise ValueError(
    f"unknown {given}; valid choices: {', '.join(DATASETS)}, or one prepared under "
    f"{folder_datasets.root_dir(data_dir)!r}: {', '.join(prepared) if prepared else 'none'} "
    f"(`jgan data prepare PATH --name {name} --image_size S` prepares a folder or zip of images)"
  )


def image_spec(data_cfg) -> ImageSpec:
  """The :class:`ImageSpec` of image dataset ``data_cfg.name``: built in, or prepared from a folder under
  ``data_cfg.data_dir``. Raises ValueError for an unknown name or a 2-D mixture."""
  name = data_cfg.name
  spec = folder_datasets.image_spec(name, data_cfg.get("data_dir", ""))
  if spec is None:
    check_dataset_name(name, data_cfg.get("data_dir", ""))
    raise ValueError(f"data.name={name!r} is a 2-D mixture, not an image dataset")
  return spec


def is_prepared_folder(data_cfg) -> bool:
  """Whether ``data_cfg.name`` is a dataset prepared from the user's own images (not built in)."""
  return data_cfg.name not in DATASETS


def sample_shape(data_cfg) -> tuple[int, ...]:
  """Shape of one sample: ``(S, S, C)`` for images (S = ``data_cfg.image_size``), ``(2,)`` for mixtures.

  C is ``data_cfg.channels`` when a resolved config holds it (so a run's generator loads without its
  dataset), else the dataset's.
  """
  if data_cfg.name in MIXTURES:
    return (2,)
  channels = data_cfg.get("channels", 0) or image_spec(data_cfg).channels
  return (data_cfg.image_size, data_cfg.image_size, channels)


def check_image_data(data_cfg) -> None:
  """Raises ValueError when ``data_cfg`` asks for images a dataset cannot give: a prepared folder at
  another size than it was prepared at, or ``data.channels`` other than the dataset's."""
  if data_cfg.name in MIXTURES:
    return
  spec = image_spec(data_cfg)
  if is_prepared_folder(data_cfg) and data_cfg.image_size != spec.native_size:
    raise ValueError(
      f"data.image_size={data_cfg.image_size} but dataset {data_cfg.name!r} is prepared at {spec.native_size} px; "
      f"set --config.data.image_size={spec.native_size} (or prepare it again at {data_cfg.image_size} px "
      "under another --name)"
    )
  channels = data_cfg.get("channels", 0)
  if channels not in (0, spec.channels):
    raise ValueError(
      f"data.channels={channels} differs from the {spec.channels} channel(s) of dataset {data_cfg.name!r}; "
      "leave it 0 (it is resolved from the dataset)"
    )


def preprocess_image(image: np.ndarray, size: int, crop: int = 0) -> np.ndarray:
  """uint8 [h, w, c] -> float32 [size, size, c] in [-1, 1]: :func:`preprocess_uint8`, then :func:`to_float`."""
  return to_float(preprocess_uint8(image, size, crop))


def tfds_source(data_cfg, split: str | None = None):
  """The random-access ``tfds.data_source`` of an image dataset; clear error if it is not prepared."""
  import tensorflow_datasets as tfds

  spec = image_spec(data_cfg)
  split = split or data_cfg.split or spec.train_split
  data_dir = data_cfg.data_dir or None
  builtin = data_cfg.name in IMAGE_DATASETS
  if spec.tfds_name == "mnist5k" and builtin:
    data_dir = mnist5k.ensure_prepared(data_dir)
  if data_cfg.get("download", False) and spec.tfds_name != "mnist5k" and builtin:
    from jgan.data import prepare

    prepare.prepare(data_cfg.name, data_dir)  # a no-op once prepared
  try:
    src = tfds.data_source(spec.tfds_name, split=split, data_dir=data_dir, download=False)
  except Exception as e:  # TFDS raises several types (AssertionError, DatasetNotFoundError, ...)
    from jgan.data import prepare

    why = prepare.diagnose(data_cfg.name, data_dir, split) if builtin else ""
    if not why:
      first = str(e).splitlines()[0] if str(e) else ""
      why = f"reading {spec.tfds_name!r} split {split!r} failed: {type(e).__name__}: {first}"
    raise prepare.DatasetNotReady(f"{why} (or set config.data.download=True to prepare it at train time)") from e
  return stacked.StackedSource(src, split) if spec.stacked else src


# Datasets of fixed-size images up to this many uint8 bytes are decoded once and kept in memory.
CACHE_LIMIT_BYTES = 1 << 30


class DecodedSource:
  """A random-access source that decodes each example of ``src`` once and then serves it from memory.

  Reading a TFDS record decodes its PNG (a quarter of a millisecond for a 28 px digit here), so a step
  of 64 digits spent ~15 ms in the decoder and one with 5 critic batches ~80 ms: more than the DCGAN
  step itself. Records are decoded on first access (a short run decodes only what it reads) into
  preallocated uint8 arrays; later epochs read array views. Same length and records as ``src``, so
  Grain's index-based shuffle gives the same batches bit for bit.

  ``shape`` is every image's ``(H, W, C)``; examples are ``{"image": uint8 [H, W, C], "label": int32}``.
  """

  def __init__(self, src, shape: tuple[int, int, int]):
    self.src = src
    n = len(src)
    self.images = np.zeros((n,) + tuple(shape), np.uint8)  # untouched pages cost no memory
    self.labels = np.zeros((n,), np.int32)
    self.decoded = np.zeros((n,), bool)

  def __len__(self) -> int:
    return len(self.labels)

  def __getitem__(self, i) -> dict[str, np.ndarray]:
    if not self.decoded[i]:
      ex = self.src[int(i)]
      self.images[i] = np.asarray(ex["image"]).reshape(self.images.shape[1:])
      self.labels[i] = ex.get("label", -1)
      self.decoded[i] = True
    return {"image": self.images[i], "label": self.labels[i]}


def cached_source(data_cfg, split: str | None = None):
  """``tfds_source``, decoded into memory (:class:`DecodedSource`) when its images are fixed-size and all
  of them fit in :data:`CACHE_LIMIT_BYTES`; the lazily decoding TFDS source otherwise."""
  spec = image_spec(data_cfg)
  if spec.stacked:  # decode the base digits once; stacking them is a cheap concatenation
    base = cached_source(_base_cfg(data_cfg), split)
    return stacked.StackedSource(base, split or data_cfg.split or spec.train_split)
  src = tfds_source(data_cfg, split)
  if spec.native_size is None:
    return src
  shape = (spec.native_size, spec.native_size, spec.channels)
  if len(src) * int(np.prod(shape)) > CACHE_LIMIT_BYTES:
    return src
  return DecodedSource(src, shape)


def _base_cfg(data_cfg):
  """The data config of a stacked dataset's base digits (``mnist5k`` for ``stacked_mnist5k``)."""
  base = data_cfg.copy_and_resolve_references()
  base.name = IMAGE_DATASETS[data_cfg.name].tfds_name
  if "channels" in base:
    base.channels = 0  # the digits' own (the resolved 3 is the stack's)
  return base


def split_batches(
  data_cfg, split: str, limit: int | None, batch_size: int, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
  """Batches ``(images float32 [b, S, S, C] in [-1, 1], labels int32 [b])`` of a dataset split.

  The first ``limit`` examples (all if None) of a fixed permutation drawn with ``seed``, decoded as
  training decodes them (:func:`tfds_source`, :func:`preprocess_image`); so a
  smaller ``limit`` gives a prefix of a larger one.
  """
  src = tfds_source(data_cfg, split)
  crop = image_spec(data_cfg).crop
  order = np.random.default_rng(seed).permutation(len(src))[:limit]
  for start in range(0, len(order), batch_size):
    exs = [src[int(i)] for i in order[start : start + batch_size]]
    images = [preprocess_image(np.asarray(ex["image"]), data_cfg.image_size, crop) for ex in exs]
    yield np.stack(images), np.asarray([int(ex.get("label", -1)) for ex in exs], np.int32)


def split_arrays(data_cfg, split: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """A dataset split as arrays: images float32 ``[N, S, S, C]`` in [-1, 1] and labels int32 ``[N]``.

  The order and ``limit`` of :func:`split_batches`.
  """
  batches = list(split_batches(data_cfg, split, limit, batch_size=1000))
  return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def num_classes(data_cfg) -> int:
  """Classes of the dataset's labels (``ImageSpec.num_classes``; 0 for unlabelled data and mixtures)."""
  return 0 if data_cfg.name in MIXTURES else image_spec(data_cfg).num_classes  # image_spec: unknown names fail


class Subset:
  """The examples ``indices`` of a random-access source ``src``, as a random-access source."""

  def __init__(self, src, indices: np.ndarray):
    self.src, self.indices = src, np.asarray(indices)

  def __len__(self) -> int:
    return len(self.indices)

  def __getitem__(self, i):
    return self.src[int(self.indices[i])]


def subset_indices(n_total: int, n: int) -> np.ndarray:
  """The examples a run with ``data.num_examples = n`` trains on: the first ``n`` of a fixed permutation.

  The permutation is drawn with seed 0 whatever the run's seed, so every seed of a limited-data study
  sees the same ``n`` examples (and a smaller ``n`` is a prefix of a larger one). int64 ``[n]``.
  """
  if not 0 < n <= n_total:
    raise ValueError(f"data.num_examples={n} must be in 1..{n_total} (the split's size), or 0 for all")
  return np.random.default_rng(0).permutation(n_total)[:n]


def training_source(data_cfg, split: str | None = None):
  """The random-access source a run trains on: :func:`cached_source`, limited to the :func:`subset_indices`
  examples (a :class:`Subset`) when ``data_cfg.num_examples = n > 0``."""
  src = cached_source(data_cfg, split)
  if data_cfg.get("num_examples", 0):
    src = Subset(src, subset_indices(len(src), data_cfg.num_examples))
  return src


def make_image_dataset(data_cfg, seed: int, split: str | None = None, shard_index: int = 0, shard_count: int = 1):
  """A Grain ``MapDataset`` of preprocessed examples: shuffled per epoch with ``seed``, repeated, sharded.

  With ``data_cfg.num_examples = n > 0`` only the :func:`subset_indices` examples are used.
  """
  import grain

  spec = image_spec(data_cfg)
  size = data_cfg.image_size

  def prep(ex):
    return {"x": preprocess_image(np.asarray(ex["image"]), size, spec.crop), "label": np.int32(ex.get("label", -1))}

  src = cached_source(data_cfg, split)
  if data_cfg.get("num_examples", 0):
    src = Subset(src, subset_indices(len(src), data_cfg.num_examples))
  ds = grain.MapDataset.source(src).shuffle(seed=seed).repeat()
  if shard_count > 1:
    ds = ds[shard_index::shard_count]
  return ds.map(prep)


def make_iterator(data_cfg, batch_size: int, seed: int, shard_index: int = 0, shard_count: int = 1):
  """Infinite checkpointable iterator of this process's batches (see the module docstring).

  ``batch_size`` is the per-process batch; mixtures draw the global batch and keep this process's part.
  Image batches are read and converted a whole batch at a time (:mod:`jgan.data.pipeline`), in
  ``data_cfg.worker_count`` Grain worker processes (0: the main process); the batches do not depend on
  the worker count.
  """
  check_dataset_name(data_cfg.name, data_cfg.get("data_dir", ""))
  if data_cfg.name in MIXTURES:
    return mixtures.MixtureIterator(data_cfg.name, batch_size, seed, shard_index, shard_count)
  from jgan.data import pipeline

  return pipeline.make_iterator(training_source(data_cfg), data_cfg, batch_size, seed, shard_index, shard_count)
