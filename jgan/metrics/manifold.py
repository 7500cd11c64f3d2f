"""k-NN manifold metrics: precision/recall and density/coverage.

Both estimate each distribution's support as the union of balls around its samples, each ball's
radius being the distance to the sample's k-th nearest neighbour within its own set (the sample itself
not counted).

* Improved precision and recall (Kynkäänniemi et al. 2019, k = 3): precision is the share of fake
  samples inside the real manifold (real radii); recall is the share of real samples inside the fake
  manifold (fake radii).
* Density and coverage (Naeem et al. 2020, k = 5), both w.r.t. the real manifold only, which makes them
  robust to fake outliers: density = ``1/(k M) sum_j #{i : ||f_j - r_i|| < rad_i}`` (can exceed 1;
  ~1 when fakes follow the real distribution); coverage = share of real samples whose ball contains at
  least one fake sample.

**Ball boundaries differ between the two reference implementations**, so each pair follows its own:
Kynkäänniemi et al.'s released code (NVlabs/precision-recall) counts a sample *on* a ball's boundary as
inside (``<=``), Naeem et al.'s ``prdc`` package counts it outside (``<``, for all four metrics). jgan's
precision/recall default to ``<=`` and density/coverage to ``<`` (``pr_inclusive`` / ``dc_inclusive``
choose); the difference matters only for ties, chiefly duplicated samples: a fake set identical to the
real one has density ``(k + 1) / k`` with ``<=`` (each fake sits on its own real neighbour's k-th
boundary) and exactly 1 with ``<``. Pairwise squared distances
``|a|^2 + |b|^2 - 2 a.b`` (clipped at 0, features centred on the real mean first) are computed in
float32 on the default JAX device, one batch of rows against the whole other set per jitted call, so
10k x 10k x 2048 needs one ``[batch, 10k]`` block at a time (40 MB at batch 1024), never the full
matrix. :func:`manifold_metrics` computes all four metrics from one real-vs-fake pass plus one k-NN
pass per set for the radii. The last batch is zero-padded to the batch size so every call reuses one
compilation. Matmuls use ``Precision.HIGHEST`` so GPUs/TPUs do not round the features to
TF32/bfloat16.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jgan.metrics.validation import as_features

DEFAULT_BATCH_SIZE = 1024


def _sq_dists(rows: jax.Array, cols: jax.Array, cols_sq: jax.Array) -> jax.Array:
  """Squared Euclidean distances ``[B, d] x [C, d] -> [B, C]`` (float32, >= 0)."""
  rows_sq = jnp.sum(rows * rows, axis=1)
  cross = jnp.matmul(rows, cols.T, precision=jax.lax.Precision.HIGHEST)
  return jnp.maximum(rows_sq[:, None] + cols_sq[None, :] - 2.0 * cross, 0.0)


@functools.partial(jax.jit, static_argnames=("ks",))
def _knn_batch(rows, cols, cols_sq, *, ks):
  # `cols` is the set `rows` come from: each row's own distance (~0) is its smallest, so the k-th
  # neighbour excluding itself is the (k+1)-th smallest value. One top_k serves every k in `ks`.
  neg_smallest, _ = jax.lax.top_k(-_sq_dists(rows, cols, cols_sq), max(ks) + 1)
  return jnp.stack([-neg_smallest[:, k] for k in ks], axis=1)


def _inside(d2: jax.Array, r2: jax.Array, inclusive: bool) -> jax.Array:
  return d2 <= r2 if inclusive else d2 < r2


@functools.partial(jax.jit, static_argnames=("pr_inclusive", "dc_inclusive"))
def _cross_batch(real_rows, real_r2_pr, real_r2_dc, fake, fake_sq, fake_r2, *, pr_inclusive, dc_inclusive):
  """One block of real samples (rows) against every fake sample (columns).

  Args: real rows ``[B, d]`` with their squared precision / density radii ``[B]`` (-1 on padded rows,
  so their balls contain nothing), fakes ``[M, d]`` with squared norms and squared radii ``[M]``.

  Returns ``(in_pr [M], in_dc [M])``: int32 counts of this block's real balls containing each fake;
  ``recalled [B]``: whether each real row lies in some fake ball; ``nearest [B]``: squared distance from
  each real row to its nearest fake.
  """
  d2 = _sq_dists(real_rows, fake, fake_sq)
  in_pr = jnp.sum(_inside(d2, real_r2_pr[:, None], pr_inclusive), axis=0, dtype=jnp.int32)
  in_dc = jnp.sum(_inside(d2, real_r2_dc[:, None], dc_inclusive), axis=0, dtype=jnp.int32)
  recalled = jnp.any(_inside(d2, fake_r2[None, :], pr_inclusive), axis=1)
  return in_pr, in_dc, recalled, jnp.min(d2, axis=1)


def _centred(real_features, fake_features) -> tuple[jax.Array, jax.Array]:
  real = as_features(real_features, "real features")
  fake = as_features(fake_features, "fake features")
  if real.shape[1] != fake.shape[1]:
    raise ValueError(f"need real [N, D] and fake [M, D] features; got {real.shape} and {fake.shape}.")
  # Distances are translation invariant; centring on the real mean shrinks |a|^2 + |b|^2 - 2 a.b's
  # terms (Inception features are all >= 0) and with them the float32 cancellation error.
  mean = real.mean(axis=0, keepdims=True)
  return jnp.asarray(real - mean, jnp.float32), jnp.asarray(fake - mean, jnp.float32)


def _row_batches(x: jax.Array, batch_size: int):
  """Yields ``(start, rows)``, every ``rows`` of exactly ``b`` rows (the last zero-padded)."""
  n = x.shape[0]
  b = max(1, min(int(batch_size), n))
  pad = (-n) % b
  if pad:
    x = jnp.concatenate([x, jnp.zeros((pad, x.shape[1]), x.dtype)], axis=0)
  for start in range(0, n + pad, b):
    yield start, x[start : start + b]


def _knn_sq_radii(x: jax.Array, ks: tuple[int, ...], batch_size: int) -> np.ndarray:
  """Squared k-NN radii ``[N, len(ks)]`` of a float32 set against itself, in fixed-size row batches."""
  n = x.shape[0]
  if not all(1 <= k < n for k in ks):
    raise ValueError(f"need 1 <= k < N; got k={ks}, N={n}.")
  x_sq = jnp.sum(x * x, axis=1)
  out = [np.asarray(_knn_batch(rows, x, x_sq, ks=ks)) for _, rows in _row_batches(x, batch_size)]
  return np.concatenate(out)[:n]


def _padded(v: np.ndarray, size: int) -> np.ndarray:
  out = np.full((size,), -1.0, np.float32)
  out[: v.shape[0]] = v
  return out


def manifold_metrics(
  real_features,
  fake_features,
  *,
  k_pr: int | None = 3,
  k_dc: int | None = 5,
  batch_size: int = DEFAULT_BATCH_SIZE,
  pr_inclusive: bool = True,
  dc_inclusive: bool = False,
) -> dict[str, float]:
  """Precision, recall, density and coverage in one pass over the real-vs-fake distances.

  Cost: one k-NN pass over the real set (both radii from one ``top_k``), one over the fake set (only
  for recall), and one real-vs-fake pass shared by all four metrics, i.e. 3 ``N x M x D`` distance
  computations instead of 6 for :func:`precision_recall` then :func:`density_coverage`.

  Args:
    real_features: ``[N, D]`` array-like of floats, ``N > max(k_pr, k_dc)``.
    fake_features: ``[M, D]`` array-like of floats (``M > k_pr`` when ``k_pr`` is set).
    k_pr: neighbour rank for precision/recall (Kynkäänniemi et al.: 3); None skips them.
    k_dc: neighbour rank for density/coverage (Naeem et al.: 5); None skips them.
    batch_size: real rows per jitted distance block (memory ~ ``batch_size * max(N, M) * 4`` bytes).
    pr_inclusive: precision/recall balls include their boundary (``<=``, Kynkäänniemi et al.'s code);
      False gives the ``prdc`` package's ``<``.
    dc_inclusive: density/coverage balls include their boundary; False (default) is ``prdc``'s ``<``.

  Returns:
    ``{"precision", "recall"}`` (each in ``[0, 1]``) if ``k_pr`` is set, and ``{"density"`` (in
    ``[0, N / k]``, ~1 for matching distributions), ``"coverage"}`` (in ``[0, 1]``) if ``k_dc`` is
    set, as Python floats.
  """
  real, fake = _centred(real_features, fake_features)
  n, m = real.shape[0], fake.shape[0]
  ks = tuple(k for k in (k_pr, k_dc) if k is not None)
  if not ks:
    raise ValueError("at least one of k_pr and k_dc must be set.")
  real_r2 = _knn_sq_radii(real, ks, batch_size)  # [N, len(ks)]
  r2_pr = real_r2[:, 0] if k_pr is not None else np.full((n,), -1.0, np.float32)
  r2_dc = real_r2[:, -1] if k_dc is not None else np.full((n,), -1.0, np.float32)
  fake_r2: Any  # host radii, then on the device
  if k_pr is not None:
    fake_r2 = _knn_sq_radii(fake, (k_pr,), batch_size)[:, 0]
  else:
    fake_r2 = np.full((m,), -1.0, np.float32)
  b = max(1, min(int(batch_size), n))
  padded_n = n + (-n) % b
  r2_pr, r2_dc = _padded(r2_pr, padded_n), _padded(r2_dc, padded_n)
  fake_sq = jnp.sum(fake * fake, axis=1)
  fake_r2 = jnp.asarray(fake_r2)
  in_pr = np.zeros((m,), np.int64)
  in_dc = np.zeros((m,), np.int64)
  recalled, nearest = [], []
  # Real samples are the rows, as in the radius pass: a density/coverage distance is computed in the
  # same orientation (real row i against a column) as the radius it is compared with, so a fake that
  # duplicates real i's k-th neighbour rounds like that neighbour did and lands inside (transposed,
  # the float32 cross terms can differ in the last bit; the test of a set against itself checks this).
  for start, rows in _row_batches(real, batch_size):
    out = _cross_batch(
      rows,
      jnp.asarray(r2_pr[start : start + b]),
      jnp.asarray(r2_dc[start : start + b]),
      fake,
      fake_sq,
      fake_r2,
      pr_inclusive=bool(pr_inclusive),
      dc_inclusive=bool(dc_inclusive),
    )
    in_pr += np.asarray(out[0])
    in_dc += np.asarray(out[1])
    recalled.append(np.asarray(out[2]))
    nearest.append(np.asarray(out[3]))
  result = {}
  if k_pr is not None:
    result["precision"] = float(np.mean(in_pr > 0))
    result["recall"] = float(np.mean(np.concatenate(recalled)[:n]))
  if k_dc is not None:
    result["density"] = float(np.sum(in_dc)) / (k_dc * m)
    nearest_d2 = np.concatenate(nearest)[:n]
    covered = nearest_d2 <= r2_dc[:n] if dc_inclusive else nearest_d2 < r2_dc[:n]
    result["coverage"] = float(np.mean(covered))
  return result


def knn_radii(features, k: int, *, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
  """Distance from each sample to its k-th nearest neighbour within the same set (itself excluded).

  Args:
    features: ``[N, D]`` array-like of floats, ``N > k``.
    k: neighbour rank, ``>= 1``.
    batch_size: query rows per jitted call (memory ~ ``batch_size * N * 4`` bytes).

  Returns:
    float32 ``[N]`` radii >= 0 (0 where a sample has >= k exact duplicates).
  """
  x: Any = np.asarray(features)
  x, _ = _centred(x, x[:1])
  return np.sqrt(_knn_sq_radii(x, (k,), batch_size)[:, 0])


def precision_recall(
  real_features, fake_features, *, k: int = 3, batch_size: int = DEFAULT_BATCH_SIZE, inclusive: bool = True
) -> tuple[float, float]:
  """Improved precision and recall (Kynkäänniemi et al. 2019).

  Args:
    real_features: ``[N, D]`` array-like of floats (e.g. Inception or VGG-16 features), ``N > k``.
    fake_features: ``[M, D]`` array-like of floats, ``M > k``.
    k: neighbour rank of the manifold radii (paper default 3).
    batch_size: rows per jitted distance block (memory ~ ``batch_size * max(N, M) * 4`` bytes).
    inclusive: a sample on a ball's boundary is inside (``<=``, Kynkäänniemi et al.'s code; False:
      ``prdc``'s ``<``).

  Returns:
    ``(precision, recall)`` as Python floats in ``[0, 1]``: the share of fake samples within some real
    sample's k-NN ball, and the share of real samples within some fake sample's k-NN ball.
  """
  out = manifold_metrics(real_features, fake_features, k_pr=k, k_dc=None, batch_size=batch_size, pr_inclusive=inclusive)
  return out["precision"], out["recall"]


def density_coverage(
  real_features, fake_features, *, k: int = 5, batch_size: int = DEFAULT_BATCH_SIZE, inclusive: bool = False
) -> tuple[float, float]:
  """Density and coverage (Naeem et al. 2020).

  Args:
    real_features: ``[N, D]`` array-like of floats, ``N > k``.
    fake_features: ``[M, D]`` array-like of floats, ``M >= 1``.
    k: neighbour rank of the real radii (paper default 5).
    batch_size: rows per jitted distance block (memory ~ ``batch_size * M * 4`` bytes).
    inclusive: a sample on a ball's boundary is inside (``<=``); False (default) is the ``prdc``
      package's ``<`` (Naeem et al.'s release).

  Returns:
    ``(density, coverage)`` as Python floats: density in ``[0, N / k]`` (~1 for matching
    distributions), coverage in ``[0, 1]``.
  """
  out = manifold_metrics(real_features, fake_features, k_pr=None, k_dc=k, batch_size=batch_size, dc_inclusive=inclusive)
  return out["density"], out["coverage"]
