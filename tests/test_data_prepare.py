"""`jgan data prepare` and the reasons a dataset cannot be read, offline: a TFDS builder defined here
downloads its data from a local HTTP server (tests/local_server.py) and is prepared as array_record.
Each failure is checked for the message a user sees: unknown name, missing directory, not prepared,
wrong file format, TensorFlow missing, server unreachable.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jgan import cli
from jgan import data as data_lib
from jgan.data import prepare
from tests.local_server import closed_port_url, serve

IMAGES = np.random.default_rng(0).integers(0, 256, (20, 8, 8, 1), dtype=np.uint8)
URL = {"value": ""}  # where the builder downloads from; set per test


def _npz_bytes() -> bytes:
  buf = io.BytesIO()
  np.savez(buf, images=IMAGES)
  return buf.getvalue()


class JganTestDigits(tfds.core.GeneratorBasedBuilder):
  """20 random 8x8 images downloaded as an .npz from URL["value"]; labels i % 2. Needs no TensorFlow."""

  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    features = {"image": tfds.features.Image(shape=(8, 8, 1)), "label": tfds.features.ClassLabel(num_classes=2)}
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples(dl_manager.download(URL["value"]))}

  def _generate_examples(self, path):
    from PIL import Image

    x = np.load(path)["images"]
    for i in range(len(x)):
      buf = io.BytesIO()
      Image.fromarray(x[i, :, :, 0]).save(buf, format="PNG")
      yield i, {"image": buf.getvalue(), "label": i % 2}


class JganTestNeedsTf(JganTestDigits):
  """A builder whose generation imports TensorFlow (as most TFDS builders do), which is not there."""

  def _split_generators(self, dl_manager):
    del dl_manager
    raise ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")


def test_prepare_downloads_from_the_server_and_data_source_reads_it(tmp_path, capsys):
  with serve({"/digits.npz": _npz_bytes()}) as (url, requests):
    URL["value"] = f"{url}/digits.npz"
    data_dir = str(tmp_path / "tfds")
    assert prepare.diagnose("jgan_test_digits", data_dir).startswith(f"data directory {data_dir!r} does not exist")
    os.makedirs(data_dir)
    assert "is not prepared under" in prepare.diagnose("jgan_test_digits", data_dir)
    assert cli.main(["data", "prepare", "jgan_test_digits", "--data_dir", data_dir, "--no_progress"]) == 0
    assert "jgan_test_digits: ready in" in capsys.readouterr().out and requests == ["/digits.npz"]
    src = tfds.data_source("jgan_test_digits", split="train", data_dir=data_dir)
    got = np.stack([src[i]["image"] for i in range(len(src))])
    assert len(src) == 20 and {tuple(g.ravel()) for g in got} == {tuple(x.ravel()) for x in IMAGES}
    assert prepare.diagnose("jgan_test_digits", data_dir) == ""
    assert cli.main(["data", "check", "jgan_test_digits", "--data_dir", data_dir]) == 0
    prepare.prepare("jgan_test_digits", data_dir)  # prepared already: no second download
    assert requests == ["/digits.npz"]
    assert "no split 'test'; its splits: train" in prepare.diagnose("jgan_test_digits", data_dir, "test")


def test_a_tfrecord_preparation_is_named_with_the_fix(tmp_path):
  with serve({"/digits.npz": _npz_bytes()}) as (url, _):
    URL["value"] = f"{url}/digits.npz"
    data_dir = str(tmp_path)
    prepare.prepare("jgan_test_digits", data_dir, progress=False)
  # What `tfds build` without --file_format leaves (writing real tfrecords would need TensorFlow).
  info_path = tmp_path / "jgan_test_digits" / "1.0.0" / "dataset_info.json"
  info = json.loads(info_path.read_text())
  info["fileFormat"] = "tfrecord"
  info_path.write_text(json.dumps(info))
  why = prepare.diagnose("jgan_test_digits", data_dir)
  assert "is prepared as tfrecord, which tfds.data_source cannot read" in why
  assert f"&& jgan data prepare jgan_test_digits --data_dir {data_dir}`" in why
  with pytest.raises(prepare.DatasetNotReady, match="is prepared as tfrecord"):
    prepare.prepare("jgan_test_digits", data_dir)


def test_missing_tensorflow_names_the_extra(tmp_path, monkeypatch):
  with pytest.raises(prepare.DatasetNotReady, match=r"needs TensorFlow .*pip install 'jgan\[prepare\]'"):
    prepare.prepare("jgan_test_needs_tf", str(tmp_path), progress=False)
  # jgan's own datasets are checked before anything downloads.
  monkeypatch.setattr(prepare, "_tensorflow_missing", lambda: True)
  with pytest.raises(prepare.DatasetNotReady, match=r"preparing 'cifar10' needs TensorFlow"):
    prepare.prepare("cifar10", str(tmp_path), progress=False)


def test_unreachable_server_and_unknown_names(tmp_path, capsys, monkeypatch):
  from tensorflow_datasets.core.download import downloader

  # TFDS retries a refused connection 10 times with exponential back-off (~200 s); once is enough here.
  monkeypatch.setattr(downloader, "MAX_RETRIES", 0)
  URL["value"] = closed_port_url("/digits.npz")
  with pytest.raises(prepare.DatasetNotReady, match=r"downloading 'jgan_test_digits' failed: .*Connection"):
    prepare.prepare("jgan_test_digits", str(tmp_path), progress=False)
  assert cli.main(["data", "prepare", "cifar1", "--data_dir", str(tmp_path)]) == 2
  err = capsys.readouterr().err
  assert "unknown TFDS dataset 'cifar1'; did you mean cifar10" in err and "\n" not in err.strip()


def test_training_data_errors_say_why_and_download_prepares(tmp_path, monkeypatch):
  """config.data.download=True prepares at start; without it the reason and the command are given."""
  monkeypatch.setitem(data_lib.IMAGE_DATASETS, "jgan_test_digits", data_lib.ImageSpec("jgan_test_digits", 1, 8))
  from ml_collections import ConfigDict

  cfg = ConfigDict(
    {"name": "jgan_test_digits", "image_size": 8, "split": "", "data_dir": str(tmp_path), "download": False}
  )
  with pytest.raises(
    FileNotFoundError, match=r"not prepared under .*jgan data prepare jgan_test_digits.*data.download=True"
  ):
    data_lib.tfds_source(cfg)
  with serve({"/digits.npz": _npz_bytes()}) as (url, requests):
    URL["value"] = f"{url}/digits.npz"
    cfg.download = True
    assert len(data_lib.tfds_source(cfg)) == 20 and requests == ["/digits.npz"]
