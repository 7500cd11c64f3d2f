"""A generated image collection as researchers have them: mixed formats and modes, two class folders, bad files.

:func:`write_collection` writes ~200 files and returns, for every readable image, the uint8 ``[32, 32, 3]``
that preparing it at 32 px must store, computed here with numpy from the arrays the files were made from
(lossless formats) or from Pillow's raw decode of the file (JPEG), never with jgan's conversion code:

* RGB PNG, WebP (lossless), BMP at 32 px: the array itself; RGB JPEG 32x40: its decode, centre columns 4..36;
* RGBA PNG: ``round(rgb * a / 255)`` (alpha over black); grey PNG: the value repeated in R, G, B;
* palette PNG: the palette looked up (with a tRNS alpha table: composited over black as RGBA);
* 16-bit grey PNG: ``round(v / 257)``; CMYK JPEG: ``round((255 - c)(255 - k) / 255)`` of its raw decode;
* one JPEG 40 wide x 32 high with EXIF orientation 6 (shown turned 90 degrees clockwise): its raw decode
  turned with ``np.rot90(k=-1)``, then rows 4..36;
* smooth 64 px RGB PNGs: the 2x2 block mean (:data:`RESIZED` names them; Lanczos agrees within a few levels).

Bad files: ``dogs/cut.png`` (a PNG truncated in the middle of its data) and ``cats/notes.jpg`` (text); plus
``README.txt`` at the root, which has no image extension and is ignored. Classes: ``cats`` (0), ``dogs`` (1).
"""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
from PIL import Image

SIZE = 32
CLASSES = ("cats", "dogs")
BAD = ("cats/notes.jpg", "dogs/cut.png")
IGNORED = ("README.txt",)
RESIZED_PREFIX = "big_"  # files shrunk from 64 px: compared with a tolerance


def _rgb(rng, h=SIZE, w=SIZE) -> np.ndarray:
  return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _smooth(rng) -> np.ndarray:
  """A 64 px RGB image of slow sinusoids (shrinking it barely depends on the filter)."""
  y, x = np.mgrid[0:64, 0:64] / 64.0
  phase = rng.uniform(0, 2 * np.pi, 3)
  chans = [127.5 + 100 * np.sin(2 * np.pi * (x * (1 + c) + y) / 2 + phase[c]) for c in range(3)]
  return np.round(np.stack(chans, -1)).astype(np.uint8)


def _decode(data: bytes) -> np.ndarray:
  """Pillow's raw decode, in the file's own mode (no conversion)."""
  return np.asarray(Image.open(io.BytesIO(data)))


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
  buf = io.BytesIO()
  img.save(buf, format=fmt, **kw)
  return buf.getvalue()


def collection(seed: int = 0) -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
  """``(files, expected)``: relative path -> file bytes, and readable image path -> uint8 [32, 32, 3]."""
  rng = np.random.default_rng(seed)
  files: dict[str, bytes] = {}
  expected: dict[str, np.ndarray] = {}
  counter = iter(range(1000))

  def add(stem: str, ext: str, data: bytes, ref: np.ndarray | None) -> None:
    i = next(counter)
    name = f"{CLASSES[i % 2]}/{stem}{i:03d}{ext}"
    files[name] = data
    if ref is not None:
      expected[name] = ref

  for _ in range(60):
    a = _rgb(rng)
    add("rgb", ".png", _encode(Image.fromarray(a), "PNG"), a)
  for _ in range(30):
    data = _encode(Image.fromarray(_rgb(rng, SIZE, SIZE + 8)), "JPEG", quality=90)
    add("photo", ".jpg", data, _decode(data)[:, 4 : 4 + SIZE])
  for _ in range(20):
    a = rng.integers(0, 256, (SIZE, SIZE, 4), dtype=np.uint8)
    ref = np.round(a[..., :3].astype(np.float64) * a[..., 3:] / 255).astype(np.uint8)
    add("rgba", ".png", _encode(Image.fromarray(a, "RGBA"), "PNG"), ref)
  for _ in range(20):
    g = rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8)
    add("grey", ".png", _encode(Image.fromarray(g), "PNG"), np.repeat(g[..., None], 3, -1))
  for k in range(20):
    palette = rng.integers(0, 256, (16, 3), dtype=np.uint8)
    idx = rng.integers(0, 16, (SIZE, SIZE), dtype=np.uint8)
    img = Image.fromarray(idx, "P")
    img.putpalette(palette.flatten().tolist())
    if k < 5:  # a tRNS table: per-index alpha
      alpha = rng.integers(0, 256, 16, dtype=np.uint8)
      data = _encode(img, "PNG", transparency=alpha.tobytes())
      ref = np.round(palette[idx].astype(np.float64) * alpha[idx][..., None] / 255).astype(np.uint8)
    else:
      data, ref = _encode(img, "PNG"), palette[idx]
    add("palette", ".png", data, ref)
  for _ in range(15):
    v = rng.integers(0, 65536, (SIZE, SIZE), dtype=np.uint16)
    ref = np.round(v.astype(np.float64) / 257).astype(np.uint8)
    add("deep", ".png", _encode(Image.fromarray(v), "PNG"), np.repeat(ref[..., None], 3, -1))
  for _ in range(15):
    cmyk = rng.integers(0, 256, (SIZE, SIZE, 4), dtype=np.uint8)
    data = _encode(Image.fromarray(cmyk, "CMYK"), "JPEG", quality=95)
    raw = _decode(data).astype(np.float64)
    assert raw.shape[-1] == 4, "Pillow decodes a CMYK JPEG as CMYK"
    add("print", ".jpg", data, np.round((255 - raw[..., :3]) * (255 - raw[..., 3:]) / 255).astype(np.uint8))
  for ext, fmt, kw in ((".webp", "WEBP", {"lossless": True}), (".bmp", "BMP", {})):
    for _ in range(5):
      a = _rgb(rng)
      add("other", ext, _encode(Image.fromarray(a), fmt, **kw), a)
  for _ in range(5):
    a = _smooth(rng)
    add(RESIZED_PREFIX, ".png", _encode(Image.fromarray(a), "PNG"), a.reshape(32, 2, 32, 2, 3).mean((1, 3)))
  # A phone photo stored sideways: 40 wide, 32 high, EXIF orientation 6 = show it turned 90 deg clockwise.
  exif = Image.Exif()
  exif[0x0112] = 6
  data = _encode(Image.fromarray(_rgb(rng, SIZE, SIZE + 8)), "JPEG", quality=90, exif=exif.tobytes())
  add("rotated", ".jpg", data, np.rot90(_decode(data), k=-1)[4 : 4 + SIZE])
  # The bad ones and a stray text file.
  whole = _encode(Image.fromarray(_rgb(rng)), "PNG")
  files[BAD[1]] = whole[: len(whole) // 2]
  files[BAD[0]] = b"shopping list: milk, eggs\n"
  files[IGNORED[0]] = b"cells imaged on 2026-11-02\n"
  return files, expected


def label_of(name: str) -> int:
  return CLASSES.index(name.split("/")[0])


def write_folder(root: str, files: dict[str, bytes]) -> str:
  for name, data in files.items():
    path = os.path.join(root, *name.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
      f.write(data)
  return root


def write_zip(path: str, files: dict[str, bytes]) -> str:
  with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
    for name, data in files.items():
      zf.writestr(name, data)
  return path


def stylegan_layout(files: dict[str, bytes]) -> tuple[dict[str, bytes], dict[str, str]]:
  """The files renamed as stylegan2-ada's dataset tool lays them out (``00000/img00000000.png``, 1,000 per
  folder), class labels in ``dataset.json``; returns ``(files, old name -> new name)``."""
  out, renamed, table = {}, {}, []
  for i, (name, data) in enumerate(sorted(files.items())):
    if name in IGNORED:
      out[name] = data
      continue
    new = f"{i // 1000:05d}/img{i:08d}{os.path.splitext(name)[1]}"
    out[new], renamed[name] = data, new
    table.append([new, label_of(name)])
  out["dataset.json"] = json.dumps({"labels": table}).encode()
  return out, renamed
