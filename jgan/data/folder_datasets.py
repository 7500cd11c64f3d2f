"""A researcher's own images as a jgan dataset: ``jgan data prepare PATH --name NAME --image_size S``.

PATH is a folder (searched recursively) or a zip of PNG / JPEG / WebP / BMP files, e.g. a stylegan2-ada
dataset zip. :func:`prepare` converts every image once (:mod:`jgan.data.image_files`: modes, EXIF
orientation, centre crop, Lanczos resize to ``S`` px) and writes a TFDS dataset of PNG records as
array_record under ``<data_dir>/<NAME>/1.0.0`` (features ``image``, ``file_name`` (the path in the source),
``label`` when labelled), like mnist5k and without TensorFlow; ``tfds.data_source(NAME,
data_dir=...)`` reads it (TFDS's read-only builder: nothing needs registering). Its ``metadata.json``
holds jgan's record of how it was made (:data:`RECORD_KEY`): the source, size, channels, crop, labels
and class names, the files skipped as unreadable, a fingerprint of the stored examples. That record is
how a prepared dataset is found again by name (:func:`find_spec`, :func:`prepared_names`): the data
directory is the registry, so ``--config.data.name=NAME`` (with the same ``data.data_dir``) trains on it.

Labels (``labels``): ``subfolders`` (class = the top-level sub-folder, classes sorted by name),
``dataset.json`` (stylegan2-ada's ``{"labels": [[path, class], ...]}`` at the root), ``none``, or
``auto`` (dataset.json when the root has one, else none: sub-folders are often just shards, as in
FFHQ's ``00000/``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import hashlib
import io
import json
import logging
import os
import re
import shutil
from typing import NamedTuple

from jgan.data import image_files, mixtures
from jgan.data.prepare import default_data_dir
from jgan.data.specs import IMAGE_DATASETS, ImageSpec

log = logging.getLogger(__name__)

VERSION = "1.0.0"
RECORD_KEY = "jgan_folder_dataset"  # the key of jgan's record in the TFDS metadata.json
LABEL_MODES = ("auto", "subfolders", "dataset.json", "none")
CHANNELS = (0, 1, 3)  # 0: 1 if every image is grey, else 3
MAX_IMAGE_SIZE = 4096
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")  # TFDS dataset names: snake_case
SHOWN = 5  # bad / ignored files named in a message


class Request(NamedTuple):
  """What to prepare: the source ``path``, the dataset ``name``, its side ``image_size`` in px, ``crop``
  (``center`` | ``none``), ``labels`` (:data:`LABEL_MODES`), ``channels`` (:data:`CHANNELS`), whether to
  ``skip_bad`` unreadable files, and the TFDS ``data_dir`` ("" = TFDS's default)."""

  path: str
  name: str
  image_size: int
  crop: str = "center"
  labels: str = "auto"
  channels: int = 0
  skip_bad: bool = False
  data_dir: str = ""


class Plan(NamedTuple):
  """A scanned source: the image files in order, their labels (None: unlabelled) and class names, the
  channel count, files already known to be bad (name -> reason), files ignored (no image extension),
  and how many images each Pillow mode had."""

  tree: image_files.FileTree
  images: list[str]
  labels: list[int] | None
  class_names: list[str]
  channels: int
  bad: dict[str, str]
  ignored: list[str]
  modes: dict[str, int]


def root_dir(data_dir: str) -> str:
  """The TFDS data directory ``data_dir`` names ("" or None: ``$TFDS_DATA_DIR`` or ~/tensorflow_datasets)."""
  return os.path.expanduser(data_dir) if data_dir else default_data_dir()


def dataset_dir(name: str, data_dir: str) -> str:
  """Where dataset ``name`` is (or would be) prepared: ``<data_dir>/<name>/1.0.0``."""
  return os.path.join(root_dir(data_dir), name, VERSION)


def read_record(name: str, data_dir: str) -> dict | None:
  """jgan's record (module docstring) of the dataset ``name`` prepared under ``data_dir``, or None."""
  path = os.path.join(dataset_dir(name, data_dir), "metadata.json")
  try:
    with open(path) as f:
      return json.load(f).get(RECORD_KEY)
  except (OSError, ValueError):
    return None


def find_spec(name: str, data_dir: str) -> ImageSpec | None:
  """The :class:`ImageSpec` of the prepared dataset ``name`` under ``data_dir``, or None if there is none.

  Its ``native_size`` is the prepared size, ``num_classes`` 0 when unlabelled, ``fingerprint`` identifies
  the stored examples (it keys cached real-image features).
  """
  if not NAME_PATTERN.fullmatch(name) or (rec := read_record(name, data_dir)) is None:
    return None
  return ImageSpec(
    name, rec["channels"], rec["image_size"], num_classes=len(rec["class_names"]), fingerprint=rec["fingerprint"]
  )


def image_spec(name: str, data_dir: str) -> ImageSpec | None:
  """The :class:`ImageSpec` of image dataset ``name``: built in (:data:`jgan.data.IMAGE_DATASETS`) or
  prepared under ``data_dir`` (:func:`find_spec`); None for a 2-D mixture or an unknown name. The data
  layer's readers (:mod:`jgan.data.pipeline`, :mod:`jgan.data.on_device`) look datasets up here."""
  return IMAGE_DATASETS[name] if name in IMAGE_DATASETS else find_spec(name, data_dir)


def prepared_names(data_dir: str) -> list[str]:
  """Names of the datasets prepared from folders / zips under ``data_dir``, sorted."""
  root = root_dir(data_dir)
  try:
    entries = sorted(os.listdir(root))
  except OSError:
    return []
  return [n for n in entries if NAME_PATTERN.fullmatch(n) and read_record(n, data_dir) is not None]


def listing(names, total: int | None = None) -> str:
  """``a, b, c`` for at most :data:`SHOWN` names, then ``and N more``."""
  names = list(names)
  total = len(names) if total is None else total
  shown = ", ".join(names[:SHOWN])
  return shown + (f" and {total - SHOWN} more" if total > SHOWN else "")


def check_request(req: Request) -> None:
  """Raises ValueError for a bad argument of ``req`` (cheap checks, before any file is read)."""
  if req.labels not in LABEL_MODES:
    raise ValueError(f"unknown --labels {req.labels!r}; valid choices: {', '.join(LABEL_MODES)}")
  if req.crop not in image_files.CROPS:
    raise ValueError(f"unknown --crop {req.crop!r}; valid choices: {', '.join(image_files.CROPS)}")
  if req.channels not in CHANNELS:
    raise ValueError(f"--channels {req.channels!r} is not supported; valid choices: 1, 3, or auto")
  if not 0 < req.image_size <= MAX_IMAGE_SIZE:
    raise ValueError(f"--image_size {req.image_size} must be a side in px from 1 to {MAX_IMAGE_SIZE}")
  if not NAME_PATTERN.fullmatch(req.name):
    raise ValueError(f"--name {req.name!r} must be snake_case (a lower-case letter, then letters, digits, _)")
  builtin = sorted(IMAGE_DATASETS) + sorted(mixtures.MIXTURES)
  if req.name in builtin:
    raise ValueError(
      f"--name {req.name!r} is a built-in jgan dataset; choose another name (built in: {', '.join(builtin)})"
    )
  import tensorflow_datasets as tfds

  if req.name in tfds.list_builders(with_community_datasets=False):
    raise ValueError(
      f"--name {req.name!r} is a TFDS catalogue dataset (tfds.data_source would read that one); choose another name"
    )
  where = dataset_dir(req.name, req.data_dir)
  if os.path.exists(where):
    raise ValueError(f"dataset {req.name!r} is already prepared in {where}; choose another --name or `rm -r {where}`")


def _dataset_json_labels(tree: image_files.FileTree, images: list[str]) -> tuple[list[int], list[str]]:
  """Class labels of ``images`` from stylegan2-ada's ``dataset.json`` at the root of ``tree``."""
  if "dataset.json" not in tree.names:
    raise ValueError(
      f"--labels dataset.json: {tree.path} has no dataset.json at its root; valid choices: {', '.join(LABEL_MODES)}"
    )
  try:
    table = json.loads(tree.read("dataset.json")).get("labels")
  except (ValueError, AttributeError) as e:
    raise ValueError(f"{tree.path}: dataset.json is not a JSON object with 'labels': {e}") from None
  if table is None:
    raise ValueError(f"{tree.path}: dataset.json holds no labels ('labels': null); use --labels none")
  by_name = {}
  for entry in table:
    name, value = entry
    if isinstance(value, list):  # a one-hot vector (stylegan2-ada writes class ids, some tools one-hots)
      if sorted(value) != [0] * (len(value) - 1) + [1]:
        raise ValueError(f"dataset.json labels {name!r} with {value!r}: only class ids or one-hot vectors work")
      value = value.index(1)
    if not isinstance(value, int) or value < 0:
      raise ValueError(f"dataset.json labels {name!r} with {value!r}: class ids must be integers >= 0")
    by_name[name] = value
  missing = [n for n in images if n not in by_name]
  if missing:
    raise ValueError(f"dataset.json has no label for {len(missing)} image(s): {listing(missing)}")
  labels = [by_name[n] for n in images]
  return labels, [str(i) for i in range(max(labels) + 1)]


def _subfolder_labels(tree: image_files.FileTree, images: list[str]) -> tuple[list[int], list[str]]:
  """Class labels of ``images`` from their top-level sub-folder of ``tree`` (classes sorted by name)."""
  top = [n for n in images if "/" not in n]
  if len(top) == len(images):
    raise ValueError(
      f"--labels subfolders: {tree.path} has no sub-folders of images (one per class); "
      f"valid choices: {', '.join(LABEL_MODES)}"
    )
  if top:
    raise ValueError(f"--labels subfolders: {len(top)} image(s) lie outside any class sub-folder: {listing(top)}")
  folders = [n.split("/", 1)[0] for n in images]
  names = sorted(set(folders))
  index = {c: i for i, c in enumerate(names)}
  return [index[f] for f in folders], names


def scan(req: Request, *, progress: bool = True) -> Plan:
  """Lists ``req.path``, reads labels and every image's header (not its pixels).

  Raises ValueError for a path that is no folder / zip, no images, or labels that cannot be read.
  """
  from tqdm import tqdm

  tree = image_files.FileTree(req.path)
  images = [n for n in tree.names if image_files.is_image_name(n)]
  ignored = [n for n in tree.names if not image_files.is_image_name(n) and n != "dataset.json"]
  if not images:
    exts = ", ".join(image_files.IMAGE_EXTENSIONS)
    other = f" ({len(ignored)} other files: {listing(ignored)})" if ignored else ""
    raise ValueError(f"no image files ({exts}) in {tree.path}{other}")
  mode = req.labels
  if mode == "auto":
    mode = "dataset.json" if "dataset.json" in tree.names else "none"
  labels: list[int] | None = None
  class_names: list[str] = []
  if mode == "subfolders":
    labels, class_names = _subfolder_labels(tree, images)
  elif mode == "dataset.json":
    labels, class_names = _dataset_json_labels(tree, images)
  bad: dict[str, str] = {}
  modes: dict[str, int] = {}
  with concurrent.futures.ThreadPoolExecutor(_workers()) as pool:
    bar = tqdm(total=len(images), desc="scan", unit="img", disable=not progress, dynamic_ncols=True, leave=False)
    for name, result in zip(images, pool.map(lambda n: _try(image_files.probe_mode, tree, n), images)):
      if isinstance(result, image_files.BadImage):
        bad[name] = str(result)
      else:
        modes[result] = modes.get(result, 0) + 1
      bar.update()
    bar.close()
  channels = req.channels or (1 if set(modes) <= image_files.GRAYSCALE_MODES else 3)
  return Plan(tree, images, labels, class_names, channels, bad, ignored, dict(sorted(modes.items())))


def _workers() -> int:
  return min(8, os.cpu_count() or 1)


def _try(fn, *args):
  """``fn(*args)``, or the :class:`BadImage` it raised (so a thread pool's map goes on)."""
  try:
    return fn(*args)
  except image_files.BadImage as e:
    return e


class BadImages(ValueError):
  """Image files that cannot be read, without ``skip_bad``: the message names them."""


def _refusal(bad: dict[str, str], total: int) -> BadImages:
  named = [f"{n} ({why})" for n, why in sorted(bad.items())]
  return BadImages(
    f"{len(bad)} of {total} image files cannot be read: {listing(named)}; fix or remove them, or pass "
    "--skip_bad to leave them out (they are then listed in the dataset's metadata)"
  )


def _builder(req: Request, plan: Plan, progress: bool):
  """A TFDS GeneratorBasedBuilder (not registered) that writes ``plan``'s images as dataset ``req.name``."""
  import tensorflow_datasets as tfds
  from tensorflow_datasets.core import registered

  s, c = req.image_size, plan.channels
  features = {"image": tfds.features.Image(shape=(s, s, c), encoding_format="png"), "file_name": tfds.features.Text()}
  if plan.labels is not None:
    features["label"] = tfds.features.ClassLabel(names=plan.class_names)
  dataset_name = req.name

  with registered.skip_registration():  # a name per prepare call: TFDS's registry would refuse the second

    class FolderImages(tfds.core.GeneratorBasedBuilder):
      name = dataset_name
      VERSION = tfds.core.Version(VERSION)

      def _info(self):
        return tfds.core.DatasetInfo(
          builder=self,
          description=f"Images from {plan.tree.path}, prepared by `jgan data prepare` at {s} px.",
          features=tfds.features.FeaturesDict(features),
          supervised_keys=("image", "label") if plan.labels is not None else None,
          metadata=tfds.core.MetadataDict(),
        )

      def _split_generators(self, dl_manager):
        del dl_manager
        return {"train": self._generate_examples()}

      def _generate_examples(self):
        yield from _examples(req, plan, self.info.metadata, progress)

  return FolderImages(data_dir=root_dir(req.data_dir), file_format="array_record")


def _examples(req: Request, plan: Plan, metadata: dict, progress: bool):
  """Yields ``(file name, {"image": PNG bytes, "file_name": path in the source, "label": class})`` for every
  readable image in order;
  then refuses (:class:`BadImages`) or records what was skipped in ``metadata``."""
  from tqdm import tqdm

  bad = dict(plan.bad)
  todo = [i for i, n in enumerate(plan.images) if n not in bad]
  digest = hashlib.sha256()
  written = 0
  load = lambda i: _try(image_files.load, plan.tree, plan.images[i], plan.channels, req.image_size, req.crop)
  bar = tqdm(total=len(todo), desc=f"prepare {req.name}", unit="img", disable=not progress, dynamic_ncols=True)
  with concurrent.futures.ThreadPoolExecutor(_workers()) as pool:
    for start in range(0, len(todo), 256):  # chunks bound the decoded images held at once
      chunk = todo[start : start + 256]
      for i, arr in zip(chunk, pool.map(load, chunk)):
        bar.update()
        name = plan.images[i]
        if isinstance(arr, image_files.BadImage):
          bad[name] = str(arr)
          continue
        png = image_files.png_bytes(arr)
        example: dict[str, bytes | int | str] = {"image": png, "file_name": name}
        digest.update(name.encode() + b"\0" + png)
        if plan.labels is not None:
          example["label"] = plan.labels[i]
          digest.update(str(plan.labels[i]).encode())
        written += 1
        yield name, example
  bar.close()
  if bad and not req.skip_bad:
    raise _refusal(bad, len(plan.images))
  if not written:
    raise BadImages(f"none of the {len(plan.images)} image files in {plan.tree.path} can be read")
  metadata[RECORD_KEY] = {
    "source": plan.tree.path,
    "source_kind": plan.tree.kind,
    "image_size": req.image_size,
    "channels": plan.channels,
    "crop": req.crop,
    "labels": req.labels,
    "class_names": plan.class_names,
    "num_examples": written,
    "skipped": [{"file": n, "error": why} for n, why in sorted(bad.items())],
    "ignored": plan.ignored,
    "modes": plan.modes,
    "fingerprint": digest.hexdigest(),
    "prepared": datetime.datetime.now().isoformat(timespec="seconds"),
    "jgan_version": _jgan_version(),
  }


def _jgan_version() -> str:
  from importlib import metadata

  with contextlib.suppress(metadata.PackageNotFoundError):
    return metadata.version("jgan")
  return ""


class Prepared(NamedTuple):
  """What :func:`prepare` made: the dataset's directory and jgan's record of it (module docstring)."""

  path: str
  record: dict


def prepare(req: Request, *, progress: bool = True) -> Prepared:
  """Prepares the images of ``req.path`` as dataset ``req.name`` (module docstring).

  Raises:
    ValueError: a bad argument (:func:`check_request`), no images, unreadable labels, or
      (:class:`BadImages`) image files that cannot be read while ``req.skip_bad`` is False; nothing is
      left behind.
  """
  import tensorflow_datasets as tfds

  check_request(req)
  plan = scan(req, progress=progress)
  try:
    tfds.disable_progress_bar()  # jgan's bar counts images against the total; TFDS's does not know it
    builder = _builder(req, plan, progress)
    with contextlib.redirect_stdout(io.StringIO()):  # TFDS prints "Downloading and preparing ..." lines
      builder.download_and_prepare()
  finally:
    plan.tree.close()
    parent = os.path.dirname(dataset_dir(req.name, req.data_dir))
    if os.path.isdir(parent) and not os.listdir(parent):  # a refused prepare leaves TFDS's empty folder
      shutil.rmtree(parent, ignore_errors=True)
  record = read_record(req.name, req.data_dir)
  assert record is not None, "TFDS wrote no metadata.json"
  log.info("prepared %r: %d images in %s", req.name, record["num_examples"], builder.data_dir)
  return Prepared(str(builder.data_dir), record)
