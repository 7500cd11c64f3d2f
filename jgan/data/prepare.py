"""Getting a TFDS dataset onto disk in the form jgan reads: ``jgan data prepare NAME [--data_dir DIR]``.

jgan reads image datasets with ``tfds.data_source`` (random access into array_record files, no
TensorFlow at training time). :func:`prepare` runs the TFDS builder's ``download_and_prepare`` with
``file_format="array_record"`` for jgan's datasets (``mnist``, ``fashion_mnist``, ``cifar10``,
``celeb_a``, ``lsun_bedroom``, ...) or any TFDS name. Most TFDS builders need TensorFlow *to prepare*
(they encode images with it); it comes in the optional extra ``pip install 'jgan[prepare]'``, which
training never needs.

:func:`diagnose` says why a dataset cannot be read, as one of: the data directory does not exist; the
dataset is not prepared there; it is prepared in another file format (TFDS's default tfrecord, which
``data_source`` cannot read); each message ends with the exact command that fixes it.
"""

from __future__ import annotations

import logging
import os

from jgan.data.specs import IMAGE_DATASETS

log = logging.getLogger(__name__)

PREPARE_EXTRA = "pip install 'jgan[prepare]'"


class DatasetNotReady(FileNotFoundError):
  """A dataset jgan cannot read yet (see :func:`diagnose`); the message says why and how to fix it."""


def tfds_name(name: str) -> str:
  """The TFDS name of jgan dataset ``name`` (``lsun_bedroom`` -> ``lsun/bedroom``); other names as given."""
  return IMAGE_DATASETS[name].tfds_name if name in IMAGE_DATASETS else name


def default_data_dir() -> str:
  """TFDS's data directory when none is given: ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``."""
  return os.path.expanduser(os.environ.get("TFDS_DATA_DIR", "") or "~/tensorflow_datasets")


def prepare_command(name: str, data_dir: str | None) -> str:
  """The command line that prepares ``name`` into ``data_dir``."""
  return f"jgan data prepare {name}" + (f" --data_dir {data_dir}" if data_dir else "")


# jgan's TFDS datasets whose builders yield raw arrays that TFDS encodes with TensorFlow: checked before
# any download, so a missing extra does not cost a download first.
NEEDS_TENSORFLOW = frozenset({"mnist", "fashion_mnist", "cifar10", "celeb_a", "lsun_bedroom"})


def _builder(name: str, data_dir: str | None):
  import tensorflow_datasets as tfds

  known = tfds.list_builders(with_community_datasets=False)  # community lookup needs TF and network
  if tfds_name(name).split("/")[0].split(":")[0] not in known:
    import difflib

    close = difflib.get_close_matches(tfds_name(name), known, n=5)
    raise ValueError(
      f"unknown TFDS dataset {name!r}{'; did you mean ' + ', '.join(close) + '?' if close else ''} "
      "(the catalogue: https://www.tensorflow.org/datasets/catalog/overview)"
    )
  try:
    return tfds.builder(tfds_name(name), data_dir=data_dir or None, file_format="array_record")
  except ValueError as e:
    if "File format is already set" not in str(e):
      raise
    return tfds.builder(tfds_name(name), data_dir=data_dir or None)  # prepared in another format


def _tensorflow_missing() -> bool:
  import importlib.util

  return importlib.util.find_spec("tensorflow") is None


def _needs_tensorflow_error(name: str, data_dir: str | None) -> DatasetNotReady:
  return DatasetNotReady(
    f"preparing {name!r} needs TensorFlow (TFDS encodes its images with it); install it with "
    f"`{PREPARE_EXTRA}` and run `{prepare_command(name, data_dir)}` again (training does not need it)"
  )


def diagnose(name: str, data_dir: str | None, split: str | None = None) -> str:
  """Why ``name`` cannot be read from ``data_dir`` (None/"": TFDS's default), as one message, or "" if it can.

  Args:
    name: a jgan dataset name or a TFDS name.
    data_dir: the TFDS data directory.
    split: the split asked for (reported when the dataset has no such split).
  """
  where = os.path.expanduser(data_dir) if data_dir else default_data_dir()
  fix = prepare_command(name, data_dir)
  if not os.path.isdir(where):
    return f"data directory {where!r} does not exist; create and fill it with `{fix}`"
  builder = _builder(name, data_dir)
  if not builder.is_prepared():
    return (
      f"dataset {name!r} (TFDS {tfds_name(name)!r}) is not prepared under {where!r}; prepare it once with "
      f"`{fix}` (downloads it; needs {PREPARE_EXTRA} for TensorFlow)"
    )
  formats = {str(getattr(f, "value", f)) for f in [builder.info.file_format] if f is not None}
  if formats and "array_record" not in formats:
    return (
      f"dataset {name!r} under {where!r} is prepared as {', '.join(sorted(formats))}, which tfds.data_source "
      f"cannot read; prepare it again as array_record: `rm -r {builder.data_dir} && {fix}` (the downloads "
      "are kept and reused)"
    )
  if split and split.split("[")[0] not in builder.info.splits:
    return f"dataset {name!r} has no split {split!r}; its splits: {', '.join(builder.info.splits)}"
  return ""


def prepare(name: str, data_dir: str | None = None, *, progress: bool = True) -> str:
  """Downloads and prepares dataset ``name`` as array_record under ``data_dir``; returns the dataset's dir.

  A no-op for a dataset that is already prepared. ``mnist5k`` is built from the embedded digits (no
  download). Dataset ``name`` may be any TFDS name (``cifar100``, ``svhn_cropped``, ...).

  Raises:
    ValueError: an unknown TFDS name (with the closest ones).
    DatasetNotReady: TensorFlow is needed and missing (naming the extra to install), the builder needs
      files downloaded by hand (with its instructions), or the download failed.
  """
  import tensorflow_datasets as tfds

  from jgan.data import mnist5k

  if data_dir:
    data_dir = os.path.expanduser(data_dir)
  if name == mnist5k.NAME:
    return mnist5k.ensure_prepared(data_dir)
  builder = _builder(name, data_dir)
  if builder.is_prepared():
    why = diagnose(name, data_dir)  # prepared in a format data_source cannot read?
    if why:
      raise DatasetNotReady(why)
    return str(builder.data_dir)
  if name in NEEDS_TENSORFLOW and _tensorflow_missing():
    raise _needs_tensorflow_error(name, data_dir)
  if not progress:
    tfds.disable_progress_bar()
  manual = builder.MANUAL_DOWNLOAD_INSTRUCTIONS
  config = tfds.download.DownloadConfig(try_download_gcs=False)  # GCS holds tfrecord copies only
  try:
    builder.download_and_prepare(download_config=config, file_format="array_record")
  except ModuleNotFoundError as e:
    if (e.name or "").split(".")[0] != "tensorflow":
      raise
    raise _needs_tensorflow_error(name, data_dir) from None
  except AssertionError as e:  # TFDS's manual-download check
    if not manual:
      raise
    manual_dir = os.path.join(data_dir or default_data_dir(), "downloads", "manual")
    raise DatasetNotReady(
      f"{name!r} needs files downloaded by hand into {manual_dir}: {' '.join(str(manual).split())} "
      f"({str(e).splitlines()[0] if str(e) else 'files missing'}); then run `{prepare_command(name, data_dir)}` again"
    ) from None
  except (OSError, ConnectionError) as e:
    first = str(e).splitlines()[0] if str(e) else ""
    raise DatasetNotReady(f"downloading {name!r} failed: {type(e).__name__}: {first}") from None
  log.info(f"prepared {name!r} as array_record in {builder.data_dir}")
  return str(builder.data_dir)
