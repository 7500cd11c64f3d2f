"""`jgan data prepare PATH` on a generated collection of ~200 images (tests/image_sources.py): mixed formats and
modes, two class folders, one truncated PNG, one text file named .jpg, a stray README.txt; as a folder, as a zip,
and laid out as a stylegan2-ada dataset zip with dataset.json labels.

References are independent of jgan's conversion code: every stored pixel is compared with what
tests/image_sources.py computed with numpy from the arrays the files were made from (or Pillow's raw decode of
the JPEGs). Then a conditional GAN trains 5 steps on each dataset, samples, and is scored by FID against it.

FID here runs Inception with random weights written by the test (tests/test_metrics_inception.py): pytorch-fid's
weights cannot be downloaded offline, and with them the code path is the same (only the weights differ), while the
domain classifier of the mnist_* metrics only makes sense for digits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jgan.data import folder_datasets
from tests import image_sources
from tests.helpers import ROOT, run_cli

SOURCES = ("folder", "zip", "stylegan_zip")


def make_source(kind: str, tmp) -> tuple[str, dict[str, str], dict[str, np.ndarray]]:
  """The collection as ``kind``: (path, original name -> name in the source, expected pixels by original name)."""
  files, expected = image_sources.collection()
  names = {n: n for n in files}
  if kind == "folder":
    path = image_sources.write_folder(str(tmp / "photos"), files)
  elif kind == "zip":
    path = image_sources.write_zip(str(tmp / "photos.zip"), files)
  else:
    laid_out, names = image_sources.stylegan_layout(files)
    path = image_sources.write_zip(str(tmp / "photos_sg2.zip"), laid_out)
  return path, names, expected


def prepare_args(path: str, data_dir: str, *extra: str) -> list[str]:
  labels = "dataset.json" if path.endswith("_sg2.zip") else "subfolders"
  args = ["data", "prepare", path, "--name", "photos", "--image_size", "32", "--labels", labels]
  return args + ["--data_dir", data_dir, "--no_progress", *extra]


@pytest.mark.parametrize("kind", SOURCES)
def test_prepare_refuses_bad_files_then_skips_them_and_stores_converted_pixels(kind, tmp_path):
  path, names, expected = make_source(kind, tmp_path)
  data_dir = str(tmp_path / "tfds")
  rc, out, err = run_cli(*prepare_args(path, data_dir))
  assert rc == 2, out + err
  lines = [ln for ln in err.splitlines() if ln.strip()]
  assert len(lines) == 1 and lines[0].startswith("error: 2 of 198 image files cannot be read: "), err
  for bad in image_sources.BAD:
    assert names[bad] in lines[0]
  assert "--skip_bad" in lines[0]
  assert folder_datasets.prepared_names(data_dir) == [] and not os.path.exists(os.path.join(data_dir, "photos"))

  rc, out, err = run_cli(*prepare_args(path, data_dir, "--skip_bad"))
  assert rc == 0, err
  assert "photos: 196 images" in out and "skipped 2 unreadable file(s)" in out and "README.txt" in out
  record = folder_datasets.read_record("photos", data_dir)
  assert sorted(s["file"] for s in record["skipped"]) == sorted(names[b] for b in image_sources.BAD)
  assert record["ignored"] == ["README.txt"] and record["channels"] == 3 and record["num_examples"] == 196
  assert record["class_names"] == (["0", "1"] if kind == "stylegan_zip" else ["cats", "dogs"])
  assert {"RGB", "RGBA", "L", "P", "I;16", "CMYK"} <= set(record["modes"])

  # Read back the way training reads it (tfds.data_source, no TensorFlow) and compare every image.
  src = tfds.data_source("photos", split="train", data_dir=data_dir)
  assert len(src) == len(expected) == 196
  by_source_name = {v: k for k, v in names.items()}
  seen = set()
  for i in range(len(src)):
    ex = src[i]
    original = by_source_name[ex["file_name"].decode()]
    seen.add(original)
    got, want = ex["image"], expected[original]
    assert got.shape == (32, 32, 3) and got.dtype == np.uint8
    assert int(ex["label"]) == image_sources.label_of(original)
    if os.path.basename(original).startswith(image_sources.RESIZED_PREFIX):  # Lanczos vs 2x2 mean
      assert np.abs(got.astype(float) - want).max() <= 3, original
    else:
      np.testing.assert_array_equal(got, want, err_msg=original)
  assert seen == set(expected)


def test_a_folder_and_its_zip_give_the_same_examples(tmp_path):
  """Same images, same names: the fingerprint of the stored examples is the same."""
  files, _ = image_sources.collection(seed=1)
  files = {k: v for k, v in files.items() if k not in image_sources.BAD}
  folder = image_sources.write_folder(str(tmp_path / "f"), files)
  archive = image_sources.write_zip(str(tmp_path / "f.zip"), files)
  prints = []
  for i, path in enumerate((folder, archive)):
    req = folder_datasets.Request(path, f"set{i}", 32, labels="subfolders", data_dir=str(tmp_path / "tfds"))
    prints.append(folder_datasets.prepare(req, progress=False).record["fingerprint"])
  assert prints[0] == prints[1]


def test_auto_labels_and_channels(tmp_path):
  """``--labels auto``: a dataset.json is used when there is one, sub-folders are not labels; an all-grey source
  gets one channel (ITU-R 601 luma would not apply: grey stays grey)."""
  from PIL import Image

  rng = np.random.default_rng(0)
  grey = {f"{s:05d}/{i}.png": rng.integers(0, 256, (8, 8), dtype=np.uint8) for s in (0, 1) for i in range(3)}
  for name, a in grey.items():
    os.makedirs(tmp_path / "g" / name.split("/")[0], exist_ok=True)
    Image.fromarray(a).save(tmp_path / "g" / name)
  req = folder_datasets.Request(str(tmp_path / "g"), "grey", 8, data_dir=str(tmp_path / "tfds"))
  record = folder_datasets.prepare(req, progress=False).record
  assert record["channels"] == 1 and record["class_names"] == []
  src = tfds.data_source("grey", split="train", data_dir=str(tmp_path / "tfds"))
  for i in range(len(src)):
    np.testing.assert_array_equal(src[i]["image"][..., 0], grey[src[i]["file_name"].decode()])
  assert "label" not in src[0]
  with open(tmp_path / "g" / "dataset.json", "w") as f:
    json.dump({"labels": [[n, [0, 1] if n.startswith("00001") else [1, 0]] for n in grey]}, f)  # one-hot
  req = req._replace(name="grey_labelled", channels=3)
  record = folder_datasets.prepare(req, progress=False).record
  assert record["channels"] == 3 and record["class_names"] == ["0", "1"]
  src = tfds.data_source("grey_labelled", split="train", data_dir=str(tmp_path / "tfds"))
  assert sorted(int(src[i]["label"]) for i in range(len(src))) == [0, 0, 0, 1, 1, 1]


def test_cli_refuses_bad_arguments_in_one_line(tmp_path):
  files, _ = image_sources.collection()
  path = image_sources.write_folder(str(tmp_path / "p"), files)
  data_dir = str(tmp_path / "tfds")
  cases = {
    ("--labels", "colour"): "unknown --labels 'colour'; valid choices: auto, subfolders, dataset.json, none",
    ("--crop", "left"): "unknown --crop 'left'; valid choices: center, none",
    ("--channels", "4"): "unknown --channels '4'; valid choices: auto, 1, 3",
    ("--image_size", "-8"): "argument --image_size: must be an integer in [1, 4096], got -8",
    ("--labels", "dataset.json"): "has no dataset.json at its root",
  }
  for extra, message in cases.items():
    rc, _, err = run_cli("data", "prepare", path, "--name", "p", "--image_size", "32", "--data_dir", data_dir, *extra)
    assert rc == 2 and err.startswith("error: ") and message in err, (extra, err)
    assert len(err.strip().splitlines()) == 1, err
  rc, _, err = run_cli("data", "prepare", path, "--image_size", "32")
  assert rc == 2 and "--name is required" in err
  rc, _, err = run_cli("data", "prepare", str(tmp_path / "nowhere"), "--name", "p", "--image_size", "32")
  assert rc == 2 and "does not exist" in err
  assert not os.path.exists(data_dir) or folder_datasets.prepared_names(data_dir) == []


@pytest.mark.slow
@pytest.mark.parametrize("kind", SOURCES)
def test_train_conditionally_sample_and_score_fid_on_prepared_images(kind, tmp_path, inception_weights):
  path, _, _ = make_source(kind, tmp_path)
  data_dir, run = str(tmp_path / "tfds"), str(tmp_path / "run")
  assert run_cli(*prepare_args(path, data_dir, "--skip_bad"))[0] == 0
  data = ["--config.data.name=photos", "--config.data.image_size=32", f"--config.data.data_dir={data_dir}"]
  train = [sys.executable, "launch.py", "train", "--config", "configs/smoke.py", "--workdir", run, *data]
  train += ["--config.model.conditional=True", "--config.train.steps=5", "--config.train.log_every=5"]
  r = subprocess.run(train, cwd=ROOT, capture_output=True, text=True, timeout=900)  # absl flags: a process per run
  assert r.returncode == 0, r.stderr[-3000:]
  config = json.load(open(os.path.join(run, "config.json")))
  assert config["model"]["num_classes"] == 2 and config["data"]["channels"] == 3

  out = str(tmp_path / "samples")
  rc, _, err = run_cli("sample", "--workdir", run, "--n", "16", "--out", out, "--batch_size", "16", "--no_progress")
  assert rc == 0, err
  pngs = sorted(f for f in os.listdir(out) if f.endswith(".png"))
  assert pngs == [f"{i:06d}.png" for i in range(16)]
  labels = json.load(open(os.path.join(out, "dataset.json")))["labels"]
  assert [c for _, c in labels] == [i % 2 for i in range(16)]  # every class in turn, as evaluation asks

  fid = ["--metrics", "fid10k", "--num_samples", "16", "--batch_size", "16", "--inception_weights", inception_weights]
  with pytest.warns(RuntimeWarning, match="singular"):  # 16 samples of 2048-d features
    rc, stdout, err = run_cli("eval", "--workdir", run, *fid, "--no_progress")
  assert rc == 0, err
  row = json.loads(open(os.path.join(run, "evals.jsonl")).read().splitlines()[-1])
  assert row["generator"] == "ema" and np.isfinite(row["fid16"]) and row["fid16"] > 0
  if kind != "folder":  # the files-in path once (tests/test_samples.py checks it against the run in detail)
    return
  # A HYPE study of the run: its reals come from the prepared dataset's only split, train.
  rc, stdout, err = run_cli("judge", "--workdir", run, "--n", "4", "--checks", "0", "--prepare_only", "--no_progress")
  assert rc == 0 and "prepared" in stdout, err
  study = json.load(open(os.path.join(run, "judge", "hype_inf_n4_seed0", "study.json")))
  assert study["split"] == "train" and study["data"] == "photos", study
  # The exported PNGs, scored as files against the dataset by name: the same FID (PNG levels are eval's levels).
  with pytest.warns(RuntimeWarning, match="singular"):
    rc, stdout, err = run_cli(
      "eval", "--samples", out, "--data", "photos", "--data_dir", data_dir, *fid, "--cache_dir", str(tmp_path / "c")
    )
  assert rc == 0, err
  value = float(stdout.strip().splitlines()[-1].split()[-1])
  assert value == pytest.approx(row["fid16"], rel=1e-5)
