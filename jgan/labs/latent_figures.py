"""Figures of a trained generator's latent space, with their z's saved (``jgan latent``).

Each op ``op_NAME(args, g, config, out) -> [written paths]`` draws z's, renders them with ``g`` (from
:func:`load_generator_fn`) and writes ``OP.png`` (and ``walk.gif``) plus ``OP.npz`` holding every z
drawn (``z``, float32, latent rows in figure order), so any figure can be redrawn with
``g(np.load(path)["z"])``. ``args`` holds the options of :mod:`jgan.cli.latent` (n, seed, frames,
points, method, expr, k, pool, min_confidence, classifier, scale).

Concept names in ``--expr`` are ``[style][digit]``: ``thick7`` is the mean of the ``--k`` z's whose
samples the domain classifier labels 7 (with confidence >= ``--min-confidence``) that have the most
ink; styles are ``thick``/``thin`` (:func:`jgan.labs.attributes.thickness`), ``right``/``left``/``upright``
(:func:`jgan.labs.attributes.slant`); a bare digit picks the most confident; a bare style ignores the label.
"""

from __future__ import annotations

import logging
import os
import re

import numpy as np

log = logging.getLogger(__name__)

# style -> (attribute, highest first?). "upright" ranks by |slant|, smallest first.
STYLES = {
  "thick": ("thickness", True),
  "thin": ("thickness", False),
  "right": ("slant", True),
  "left": ("slant", False),
  "upright": ("abs_slant", False),
}
_CONCEPT = re.compile(r"^(?P<style>[a-z]+?)?(?P<digit>\d)?$")


def load_generator_fn(
  workdir: str, *, ema: bool = True, step: int | None = None, batch_size: int = 256, label: int | None = None
):
  """``(g, config)``: ``g(z float [N, latent_dim]) -> float32 numpy [N, H, W, C]`` in [-1, 1].

  G runs in inference mode, jitted once for ``batch_size`` rows (z is padded), so any N reuses one
  program. ``config`` is the run's. A class-conditional G draws every
  sample from class ``label`` (int in ``[0, num_classes)``; None: class 0), so an interpolation or walk
  moves in z within one class, as conditional GANs' latent figures do; an unconditional G refuses a
  ``label``. Raises CheckpointError if ``workdir`` holds no checkpoint, ValueError for a bad ``label``.
  """
  import jax
  import jax.numpy as jnp

  from jgan import resume
  from jgan import state as state_lib

  state, config = resume.load_state(workdir, step=step)
  k = config.model.num_classes if config.model.get("conditional", False) else 0
  if label is not None and not k:
    raise ValueError(f"--label={label} needs a class-conditional generator; {workdir!r} trained an unconditional one")
  if k and not 0 <= (label or 0) < k:
    raise ValueError(f"--label={label} is not a class of this generator; valid: 0..{k - 1}")
  labels = jnp.full((batch_size,), label or 0, jnp.int32) if k else None
  apply = jax.jit(lambda st, z: state_lib.generate(st, z, labels, ema=ema).astype(jnp.float32))

  def g(z) -> np.ndarray:
    z = np.asarray(z, np.float32).reshape(-1, config.model.latent_dim)
    n = len(z)
    z = np.concatenate([z, np.zeros(((-n) % batch_size, z.shape[1]), np.float32)])
    return np.concatenate([np.asarray(apply(state, z[i : i + batch_size])) for i in range(0, len(z), batch_size)])[:n]

  return g, config


def training_images(data_cfg, split: str = "train") -> np.ndarray:
  """A dataset split as float32 ``[N, S, S, C]`` in [-1, 1], decoded as training decodes it."""
  from jgan import data as data_lib

  return data_lib.split_arrays(data_cfg, split)[0]


def parse_concept(name: str) -> tuple[str | None, int | None]:
  """``"thick7"`` -> ``("thick", 7)``; ``"7"`` -> ``(None, 7)``; ``"thin"`` -> ``("thin", None)``."""
  m = _CONCEPT.match(name)
  if (
    not m
    or (m.group("style") is None and m.group("digit") is None)
    or (m.group("style") is not None and m.group("style") not in STYLES)
  ):
    raise ValueError(
      f"bad concept name {name!r}: expected [style][digit] with style one of "
      f"{', '.join(STYLES)} (e.g. thick7, thin1, 3, right)"
    )
  digit = m.group("digit")
  return m.group("style"), (int(digit) if digit is not None else None)


def describe(images: np.ndarray, logits_fn=None) -> dict[str, np.ndarray]:
  """Per-image scores for concept selection: thickness, slant, abs_slant, and label / confidence.

  ``label`` (int32 ``[N]``) and ``confidence`` (float32 ``[N]``, the max softmax probability) are only
  present when ``logits_fn`` is given.
  """
  import jax
  import jax.numpy as jnp

  from jgan.labs import attributes

  x = jnp.asarray(images)
  out = {"thickness": np.asarray(attributes.thickness(x)), "slant": np.asarray(attributes.slant(x))}
  out["abs_slant"] = np.abs(out["slant"])
  if logits_fn is not None:
    probs = np.concatenate(
      [np.asarray(jax.nn.softmax(logits_fn(x[i : i + 500]), axis=-1)) for i in range(0, len(x), 500)]
    )
    out["label"] = probs.argmax(-1).astype(np.int32)
    out["confidence"] = probs.max(-1).astype(np.float32)
  return out


def concept_indices(name: str, scores: dict[str, np.ndarray], k: int = 3, min_confidence: float = 0.9) -> np.ndarray:
  """The k rows of a pool that define concept ``name`` (see the module docstring), best first: int32 ``[k]``.

  ``scores`` comes from :func:`describe`. Raises ValueError if the concept needs a label but no
  classifier scored the pool, or if fewer than k candidates qualify.
  """
  from jgan.labs import latent

  style, digit = parse_concept(name)
  n = len(scores["thickness"])
  mask = np.ones(n, bool)
  if digit is not None:
    if "label" not in scores:
      raise ValueError(f"concept {name!r} needs a digit classifier (--classifier)")
    mask = (scores["label"] == digit) & (scores["confidence"] >= min_confidence)
  if style is None:
    key, highest = "confidence", True
  else:
    key, highest = STYLES[style]
  if mask.sum() < k:
    raise ValueError(
      f"only {int(mask.sum())} of {n} samples qualify for concept {name!r} (need {k}); "
      "draw a larger --pool or lower --min-confidence"
    )
  idx, _ = latent.select_top(np.asarray(scores[key], np.float32), mask, k=k, highest=highest)
  return np.asarray(idx)


def _save_npz(path: str, **arrays) -> str:
  np.savez_compressed(path, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]  # stub
  return path


def labelled_rows(path: str, rows: list[tuple[str, np.ndarray]], ncols: int, cell: float = 0.8) -> str:
  """Writes one PNG figure: each row a label and up to ``ncols`` images float ``[k, H, W, C]`` in [-1, 1].

  ``cell``: inches per 28 px image (100 dpi). Short rows are padded with white.
  """
  import matplotlib.pyplot as plt

  from jgan import (
    plots,  # noqa: F401  (selects matplotlib's headless backend)
    writers,
  )

  grids = []
  for _, images in rows:
    blank = np.ones((ncols - len(images), *images.shape[1:]), np.float32)  # white: invisible padding
    grids.append(writers.image_grid(np.concatenate([images, blank]), ncols=ncols))
  # Size the figure to the grids (inches = pixels * cell / 28) so no space is left around them.
  inch = cell / 28
  label_w, gap, margin = 1.2, 0.06, 0.05
  heights = [g.shape[0] * inch for g in grids]
  width = label_w + grids[0].shape[1] * inch + margin
  height = sum(heights) + gap * (len(grids) - 1) + 2 * margin
  fig = plt.figure(figsize=(width, height), dpi=100)
  top = height - margin
  for (label, _), grid, h in zip(rows, grids, heights):
    ax = fig.add_axes((label_w / width, (top - h) / height, grid.shape[1] * inch / width, h / height))
    top -= h + gap
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=10)
    for spine in ax.spines.values():
      spine.set_visible(False)
  fig.savefig(path)
  plt.close(fig)
  return path


def _normal(seed: int, shape: tuple[int, ...], salt: int = 0) -> np.ndarray:
  import jax

  return np.asarray(jax.random.normal(jax.random.fold_in(jax.random.key(seed), salt), shape))


def op_interpolate(args, g, config, out: str) -> list[str]:
  """Rows of interpolations between random z pairs, and a 2-D sheet spanned by four random corners."""
  import jax.numpy as jnp

  from jgan import writers
  from jgan.labs import latent

  n, frames, d = args.n or 8, args.frames or 10, config.model.latent_dim
  ends = _normal(args.seed, (2, n, d), 10)
  z = np.asarray(latent.interpolate(jnp.asarray(ends[0]), jnp.asarray(ends[1]), frames, args.method))
  sheet = np.asarray(latent.interpolation_grid(jnp.asarray(_normal(args.seed, (4, d), 11)), 8, 8, args.method))
  rows_png = writers.save_png(
    os.path.join(out, "interpolate.png"), writers.image_grid(g(z.reshape(-1, d)), ncols=frames), args.scale
  )
  sheet_png = writers.save_png(
    os.path.join(out, "interpolate_sheet.png"), writers.image_grid(g(sheet.reshape(-1, d)), ncols=8), args.scale
  )
  npz = _save_npz(os.path.join(out, "interpolate.npz"), z=z, sheet=sheet, method=args.method)
  return [rows_png, sheet_png, npz]


def op_walk(args, g, config, out: str) -> list[str]:
  """``--n`` closed walks through ``--points`` random z's each, tiled into one looping GIF."""
  import jax
  import jax.numpy as jnp
  from PIL import Image

  from jgan import writers
  from jgan.labs import latent

  n, frames, d = args.n or 16, args.frames or 16, config.model.latent_dim
  points = _normal(args.seed, (n, args.points, d), 20)
  z = np.asarray(jax.vmap(lambda p: latent.walk(p, frames, closed=True, method=args.method))(jnp.asarray(points)))
  images = g(z.reshape(-1, d))
  images = images.reshape(*z.shape[:2], *images.shape[1:])  # [n, T, H, W, C]
  ncols = int(np.ceil(np.sqrt(n)))
  gif_frames = []
  for t in range(images.shape[1]):
    grid = writers.image_grid(images[:, t], ncols=ncols)
    grid = (grid.astype(np.int32) * 31 + 127) // 255 * 255 // 31  # 32 grey levels: half the GIF's size
    img = Image.fromarray(grid.astype(np.uint8)[..., 0] if grid.shape[-1] == 1 else grid.astype(np.uint8))
    gif_frames.append(img.resize((img.width * args.scale, img.height * args.scale), Image.Resampling.NEAREST))
  gif = os.path.join(out, "walk.gif")
  gif_frames[0].save(gif, save_all=True, append_images=gif_frames[1:], duration=80, loop=0, optimize=True)
  strip = writers.save_png(os.path.join(out, "walk.png"), writers.image_grid(images[0], ncols=frames), args.scale)
  npz = _save_npz(os.path.join(out, "walk.npz"), z=z, points=points, method=args.method)
  return [gif, strip, npz]


def _logits_fn(path: str, required: bool):
  """The domain classifier's logits function, or None if none is found and ``required`` is False."""
  from jgan.metrics import classifier

  if not path and not required:
    try:
      classifier.classifier_path("")
    except FileNotFoundError:
      return None
  return classifier.load_classifier(path)


def op_arithmetic(args, g, config, out: str) -> list[str]:
  """Concept vectors from a pool of z's, combined by ``--expr``; a row of 8 DCGAN-style variations.

  The figure has one row per term (its k chosen samples, then G of their mean z) and a last row with
  G(result) followed by 7 variations with U(-0.25, 0.25) noise. Prints the result images' mean thickness
  and classifier labels.
  """
  import jax
  import jax.numpy as jnp

  from jgan.labs import latent

  terms = latent.parse_expression(args.expr)
  names = list(dict.fromkeys(n for _, n in terms))
  needs_label = any(parse_concept(n)[1] is not None for n in names)
  fns = _logits_fn(args.classifier, required=needs_label)
  logits_fn = fns[1] if fns else None
  d = config.model.latent_dim
  pool = _normal(args.seed, (args.pool, d), 30)
  images = g(pool)
  scores = describe(images, logits_fn)
  idx = {n: concept_indices(n, scores, args.k, args.min_confidence) for n in names}
  concepts = {n: latent.concept_vector(jnp.asarray(pool), i) for n, i in idx.items()}
  result = latent.evaluate_expression(args.expr, concepts)
  var = np.asarray(latent.variations(result, jax.random.fold_in(jax.random.key(args.seed), 31), 8))
  var_images = g(var)
  mean_images = {n: g(np.asarray(v)[None])[0] for n, v in concepts.items()}
  rows = []
  for c, n in terms:
    sign = "-" if c < 0 else "+"
    coef = "" if abs(abs(c) - 1) < 1e-9 else f"{abs(c):g} "
    # The k chosen samples, a gap, then G(mean of their z's): the concept itself.
    rows.append((f"{sign} {coef}{n}", np.concatenate([images[idx[n]], np.ones_like(images[:1]), mean_images[n][None]])))
  rows.append(("= result", var_images))
  png = labelled_rows(os.path.join(out, "arithmetic.png"), rows, ncols=8)
  res = describe(var_images, logits_fn)
  summary = f"result thickness {np.mean(res['thickness']):.3f}"
  if "label" in res:
    summary += f", labels {res['label'].tolist()}"
  log.info(f"{args.expr}: {summary}")
  npz = _save_npz(
    os.path.join(out, "arithmetic.npz"),
    z=var,
    pool=pool,
    expr=args.expr,
    names=np.asarray(names),
    indices=np.stack([idx[n] for n in names]),
    concepts=np.stack([np.asarray(concepts[n]) for n in names]),
  )
  return [png, npz]


def op_neighbours(args, g, config, out: str) -> list[str]:
  """Generated samples next to their nearest training images (pixels; classifier features if available).

  Also prints the median nearest-training-neighbour distance of 512 samples next to that of the held-out
  real images: samples much closer to the training set than real unseen digits would mean memorisation.
  """
  from jgan.labs import latent

  n, d = args.n or 16, config.model.latent_dim
  z = _normal(args.seed, (max(n, 512), d), 40)
  samples = g(z)
  train = training_images(config.data, "train")
  dist, nn = latent.nearest_neighbours(samples, train)
  rows = [("sample", samples[:n]), ("pixel NN", train[nn[:n, 0]])]
  msg = [f"median pixel NN distance: samples {np.median(dist):.2f}"]
  try:
    held_out = training_images(config.data, "test")
    msg.append(f"held-out real {np.median(latent.nearest_neighbours(held_out, train)[0]):.2f}")
  except (KeyError, FileNotFoundError):  # no test split
    pass
  fns = _logits_fn(args.classifier, required=False)
  extra = {}
  if fns:
    feats = lambda x: np.concatenate([np.asarray(fns[0](x[i : i + 500])) for i in range(0, len(x), 500)])
    fdist, fnn = latent.nearest_neighbours(feats(samples), feats(train))
    rows.append(("feature NN", train[fnn[:n, 0]]))
    extra = {"feature_dist": fdist, "feature_index": fnn}
  else:
    log.warning("no domain classifier found: pixel-space neighbours only (see --classifier)")
  log.info(", ".join(msg))
  png = labelled_rows(os.path.join(out, "neighbours.png"), rows, ncols=n)
  npz = _save_npz(os.path.join(out, "neighbours.npz"), z=z, pixel_dist=dist, pixel_index=nn, **extra)
  return [png, npz]


OP_FNS = {"interpolate": op_interpolate, "walk": op_walk, "arithmetic": op_arithmetic, "neighbours": op_neighbours}
