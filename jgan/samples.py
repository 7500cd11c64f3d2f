"""A generator's samples: drawn as evaluation draws them, and as image files other programs read and write.

    jgan sample --workdir RUN --n 10000 --out samples/           # 000000.png ... (+ dataset.json if labelled)
    jgan eval --samples samples/ --data NAME --metrics fid10k     # images written by any program

Drawing: :func:`state_sampler` turns a state into ``sample(rng, n, labels)``, and :func:`generated_batches`
draws batch ``i`` with ``fold_in(rng, i)``, as :class:`jgan.evaluation.Evaluator` does; so ``jgan sample``
writes exactly the images ``jgan eval`` scores for the same run, seed and ``evals.batch_size``.

Files: :func:`write_samples` stores 8 bits per channel, ``round((clip(x, -1, 1) + 1) * 127.5)``, the
levels :func:`quantize` rounds every evaluated image to (so nothing is lost that evaluation keeps), as
one PNG per sample (``000000.png``, ...; a conditional generator's labels in a stylegan2-ada
``dataset.json``) or one ``.npz`` (``images`` uint8 ``[N, H, W, C]``, ``labels`` int32 ``[N]``).
:func:`read_samples` reads a folder of images (PNG / JPEG / WebP / BMP, sorted by path) or an ``.npz``
(``images``, else ``arr_0`` as guided-diffusion's evaluation files) back as uint8 ``[N, H, W, C]``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jgan import state as state_lib
from jgan.data import image_files


def quantize(images: jax.Array) -> jax.Array:
  """Rounds [-1, 1] images to the 256 levels of a saved 8-bit image (real data has exactly these)."""
  return jnp.round((jnp.clip(images, -1.0, 1.0) + 1.0) * 127.5) / 127.5 - 1.0


def as_float(images: np.ndarray) -> np.ndarray:
  """uint8 images in [0, 255] -> float32 in [-1, 1] (``u / 127.5 - 1``); float arrays are returned as they are.

  After :func:`quantize` (which every evaluated batch goes through) an 8-bit image read back from a file
  gives exactly the values of the generated sample it was written from.
  """
  if images.dtype == np.uint8:
    return images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
  return images


def generated_batches(sample, rng: jax.Array, n: int, batch_size: int, classes=()):
  """The batches evaluation draws ``n`` samples in: yields ``(images, labels)`` per batch of ``batch_size``.

  Batch ``i`` is ``sample(fold_in(rng, i), batch_size[, labels])``: float32 ``[batch_size, ...]`` in
  [-1, 1] (the last batch is drawn whole; use its first rows). With ``classes`` (a sequence of class
  ids, e.g. ``range(num_classes)``), sample ``j`` is asked for ``classes[j % len(classes)]`` and
  ``labels`` is that int32 ``[batch_size]``; without, ``labels`` is None. ``jgan eval`` draws with
  ``rng = run_keys(seed).eval`` and ``classes = range(num_classes)``; ``jgan sample`` draws the same way,
  so its files hold the very samples ``jgan eval`` scores.
  """
  cycle = np.asarray(list(classes), np.int32)
  for i in range(-(-n // batch_size)):
    key = jax.random.fold_in(rng, i)
    if len(cycle):
      labels = cycle[np.arange(i * batch_size, (i + 1) * batch_size) % len(cycle)]
      yield sample(key, batch_size, labels=labels), labels
    else:
      yield sample(key, batch_size), None


def state_sampler(state, *, ema: bool = True) -> Callable[[jax.Array, int], jax.Array]:
  """``sample(rng, n, labels=None)``: :func:`jgan.state.sample` of ``state`` (EMA by default, BatchNorm
  in eval mode; ``labels`` int ``[n]`` for a conditional G).

  Returns float32 ``[n, H, W, C]`` in [-1, 1] (or ``[n, 2]`` points); z ~ N(0, I) drawn from ``rng``.
  For a state replicated over a ``('data',)`` mesh of several devices (training), z's batch is
  sharded over the mesh when ``n`` divides evenly: the same samples, each device computing its part.
  """
  sharding = getattr(jax.tree.leaves(state.g.params)[0], "sharding", None)
  mesh = getattr(sharding, "mesh", None)
  data_sharding = None
  if mesh is not None and mesh.size > 1 and "data" in mesh.axis_names:
    data_sharding = NamedSharding(mesh, P("data"))

  def sample(rng, n, labels=None):
    shard = data_sharding if data_sharding is not None and n % mesh.size == 0 else None
    return state_lib.sample(state, rng, n, labels, ema=ema, z_sharding=shard)

  return sample


def to_uint8(images) -> np.ndarray:
  """float images in [-1, 1] (clipped) -> uint8 ``round((x + 1) * 127.5)``, on the host; shape kept."""
  return np.asarray(jnp.round((jnp.clip(jnp.asarray(images), -1.0, 1.0) + 1.0) * 127.5)).astype(np.uint8)


def output_kind(out: str) -> str:
  """``"npz"`` for a path ending in ``.npz``, else ``"png"`` (a folder); ValueError if ``out`` would
  overwrite anything: an existing ``.npz``, a file where the folder goes, a folder that is not empty."""
  if out.endswith(".npz"):
    if os.path.exists(out):
      raise ValueError(f"--out {out!r} exists; give a new .npz path (or delete it)")
    return "npz"
  if os.path.exists(out) and not os.path.isdir(out):
    raise ValueError(f"--out {out!r} exists and is not a folder; give a new folder, or a path ending in .npz")
  if os.path.isdir(out) and os.listdir(out):
    raise ValueError(f"--out {out!r} exists and is not empty; give a new or empty folder (or a .npz path)")
  return "png"


def _save_png(path: str, image: np.ndarray) -> None:
  from PIL import Image

  Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path, format="PNG")


def write_samples(batches: Iterable, n: int, out: str, *, progress: bool = True) -> str:
  """Writes the first ``n`` samples of ``batches`` to ``out`` (module docstring); returns ``out``.

  Args:
    batches: ``(images float32 [B, H, W, C] in [-1, 1], labels int32 [B] or None)`` pairs, e.g.
      :func:`generated_batches`.
    n: how many samples to write.
    out: a folder (new or empty) for PNGs, or a new ``.npz`` path. Written under a temporary name and
      renamed when complete, so ``out`` never holds a partial set.
  """
  from tqdm import tqdm

  kind = output_kind(out)
  tmp = f"{out.rstrip('/')}.partial-{os.getpid()}" + (".npz" if kind == "npz" else "")
  os.makedirs(os.path.dirname(os.path.abspath(tmp)), exist_ok=True)
  if kind == "png":
    os.makedirs(tmp)
  images, labels, done = [], [], 0
  bar = tqdm(total=n, desc=f"samples -> {out}", unit="img", disable=not progress, dynamic_ncols=True)
  try:
    for x, y in batches:
      x = to_uint8(x)[: n - done]
      if y is not None:
        labels.append(np.asarray(y, np.int32)[: len(x)])
      if kind == "npz":
        images.append(x)
      else:
        for j, image in enumerate(x):
          _save_png(os.path.join(tmp, f"{done + j:06d}.png"), image)
      done += len(x)
      bar.update(len(x))
      if done >= n:
        break
    bar.close()
    label_array = np.concatenate(labels) if labels else None
    if kind == "npz":
      arrays = {"images": np.concatenate(images)}
      if label_array is not None:
        arrays["labels"] = label_array
      np.savez(tmp, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds like allow_pickle
      os.replace(tmp, out)
      return out
    if label_array is not None:  # stylegan2-ada's format: `jgan data prepare OUT --labels dataset.json` reads it
      table = [[f"{i:06d}.png", int(c)] for i, c in enumerate(label_array)]
      with open(os.path.join(tmp, "dataset.json"), "w") as f:
        json.dump({"labels": table}, f)
    if os.path.isdir(out):
      os.rmdir(out)  # empty (checked above)
    os.rename(tmp, out)
    return out
  except BaseException:  # an interrupted export leaves nothing behind
    if os.path.isdir(tmp):
      shutil.rmtree(tmp, ignore_errors=True)
    elif os.path.isfile(tmp):
      os.remove(tmp)
    raise


def _read_npz(path: str) -> np.ndarray:
  with np.load(path) as z:
    keys = list(z.files)
    key = "images" if "images" in keys else "arr_0" if "arr_0" in keys else keys[0] if len(keys) == 1 else None
    if key is None:
      raise ValueError(f"{path} holds {', '.join(keys)}; expected an array named 'images' (or 'arr_0')")
    images = z[key]
  if images.dtype != np.uint8:
    raise ValueError(f"{path}: {key!r} has dtype {images.dtype}; expected uint8 images in [0, 255]")
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f"{path}: {key!r} has shape {images.shape}; expected [N, H, W, C] with C = 1 or 3")
  return images


def _read_folder(path: str) -> np.ndarray:
  from PIL import Image

  tree = image_files.FileTree(path)
  names = [n for n in tree.names if image_files.is_image_name(n)]
  if not names:
    raise ValueError(f"no image files ({', '.join(image_files.IMAGE_EXTENSIONS)}) in {path}")
  out = None
  for i, name in enumerate(names):
    try:
      with tree.open(name) as f, Image.open(f) as img:
        img.load()
        channels = 1 if img.mode in image_files.GRAYSCALE_MODES else 3
        x = image_files.to_array(img, channels)
    except (OSError, ValueError, SyntaxError) as e:
      raise ValueError(f"{path}: cannot read {name}: {type(e).__name__}: {e}") from None
    if out is None:
      out = np.zeros((len(names),) + x.shape, np.uint8)
    if x.shape != out.shape[1:]:
      h, w, c = out.shape[1:]
      raise ValueError(
        f"{path}: {name} is {x.shape[0]}x{x.shape[1]} px with {x.shape[2]} channel(s); {names[0]} and the "
        f"images before it are {h}x{w} px with {c}: all samples must have one size and channel count"
      )
    out[i] = x
  assert out is not None
  return out


def read_samples(path: str) -> np.ndarray:
  """Images written by any program: a folder of image files or an ``.npz`` -> uint8 ``[N, H, W, C]``.

  Folder images are read in sorted path order (``.png``, ``.jpg``, ``.jpeg``, ``.webp``, ``.bmp``;
  recursively; other files ignored), grey ones as C = 1, others as RGB (the conversions of
  :func:`jgan.data.image_files.to_array`). Raises ValueError for a missing path, no images, or
  images of different sizes or channel counts (naming the first that differs).
  """
  if not os.path.exists(path):
    raise ValueError(f"--samples {path!r} does not exist; give a folder of images or an .npz file")
  if os.path.isdir(path):
    return _read_folder(path)
  if path.endswith(".npz"):
    return _read_npz(path)
  raise ValueError(f"--samples {path!r} is neither a folder of images nor an .npz file")


def check_shape(images: np.ndarray, expected: tuple[int, ...], path: str, dataset: str) -> None:
  """Raises ValueError unless ``images`` ``[N, H, W, C]`` (read from ``path``) match one sample of
  ``dataset``, ``expected = (S, S, C)`` (:func:`jgan.data.sample_shape`)."""
  if tuple(images.shape[1:]) == tuple(expected):
    return
  h, w, c = images.shape[1:]
  raise ValueError(
    f"the images in {path} are {h}x{w} px with {c} channel(s); dataset {dataset!r} at data.image_size="
    f"{expected[0]} has {expected[0]}x{expected[1]} px with {expected[2]}: write the samples at that size "
    "(or compare them with a dataset of their size)"
  )
