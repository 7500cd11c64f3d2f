"""Run outputs: the image grid layout, the JSONL + TensorBoard writer, and its start-up cost."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

from jgan import writers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_image_grid_layout_and_values():
  # Three 2x2 one-channel images in [-1, 1] -> 2 columns, 2 rows, 1-pixel white padding.
  imgs = np.stack([np.full((2, 2, 1), v, np.float32) for v in (-1.0, 0.0, 1.0)])
  grid = writers.image_grid(imgs, pad=1)
  expected = np.full((2 * 3 + 1, 2 * 3 + 1, 1), 255, np.uint8)
  expected[1:3, 1:3] = 0  # -1 -> 0
  expected[1:3, 4:6] = 128  # 0 -> round(127.5) (numpy rounds half to even: 128)
  expected[4:6, 1:3] = 255  # 1 -> 255; the fourth cell stays white
  np.testing.assert_array_equal(grid, expected)


def test_run_writer_writes_jsonl_and_tensorboard(tmp_path):
  w = writers.RunWriter(str(tmp_path))
  w.scalars(3, {"d_loss": np.float32(0.5), "g_loss": 1.25})
  w.scalars(4, {"d_loss": 0.25})
  w.close()
  rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert rows == [{"step": 3, "d_loss": 0.5, "g_loss": 1.25}, {"step": 4, "d_loss": 0.25}]
  events = os.listdir(tmp_path / "tb")
  assert any(e.startswith("events.out.tfevents") for e in events), events


def test_run_writer_does_not_import_torch(tmp_path):
  # A stand-in 'torch' package on the path records whether anything imports it (PyTorch itself need
  # not be installed for this test).
  fake = tmp_path / "fake" / "torch"
  fake.mkdir(parents=True)
  marker = tmp_path / "torch_imported"
  (fake / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\nTensor = object\n")
  script = textwrap.dedent(f"""
      import os, sys
      from jgan import writers
      w = writers.RunWriter({str(tmp_path / "run")!r})
      w.scalars(0, {{"x": 1.0}})
      w.close()
      assert not os.path.exists({str(marker)!r}), "tensorboardX imported torch"
      import torch  # the user's own import still works afterwards
      assert os.path.exists({str(marker)!r})
      print("ok")
  """)
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "fake"), ROOT]))
  out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip().endswith("ok")


def test_two_writers_in_the_same_second_keep_both_files(tmp_path):
  """tensorboardX names event files by second and host; `jgan eval` twice within a second lost the
  first's scalars until each writer got its own suffix."""
  from jgan import writers

  for i in range(2):
    w = writers.RunWriter(str(tmp_path), filename_suffix=f".eval-{i}")
    w.scalars(1, {f"eval/m{i}": 1.0}, jsonl=False)
    w.close()
  events = [e for e in os.listdir(tmp_path / "tb") if e.startswith("events.out.tfevents")]
  assert len(events) == 2, events
  assert not (tmp_path / "metrics.jsonl").exists()  # jsonl=False: TensorBoard only
