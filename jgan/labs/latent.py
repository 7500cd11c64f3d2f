"""The latent space as an object of study: interpolation, walks, concept vectors, arithmetic, neighbours.

Everything here is a pure, batched function of arrays (no generator, no I/O), so it composes with any
``g(z)`` and jits; :mod:`jgan.labs.latent_figures` wires it to a checkpoint and writes the figures.

* **Interpolation** (:func:`lerp`, :func:`slerp`, :func:`interpolate`, :func:`walk`,
  :func:`interpolation_grid`). Under a Gaussian prior in d dimensions, ``|z| ~ sqrt(d)`` almost surely, so
  the straight line between two samples passes through ``|z| ~ sqrt(d/2)`` at its midpoint, a shell the
  generator never saw in training; slerp keeps to the great circle (White 2016, "Sampling generative
  networks").
* **Concept vectors** (:func:`select_top`, :func:`concept_vector`): one z is noisy, so a concept is the
  mean of k (default 3, as in DCGAN) z's whose samples show it, chosen by index, by a classifier's label
  and/or by an attribute score (:mod:`jgan.labs.attributes`).
* **Arithmetic** (:func:`parse_expression`, :func:`evaluate_expression`, :func:`variations`):
  ``"thick7 - thin7 + thin1"`` on named concept vectors, with DCGAN's uniform +-0.25 noise for a row of 8.
* **Memorisation checks** (:func:`nearest_neighbours`, :func:`frame_changes`, :func:`jump_ratio`): a
  generator that memorised its training set is a lookup table, so a walk through z would jump between
  training images instead of changing smoothly (the argument of the survey jgan started from).
"""

from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np

METHODS = ("slerp", "lerp")


def lerp(a: jax.Array, b: jax.Array, t: jax.Array | float) -> jax.Array:
  """Linear interpolation ``(1 - t) a + t b``.

  Args:
    a, b: float ``[..., D]`` (same shape).
    t: float scalar or ``[...]`` (= ``a.shape[:-1]``); 0 gives ``a``, 1 gives ``b``.
  Returns:
    float ``[..., D]``.
  """
  t = jnp.broadcast_to(jnp.asarray(t, a.dtype), a.shape[:-1])[..., None]  # explicit: no rank promotion
  return (1.0 - t) * a + t * b


def slerp(a: jax.Array, b: jax.Array, t: jax.Array | float, eps: float = 1e-4) -> jax.Array:
  """Spherical linear interpolation (Shoemake 1985) on unnormalised vectors, as in White (2016).

  With ``omega = angle(a, b)``::

      slerp(a, b, t) = sin((1 - t) omega) / sin(omega) * a + sin(t omega) / sin(omega) * b

  For ``|a| = |b| = r`` the path stays on the sphere of radius r and the angle to ``a`` grows uniformly,
  ``angle(a, slerp(t)) = t omega``; for other norms the endpoints are still exact. Where
  ``sin(omega) < eps`` (nearly parallel, or antiparallel vectors, where no great circle is singled out)
  it falls back to :func:`lerp`, which agrees with slerp to O(omega^2) as omega -> 0. Safe under
  ``jax.grad`` (the unused branch is evaluated at a harmless angle).

  Args:
    a, b: float ``[..., D]`` (same shape).
    t: float scalar or ``[...]`` (= ``a.shape[:-1]``).
    eps: threshold on ``sin(omega)`` for the lerp fall-back.
  Returns:
    float ``[..., D]``.
  """
  t = jnp.broadcast_to(jnp.asarray(t, a.dtype), a.shape[:-1])
  na = jnp.linalg.norm(a, axis=-1)
  nb = jnp.linalg.norm(b, axis=-1)
  cos = jnp.clip(jnp.sum(a * b, axis=-1) / jnp.maximum(na * nb, 1e-30), -1.0, 1.0)
  ok = 1.0 - cos * cos >= eps * eps  # sin(omega) >= eps
  # Double-where: arccos has an infinite derivative at +-1, so the unselected slerp branch is evaluated
  # at a harmless angle; otherwise its NaN gradient would leak through jnp.where (0 * inf).
  safe_omega = jnp.arccos(jnp.where(ok, cos, 0.0))
  safe_sin = jnp.sin(safe_omega)
  ca = jnp.sin((1.0 - t) * safe_omega) / safe_sin
  cb = jnp.sin(t * safe_omega) / safe_sin
  spherical = ca[..., None] * a + cb[..., None] * b
  return jnp.where(ok[..., None], spherical, lerp(a, b, t))


def _interp(method: str):
  if method not in METHODS:
    raise ValueError(f"unknown interpolation method {method!r}; valid choices: {', '.join(METHODS)}")
  return slerp if method == "slerp" else lerp


def interpolate(a: jax.Array, b: jax.Array, num: int, method: str = "slerp") -> jax.Array:
  """``num`` evenly spaced points (in t) from ``a`` to ``b``, both endpoints included.

  Args:
    a, b: float ``[..., D]`` (same shape), e.g. ``[B, D]`` for B interpolations at once (a grid).
    num: points per path, >= 2.
    method: "slerp" or "lerp".
  Returns:
    float ``[..., num, D]``; ``out[..., 0, :] == a``, ``out[..., -1, :] == b``.
  """
  fn = _interp(method)
  t = jnp.linspace(0.0, 1.0, num, dtype=a.dtype)
  # vmap over t, then move the path axis next to D.
  path = jax.vmap(lambda ti: fn(a, b, ti))(t)  # [num, ..., D]
  return jnp.moveaxis(path, 0, -2)


def walk(points: jax.Array, frames_per_segment: int, *, closed: bool = False, method: str = "slerp") -> jax.Array:
  """A walk through K latent points, ``frames_per_segment`` frames per leg.

  Each leg ``p_i -> p_{i+1}`` contributes its frames without its endpoint (the next leg starts there).
  An open walk ends with ``p_{K-1}``; a closed walk also returns from ``p_{K-1}`` to ``p_0`` and stops
  one frame before ``p_0``, so the frames loop seamlessly (an animated GIF).

  Args:
    points: float ``[K, D]``, K >= 2.
    frames_per_segment: F >= 1.
    closed: loop back to the first point.
    method: "slerp" or "lerp".
  Returns:
    float ``[(K - 1) F + 1, D]`` (open) or ``[K F, D]`` (closed); frame ``i F`` is ``p_i``.
  """
  starts = points
  ends = jnp.roll(points, -1, axis=0)
  if not closed:
    starts, ends = starts[:-1], ends[:-1]
  legs = interpolate(starts, ends, frames_per_segment + 1, method)[:, :-1]  # [legs, F, D]
  frames = legs.reshape(-1, points.shape[-1])
  return frames if closed else jnp.concatenate([frames, points[-1:]], axis=0)


def interpolation_grid(corners: jax.Array, rows: int, cols: int, method: str = "slerp") -> jax.Array:
  """A 2-D sheet spanned by four latent corners: interpolate down the left and right edges, then across.

  Args:
    corners: float ``[4, D]``: top-left, top-right, bottom-left, bottom-right.
    rows, cols: grid size, each >= 2.
    method: "slerp" or "lerp" (with lerp this is bilinear interpolation).
  Returns:
    float ``[rows, cols, D]`` with the corners at the four corners.
  """
  left = interpolate(corners[0], corners[2], rows, method)  # [rows, D]
  right = interpolate(corners[1], corners[3], rows, method)
  return interpolate(left, right, cols, method)


# --- Concept vectors and arithmetic ---------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("k", "highest"))
def select_top(
  scores: jax.Array, mask: jax.Array | None = None, *, k: int = 3, highest: bool = True
) -> tuple[jax.Array, jax.Array]:
  """Indices of the k best-scoring candidates among those with ``mask`` True.

  E.g. "the 3 z's whose samples the classifier labels 7 with the highest thickness":
  ``select_top(thickness, labels == 7, k=3)``.

  Args:
    scores: float ``[N]`` (an attribute; use zeros to pick by mask alone, in index order).
    mask: bool ``[N]`` or None (all eligible).
    k: how many, static.
    highest: True for the largest scores, False for the smallest.
  Returns:
    ``(idx, valid)``: int32 ``[k]`` indices ordered best first, and bool ``[k]``, False where fewer than
    k candidates were eligible (those indices are meaningless; :func:`concept_vector` checks on the host).
  """
  signed = scores if highest else -scores
  if mask is not None:
    signed = jnp.where(mask, signed, -jnp.inf)
  # Ties (e.g. all-zero scores) resolve to the lower index, as lax.top_k does.
  vals, idx = jax.lax.top_k(signed, k)
  return idx.astype(jnp.int32), vals > -jnp.inf


def concept_vector(z: jax.Array, idx: jax.Array | np.ndarray, valid: jax.Array | None = None) -> jax.Array:
  """The concept vector: the mean of the chosen z's, ``(1/k) sum_i z[idx_i]``.

  Args:
    z: float ``[N, D]``.
    idx: int ``[k]`` rows of ``z``.
    valid: optional bool ``[k]`` from :func:`select_top`; any False raises ValueError (host check).
  Returns:
    float ``[D]``.
  """
  if valid is not None and not bool(np.all(np.asarray(valid))):
    raise ValueError(
      f"only {int(np.sum(np.asarray(valid)))} of {len(idx)} wanted candidates exist; "
      "draw more z's or relax the selection"
    )
  return jnp.mean(jnp.take(z, jnp.asarray(idx), axis=0), axis=0)


_TERM = re.compile(r"\s*([+-])?\s*(?:(\d+(?:\.\d*)?|\.\d+)\s*\*?\s*)?([A-Za-z_][A-Za-z_0-9]*)\s*")


def parse_expression(expr: str) -> list[tuple[float, str]]:
  """``"a - b + 0.5*c"`` -> ``[(1.0, "a"), (-1.0, "b"), (0.5, "c")]``.

  Terms are identifiers with an optional leading sign and an optional numeric coefficient
  (``2*a``, ``2 a`` and ``2a`` are the same). Raises ValueError on anything else.
  """
  terms: list[tuple[float, str]] = []
  pos = 0
  while pos < len(expr):
    m = _TERM.match(expr, pos)
    if not m or m.end() == pos or (terms and not m.group(1)):
      raise ValueError(
        f"cannot parse latent expression {expr!r} at position {pos}: expected "
        "[+|-] [number [*]] name, e.g. 'thick7 - thin7 + thin1'"
      )
    sign = -1.0 if m.group(1) == "-" else 1.0
    terms.append((sign * float(m.group(2) or 1.0), m.group(3)))
    pos = m.end()
  if not terms:
    raise ValueError("empty latent expression")
  return terms


def evaluate_expression(expr: str, concepts: dict[str, jax.Array]) -> jax.Array:
  """The linear combination ``sum_j c_j concepts[name_j]`` written as ``expr`` (see :func:`parse_expression`).

  Args:
    expr: e.g. ``"thick7 - thin7 + thin1"``.
    concepts: name -> float ``[D]``.
  Returns:
    float ``[D]``. Raises ValueError naming an unknown concept.
  """
  terms = parse_expression(expr)
  missing = sorted({n for _, n in terms} - set(concepts))
  if missing:
    raise ValueError(f"unknown concept(s) {', '.join(missing)} in {expr!r}; defined: {', '.join(sorted(concepts))}")
  coeffs = jnp.asarray([c for c, _ in terms], jnp.float32)
  vectors = jnp.stack([concepts[n] for _, n in terms])
  return coeffs @ vectors


def variations(z: jax.Array, rng: jax.Array, n: int = 8, scale: float = 0.25, keep_first: bool = True) -> jax.Array:
  """DCGAN's row of variations around an arithmetic result: ``z + u``, ``u ~ U(-scale, scale)^D``.

  Args:
    z: float ``[D]``.
    rng: PRNG key.
    n: how many (DCGAN shows 8 around the exact result).
    scale: half-width of the uniform noise (DCGAN: 0.25).
    keep_first: row 0 is ``z`` itself, without noise.
  Returns:
    float ``[n, D]``.
  """
  noise = jax.random.uniform(rng, (n, z.shape[-1]), z.dtype, -scale, scale)
  if keep_first:
    noise = noise.at[0].set(0.0)
  return z[None, :] + noise


# --- Nearest neighbours and smoothness ------------------------------------------------------------


@jax.jit
def squared_distances(x: jax.Array, y: jax.Array) -> jax.Array:
  """All pairwise squared Euclidean distances ``|x_i - y_j|^2 = |x_i|^2 - 2 x_i.y_j + |y_j|^2`` (>= 0).

  Args:
    x: float ``[N, F]``; y: float ``[M, F]``.
  Returns:
    float32 ``[N, M]``. The expansion loses ~1e-6 relative precision; negatives from cancellation are
    clipped to 0.
  """
  x = x.astype(jnp.float32)
  y = y.astype(jnp.float32)
  xx = jnp.sum(x * x, axis=1)[:, None]
  yy = jnp.sum(y * y, axis=1)[None, :]
  return jnp.maximum(xx - 2.0 * (x @ y.T) + yy, 0.0)


@functools.partial(jax.jit, static_argnames="k")
def _nearest(queries, bank, *, k):
  neg, idx = jax.lax.top_k(-squared_distances(queries, bank), k)
  return jnp.sqrt(-neg), idx.astype(jnp.int32)


def nearest_neighbours(queries, bank, k: int = 1, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
  """The k nearest rows of ``bank`` for each query (Euclidean), in query batches of ``batch_size``.

  A memorisation check: generated samples vs training images, in pixel space or in a classifier's
  feature space. Queries are padded to whole batches, so any N compiles once.

  Args:
    queries: float ``[N, ...]`` (flattened to ``[N, F]``), e.g. images in [-1, 1] or features.
    bank: float ``[M, ...]`` with the same F, M >= k.
    k: neighbours per query.
    batch_size: queries per jitted call (memory ``batch_size * M`` floats).
  Returns:
    ``(distances, indices)``: float32 ``[N, k]`` ascending and int32 ``[N, k]`` rows of ``bank``.
  """
  q = np.asarray(queries, np.float32).reshape(len(queries), -1)
  b = jnp.asarray(np.asarray(bank, np.float32).reshape(len(bank), -1))
  n = len(q)
  bs = min(batch_size, max(n, 1))
  pad = (-n) % bs
  q = np.concatenate([q, np.zeros((pad, q.shape[1]), np.float32)])
  dists, idx = zip(*(_nearest(jnp.asarray(q[i : i + bs]), b, k=k) for i in range(0, len(q), bs)))
  return np.concatenate(dists)[:n], np.concatenate(idx)[:n]


def frame_changes(frames: jax.Array) -> jax.Array:
  """Root-mean-square pixel change between consecutive frames, ``sqrt(mean((x_{t+1} - x_t)^2))``.

  Args:
    frames: float ``[..., T, H, W, C]`` (or any ``[..., T, *item]`` with ``item`` of rank 3).
  Returns:
    float ``[..., T - 1]`` >= 0 (in the frames' units: for [-1, 1] images, at most 2).
  """
  diff = frames[..., 1:, :, :, :] - frames[..., :-1, :, :, :]
  return jnp.sqrt(jnp.mean(diff * diff, axis=(-3, -2, -1)))


def jump_ratio(changes: jax.Array) -> jax.Array:
  """Largest over mean per-frame change of each walk, ``max_t c_t / mean_t c_t``, in ``[1, T - 1]``.

  1 means every frame changes equally (perfectly smooth); T - 1 means all change happens in one frame
  (a lookup table that switches images once). A walk with no change at all counts as 1.

  Args:
    changes: float ``[..., T - 1]`` from :func:`frame_changes`.
  Returns:
    float ``[...]``.
  """
  mean = jnp.mean(changes, axis=-1)
  top = jnp.max(changes, axis=-1)
  return jnp.where(mean > 0, top / jnp.where(mean > 0, mean, 1.0), 1.0)
