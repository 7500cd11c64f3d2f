"""`jgan sample` and `jgan eval --samples`: a run's samples out as files, and files in for scoring.

The round trip is checked against the other path, not against recorded numbers: FID of the exported PNGs (and of
the .npz) scored as files equals `jgan eval --workdir` of the same run and seed, to rel. 1e-5 (8-bit files hold
exactly the levels evaluation rounds every sample to). The pixels are checked against numpy's
``round((x + 1) * 127.5)`` of the generator's output for the same keys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from jgan import samples
from tests.helpers import ROOT, run_cli


def test_read_samples_formats_and_refusals(tmp_path):
  rng = np.random.default_rng(0)
  x = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
  np.savez(tmp_path / "adm.npz", arr_0=x)  # guided-diffusion / ADM evaluation files
  np.testing.assert_array_equal(samples.read_samples(str(tmp_path / "adm.npz")), x)
  np.savez(tmp_path / "grey.npz", images=x[..., 0])
  assert samples.read_samples(str(tmp_path / "grey.npz")).shape == (5, 8, 8, 1)
  refusals = {
    "float.npz": (dict(images=x.astype(np.float32)), "has dtype float32; expected uint8 images"),
    "nchw.npz": (dict(images=x.transpose(0, 3, 1, 2)[:, :, :, :5]), "expected [N, H, W, C] with C = 1 or 3"),
    "two.npz": (dict(a=x, b=x), "holds a, b; expected an array named 'images'"),
  }
  for name, (arrays, message) in refusals.items():
    np.savez(tmp_path / name, **arrays)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
      samples.read_samples(str(tmp_path / name))
  folder = tmp_path / "pngs"
  folder.mkdir()
  for i in range(3):
    Image.fromarray(x[i]).save(folder / f"{i}.png")
  (folder / "notes.txt").write_text("ignored")
  np.testing.assert_array_equal(samples.read_samples(str(folder)), x[:3])
  Image.fromarray(x[3, :4]).save(folder / "3.png")
  with pytest.raises(ValueError, match="3.png is 4x8 px with 3 channel"):
    samples.read_samples(str(folder))
  with pytest.raises(ValueError, match="does not exist"):
    samples.read_samples(str(tmp_path / "nowhere"))


def test_write_samples_never_leaves_a_partial_output(tmp_path):
  def batches():
    yield np.zeros((4, 8, 8, 1), np.float32), None
    raise KeyboardInterrupt  # interrupted mid-way

  for out in (str(tmp_path / "pngs"), str(tmp_path / "s.npz")):
    with pytest.raises(KeyboardInterrupt):
      samples.write_samples(batches(), 8, out, progress=False)
    assert not os.path.exists(out)
  assert os.listdir(tmp_path) == []
  x = np.linspace(-1.2, 1.2, 4 * 8 * 8 * 3, dtype=np.float32).reshape(4, 8, 8, 3)
  samples.write_samples(iter([(x, np.arange(4, dtype=np.int32))]), 3, str(tmp_path / "s.npz"), progress=False)
  with np.load(tmp_path / "s.npz") as z:
    np.testing.assert_array_equal(z["images"], np.round((np.clip(x[:3], -1, 1) + 1) * 127.5).astype(np.uint8))
    np.testing.assert_array_equal(z["labels"], [0, 1, 2])


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
  """A conditional smoke DCGAN on mnist5k after 5 steps (its own process: absl flags are global)."""
  run = str(tmp_path_factory.mktemp("run") / "run")
  args = ["--config", "configs/smoke.py", "--workdir", run, "--config.model.conditional=True"]
  args += ["--config.train.steps=5", "--config.train.log_every=5"]
  cmd = [sys.executable, "launch.py", "train", *args]
  r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert r.returncode == 0, r.stderr[-3000:]
  return run


def test_samples_are_the_generators_output_in_8_bits_and_deterministic(conditional_run, tmp_path):
  from jgan import resume, rng, state

  out = str(tmp_path / "a")
  rc, stdout, err = run_cli("sample", "--workdir", conditional_run, "--n", "20", "--out", out, "--batch_size", "12")
  assert rc == 0 and "wrote 20 samples" in stdout, err
  files = sorted(os.listdir(out))
  assert files == [f"{i:06d}.png" for i in range(20)] + ["dataset.json"]
  got = np.stack([np.asarray(Image.open(os.path.join(out, f))) for f in files[:-1]])
  # Reference: the EMA generator for eval's keys, batch i = fold_in(eval key, i), classes in turn; numpy rounding.
  s, config = resume.load_state(conditional_run)
  key = rng.run_keys(config.seed).eval
  labels = np.arange(24, dtype=np.int32) % 10
  x = np.concatenate([state.sample(s, jax.random.fold_in(key, i), 12, labels[12 * i : 12 * i + 12]) for i in (0, 1)])
  np.testing.assert_array_equal(got, np.round((np.clip(x[:20, ..., 0], -1, 1) + 1) * 127.5).astype(np.uint8))
  table = json.load(open(os.path.join(out, "dataset.json")))["labels"]
  assert table == [[f"{i:06d}.png", i % 10] for i in range(20)]

  sample = ["sample", "--workdir", conditional_run]
  assert run_cli(*sample, "--n", "20", "--out", str(tmp_path / "b"), "--batch_size", "12")[0] == 0
  assert all(open(os.path.join(out, f), "rb").read() == open(tmp_path / "b" / f, "rb").read() for f in files)
  assert run_cli(*sample, "--n", "4", "--out", str(tmp_path / "c.npz"), "--seed", "1", "--labels", "3,7")[0] == 0
  with np.load(tmp_path / "c.npz") as z:
    assert z["images"].shape == (4, 28, 28, 1) and z["labels"].tolist() == [3, 7, 3, 7]
    assert not np.array_equal(z["images"], got[:4, ..., None])  # another seed, other classes: other samples
  rc, _, err = run_cli(*sample, "--n", "4", "--out", out)
  assert rc == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
  assert f"--out: {out!r} exists and is not empty" in err  # refused as the command line is parsed


@pytest.mark.slow
def test_fid_of_exported_samples_equals_eval_of_the_run(conditional_run, inception_weights, tmp_path):
  """Must-show: `jgan sample` + `jgan eval --samples` == `jgan eval --workdir`, same run and seed (rel. 1e-5).

  20 samples in batches of 12: the last batch is drawn whole by eval and padded by the file path. FID runs
  Inception with random weights written here (pytorch-fid's cannot be downloaded offline; the code path is the
  same) against the run's own dataset, mnist5k.
  """
  fid = ["--metrics", "fid10k", "--num_samples", "20", "--batch_size", "12", "--inception_weights", inception_weights]
  fid += ["--cache_dir", str(tmp_path / "cache"), "--no_progress"]
  pngs, npz = str(tmp_path / "pngs"), str(tmp_path / "s.npz")
  for out in (pngs, npz):
    assert run_cli("sample", "--workdir", conditional_run, "--n", "20", "--out", out, "--batch_size", "12")[0] == 0
  with pytest.warns(RuntimeWarning, match="singular"):  # 20 samples of 2048-d features
    assert run_cli("eval", "--workdir", conditional_run, *fid)[0] == 0
    for path in (pngs, npz):
      rc, _, err = run_cli("eval", "--workdir", conditional_run, "--samples", path, *fid)
      assert rc == 0, err
  rows = [json.loads(line) for line in open(os.path.join(conditional_run, "evals.jsonl"))][-3:]
  assert [r["generator"] for r in rows] == ["ema", f"samples:{pngs}", f"samples:{npz}"]
  assert rows[0]["fid20"] > 0
  for r in rows[1:]:
    assert r["fid20"] == pytest.approx(rows[0]["fid20"], rel=1e-5)
