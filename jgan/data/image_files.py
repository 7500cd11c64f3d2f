"""Image files as a user has them: a folder (searched recursively) or a zip, decoded into uint8 arrays.

:class:`FileTree` lists and reads the files of either kind by POSIX path relative to its root
(``cats/001.png``). :func:`to_array` turns a decoded Pillow image of any mode into ``uint8 [h, w, C]``
with C = 1 or 3, and :func:`fit` centre-crops and resizes it to ``[S, S, C]``; :func:`load` does both
for one file and raises :class:`BadImage` (with the reason) for a file Pillow cannot read completely.

Conversion rules (each chosen so that one stored value means one thing; tests check them against numpy):

* EXIF orientation is applied first (``ImageOps.exif_transpose``): a phone photo stored sideways is
  stored upright.
* 16-bit grey (``I;16``, ``I``) is scaled to 8 bits as ``round(v / 257)``; Pillow's own ``convert("L")``
  clips every value above 255 to white.
* Alpha (RGBA, LA, transparent palettes) is composited over black: ``round(c * a / 255)``, so a fully
  transparent pixel is 0 whatever colour it hides.
* CMYK is Pillow's ``round((255 - c)(255 - k) / 255)``; palettes are looked up; bilevel images become 0/255.
* To one channel: Pillow's ITU-R 601-2 luma ``L = R 299/1000 + G 587/1000 + B 114/1000``; to three: the
  grey value repeated.
"""

from __future__ import annotations

import io
import os
import zipfile
from typing import IO

import numpy as np

# Extensions read as images (lower case); other files are listed as ignored, never decoded.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
# Modes with no colour: a dataset whose images all have one of these gets one channel by default.
GRAYSCALE_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
CROPS = ("center", "none")


class BadImage(ValueError):
  """A file with an image extension that Pillow cannot decode completely (not an image, truncated, ...)."""


def is_image_name(name: str) -> bool:
  """Whether ``name`` has one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
  return name.lower().endswith(IMAGE_EXTENSIONS)


def _hidden(name: str) -> bool:
  """Files no one means as data: dot-files (``.DS_Store``) and macOS zip resource forks (``__MACOSX/``)."""
  parts = name.split("/")
  return parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


class FileTree:
  """The files under a folder (recursive) or in a zip, by POSIX path relative to the root.

  ``names`` holds every regular file except hidden ones (:func:`_hidden`), sorted. Reading is safe from
  several threads (a zip member is read under the zip's own lock).
  """

  def __init__(self, path: str):
    self.path = os.path.abspath(os.path.expanduser(path))
    self._zip: zipfile.ZipFile | None = None
    if os.path.isdir(self.path):
      self.kind = "folder"
      names = []
      for root, dirs, files in os.walk(self.path):
        dirs.sort()
        rel = os.path.relpath(root, self.path)
        names += [f if rel == "." else f"{rel.replace(os.sep, '/')}/{f}" for f in files]
    elif os.path.isfile(self.path) and zipfile.is_zipfile(self.path):
      self.kind = "zip"
      self._zip = zipfile.ZipFile(self.path)
      names = [i.filename for i in self._zip.infolist() if not i.is_dir()]
    else:
      what = "does not exist" if not os.path.exists(self.path) else "is neither a folder nor a zip file"
      raise ValueError(f"{path!r} {what}; give a folder of images or a zip of them (e.g. a stylegan2-ada dataset)")
    self.names = sorted(n for n in names if not _hidden(n))

  def open(self, name: str, *, header_only: bool = False) -> IO[bytes]:
    """A seekable binary file object of ``name`` (as Pillow needs).

    A zip member is read into memory whole, unless ``header_only``: then it is streamed, so reading an
    image's header does not decompress the rest (seeking back restarts the member's decompression).
    """
    if self._zip is not None:
      return self._zip.open(name) if header_only else io.BytesIO(self._zip.read(name))
    return open(os.path.join(self.path, *name.split("/")), "rb")

  def read(self, name: str) -> bytes:
    """The bytes of file ``name``."""
    with self.open(name) as f:
      return f.read()

  def close(self) -> None:
    if self._zip is not None:
      self._zip.close()


def probe_mode(tree: FileTree, name: str) -> str:
  """Pillow's mode of image ``name`` from its header alone (cheap); raises :class:`BadImage`."""
  from PIL import Image, UnidentifiedImageError

  try:
    with tree.open(name, header_only=True) as f, Image.open(f) as img:
      return img.mode
  except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise BadImage(_reason(e)) from None


def _reason(e: Exception) -> str:
  """A short reason for a decoding failure (Pillow's messages carry the file object's repr)."""
  from PIL import UnidentifiedImageError

  if isinstance(e, UnidentifiedImageError):
    return "not an image Pillow can identify"
  return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}"


def _alpha_over_black(rgba: np.ndarray) -> np.ndarray:
  """uint8 [h, w, c+1] with alpha last -> uint8 [h, w, c]: ``round(colour * alpha / 255)``.

  ``(x * a + 127) // 255`` equals ``round(x * a / 255)`` for integers (no product lies exactly halfway).
  """
  colour, alpha = rgba[..., :-1].astype(np.uint32), rgba[..., -1:].astype(np.uint32)
  return ((colour * alpha + 127) // 255).astype(np.uint8)


def to_array(img, channels: int) -> np.ndarray:
  """A decoded Pillow image of any mode -> uint8 ``[h, w, channels]`` in [0, 255] (module docstring).

  Args:
    img: a loaded ``PIL.Image.Image`` (EXIF orientation not yet applied).
    channels: 1 (grey) or 3 (RGB).
  """
  from PIL import Image, ImageOps

  img = ImageOps.exif_transpose(img)
  mode = img.mode
  if mode.startswith("I"):  # 16-bit grey: I;16 from Pillow's PNG reader, I from older ones / TIFF
    wide = np.asarray(img).astype(np.int64)
    grey = ((np.clip(wide, 0, 65535) * 255 + 32767) // 65535).astype(np.uint8)  # round(v / 257)
    img = Image.fromarray(grey)
  elif mode == "F":
    img = Image.fromarray(np.clip(np.round(np.asarray(img)), 0, 255).astype(np.uint8))
  elif mode == "P":
    img = img.convert("RGBA" if "transparency" in img.info else "RGB")
  elif mode == "PA":
    img = img.convert("RGBA")
  elif mode == "1":
    img = img.convert("L")
  elif mode == "La":  # premultiplied: the colour is already c * a / 255
    img = img.convert("LA")
  elif mode == "RGBa":
    img = img.convert("RGBA")
  if img.mode in ("RGBA", "LA"):
    arr = _alpha_over_black(np.asarray(img))
    img = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
  elif img.mode not in ("L", "RGB"):  # CMYK, YCbCr, LAB, HSV, RGBX: Pillow's conversions
    img = img.convert("RGB")
  if channels == 1 and img.mode != "L":
    img = img.convert("L")  # ITU-R 601-2 luma
  arr = np.asarray(img)
  if arr.ndim == 2:
    arr = arr[..., None]
  if channels == 3 and arr.shape[-1] == 1:
    arr = np.repeat(arr, 3, axis=-1)
  return np.ascontiguousarray(arr, dtype=np.uint8)


def fit(arr: np.ndarray, size: int, crop: str = "center") -> np.ndarray:
  """uint8 ``[h, w, c]`` -> uint8 ``[size, size, c]``.

  ``crop="center"`` takes the largest centred square first (the extra row or column of an odd
  difference is dropped at the bottom / right); ``"none"`` resizes the whole image (the aspect ratio
  changes). Resizing uses Pillow's Lanczos filter (antialiased when shrinking), as stylegan2-ada's
  dataset tool does; an image already ``size`` px square is returned unchanged.
  """
  from PIL import Image

  if crop not in CROPS:
    raise ValueError(f"unknown crop {crop!r}; valid choices: {', '.join(CROPS)}")
  h, w, c = arr.shape
  if crop == "center" and h != w:
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    arr = arr[top : top + side, left : left + side]
  if arr.shape[:2] == (size, size):
    return np.ascontiguousarray(arr)
  pil = Image.fromarray(arr[..., 0] if c == 1 else arr)
  out = np.asarray(pil.resize((size, size), Image.Resampling.LANCZOS))
  return out.reshape(size, size, c)


def load(tree: FileTree, name: str, channels: int, size: int, crop: str = "center") -> np.ndarray:
  """File ``name`` of ``tree`` decoded completely, converted and fitted: uint8 ``[size, size, channels]``.

  Raises :class:`BadImage` for a file that is not an image or cannot be decoded to its end (truncated).
  """
  from PIL import Image, UnidentifiedImageError

  try:
    with tree.open(name) as f, Image.open(f) as img:
      img.load()  # decodes everything: a truncated file fails here, not later
      arr = to_array(img, channels)
  except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise BadImage(_reason(e)) from None
  return fit(arr, size, crop)


def png_bytes(arr: np.ndarray) -> bytes:
  """uint8 ``[h, w, 1|3]`` -> PNG file bytes (lossless; what prepared datasets store)."""
  from PIL import Image

  buf = io.BytesIO()
  Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(buf, format="PNG")
  return buf.getvalue()
