"""Decoding and converting single image files (jgan.data.image_files), each rule against numpy.

tests/test_data_folder_datasets.py checks the same rules on a whole collection; here each mode gets its own case,
including the ones that collection does not hold (one channel out, LA, bilevel, no crop).
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from jgan.data import image_files


class _Files:
  """A FileTree stand-in over in-memory files."""

  def __init__(self, **files: bytes):
    self.files = files

  def open(self, name, header_only=False):
    return io.BytesIO(self.files[name])


def _png(img: Image.Image) -> bytes:
  buf = io.BytesIO()
  img.save(buf, format="PNG")
  return buf.getvalue()


def _load(img: Image.Image, channels: int, size: int | None = None, crop: str = "center") -> np.ndarray:
  return image_files.load(_Files(f=_png(img)), "f", channels, size or img.size[0], crop)


RNG = np.random.default_rng(0)


def test_rgb_to_one_channel_is_itu_601_luma():
  a = RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)
  luma = a.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
  got = _load(Image.fromarray(a), 1)
  assert got.shape == (8, 8, 1)
  assert np.abs(got[..., 0].astype(np.float64) - luma).max() <= 1.0  # Pillow's 16-bit fixed point rounds


def test_grey_alpha_and_bilevel():
  la = RNG.integers(0, 256, (8, 8, 2), dtype=np.uint8)
  want = np.round(la[..., 0].astype(np.float64) * la[..., 1] / 255).astype(np.uint8)
  np.testing.assert_array_equal(_load(Image.fromarray(la, "LA"), 1)[..., 0], want)
  np.testing.assert_array_equal(_load(Image.fromarray(la, "LA"), 3), np.repeat(want[..., None], 3, -1))
  bits = RNG.integers(0, 2, (8, 8)).astype(bool)
  np.testing.assert_array_equal(_load(Image.fromarray(bits), 1)[..., 0], np.where(bits, 255, 0))


def test_sixteen_bit_is_scaled_not_clipped():
  v = np.array([[0, 128, 129, 257, 32896, 65535, 65407, 1000]], np.uint16).repeat(8, 0)
  got = _load(Image.fromarray(v), 1)[..., 0]
  np.testing.assert_array_equal(got, np.round(v.astype(np.float64) / 257).astype(np.uint8))
  assert got.max() == 255 and got[0, 4] == 128  # convert("L") would give 255 for everything above 255


@pytest.mark.parametrize("orientation,turn", [(3, lambda a: np.rot90(a, 2)), (6, lambda a: np.rot90(a, -1))])
def test_exif_orientation_is_applied(orientation, turn):
  a = RNG.integers(0, 256, (6, 10, 3), dtype=np.uint8)
  exif = Image.Exif()
  exif[0x0112] = orientation
  buf = io.BytesIO()
  Image.fromarray(a).save(buf, format="PNG", exif=exif.tobytes())
  shown = turn(a)
  side = min(shown.shape[:2])
  top, left = (shown.shape[0] - side) // 2, (shown.shape[1] - side) // 2
  want = shown[top : top + side, left : left + side]
  np.testing.assert_array_equal(image_files.load(_Files(f=buf.getvalue()), "f", 3, side), want)


def test_crop_center_and_none():
  a = np.arange(6 * 10, dtype=np.uint8).reshape(6, 10, 1).repeat(3, -1)
  np.testing.assert_array_equal(image_files.fit(a, 6, "center"), a[:, 2:8])
  a7 = np.arange(7 * 4, dtype=np.uint8).reshape(7, 4, 1)
  np.testing.assert_array_equal(image_files.fit(a7, 4, "center"), a7[1:5])  # odd difference: extra row at the bottom
  squashed = image_files.fit(np.zeros((6, 12, 3), np.uint8) + 7, 4, "none")
  assert squashed.shape == (4, 4, 3) and (squashed == 7).all()  # whole image resized, aspect changed
  with pytest.raises(ValueError, match="unknown crop 'left'; valid choices: center, none"):
    image_files.fit(a, 6, "left")


def test_bad_files_raise_bad_image_with_a_reason():
  whole = _png(Image.fromarray(RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)))
  files = _Files(cut=whole[: len(whole) // 2], text=b"hello", empty=b"")
  for name, reason in (("cut", "truncated"), ("text", "not an image"), ("empty", "not an image")):
    with pytest.raises(image_files.BadImage, match=reason):
      image_files.load(files, name, 3, 32)
  assert image_files.probe_mode(_Files(cut=whole[: len(whole) // 2]), "cut") == "RGB"  # the header alone is fine


def test_file_tree_lists_folders_and_zips_alike(tmp_path):
  names = ["a/1.png", "a/b/2.JPG", "top.webp", "notes.txt"]
  hidden = [".DS_Store", "a/.hidden.png", "__MACOSX/a/._1.png"]
  for n in names + hidden:
    (tmp_path / "d" / n).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "d" / n).write_bytes(n.encode())
  with zipfile.ZipFile(tmp_path / "d.zip", "w") as zf:
    for n in names + hidden:
      zf.writestr(n, n.encode())
    zf.writestr("a/emptydir/", b"")
  for path in (tmp_path / "d", tmp_path / "d.zip"):
    tree = image_files.FileTree(str(path))
    assert tree.names == sorted(names)
    assert [n for n in tree.names if image_files.is_image_name(n)] == ["a/1.png", "a/b/2.JPG", "top.webp"]
    assert tree.read("a/b/2.JPG") == b"a/b/2.JPG"
    tree.close()
  with pytest.raises(ValueError, match="is neither a folder nor a zip file"):
    image_files.FileTree(str(tmp_path / "d" / "notes.txt"))
