"""k-NN manifold metrics: precision/recall and density/coverage.

Both estimate each distribution's support as the union of balls around its samples, each ball's
radius being the distance to the sample's k-th nearest neighbour within its own set (the sample itself
not counted).

* Improved precision and recall (Kynkäänniemi et al. 2019, k = 3): precision is the share of fake
  samples inside the real manifold (real radii); recall is the share of real samples inside the fake
  manifold (fake radii).
* Density and coverage (Naeem et al. 2020, k = 5), both w.r.t. the real manifold only, which makes them
  robust to fake outliers: density = ``1/(k M) sum_j #{i : ||f_j - r_i|| <= rad_i}`` (can exceed 1;
  ~1 when fakes follow the real distribution, ``(k + 1) / k`` for a fake set identical to the real
  one); coverage = share of real samples whose ball contains at least one fake sample.

A ball includes its boundary (``<=``), as both reference implementations. Pairwise squared distances
``|a|^2 + |b|^2 - 2 a.b`` (clipped at 0, features centred on the real mean first) are computed in
float32 on the default JAX device, one batch of ball centres (rows) against the whole other set
(columns) per jitted call, so 10k x 10k x 2048 needs one ``[batch, 10k]`` block at a time (40 MB at
batch 1024), never the full matrix. Precision, density and coverage share one such pass over the real
balls, recall is one pass over the fake balls. The last batch is zero-padded to the batch size so every
call reuses one compilation. Matmuls use ``Precision.HIGHEST`` so GPUs/TPUs do not round the features
to TF32/bfloat16.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

DEFAULT_BATCH_SIZE = 1024


def _sq_dists(rows: jax.Array, cols: jax.Array, cols_sq: jax.Array) -> jax.Array:
  """Squared Euclidean distances ``[B, d] x [C, d] -> [B, C]`` (float32, >= 0)."""
  rows_sq = jnp.sum(rows * rows, axis=1)
  cross = jnp.matmul(rows, cols.T, precision=jax.lax.Precision.HIGHEST)
  return jnp.maximum(rows_sq[:, None] + cols_sq[None, :] - 2.0 * cross, 0.0)


@functools.partial(jax.jit, static_argnames=("k",))
def _kth_nn_batch(rows, cols, cols_sq, *, k):
  # `cols` is the set `rows` come from: each row's own distance (~0) is its smallest, so the k-th
  # neighbour excluding itself is the (k+1)-th smallest value.
  neg_smallest, _ = jax.lax.top_k(-_sq_dists(rows, cols, cols_sq), k + 1)
  return -neg_smallest[:, k]


@jax.jit
def _ball_batch(centres, centres_r2, points, points_sq):
  """One block of balls (rows) against all points (columns).

  Returns ``counts [C]`` (int32: balls of this block containing each point) and ``nearest [B]``
  (squared distance from each centre to its nearest point). Padded rows carry ``r2 = -1`` and so
  contain nothing.
  """
  d2 = _sq_dists(centres, points, points_sq)
  inside = d2 <= centres_r2[:, None]
  return jnp.sum(inside, axis=0, dtype=jnp.int32), jnp.min(d2, axis=1)


def _prepare(real_features, fake_features) -> tuple[jax.Array, jax.Array]:
  real = np.asarray(real_features, dtype=np.float64)
  fake = np.asarray(fake_features, dtype=np.float64)
  if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
    raise ValueError(f"need real [N, D] and fake [M, D] features; got {real.shape} and {fake.shape}.")
  if real.shape[0] < 1 or fake.shape[0] < 1:
    raise ValueError("both feature sets must be non-empty.")
  # Distances are translation invariant; centring on the real mean shrinks |a|^2 + |b|^2 - 2 a.b's
  # terms (Inception features are all >= 0) and with them the float32 cancellation error.
  mean = real.mean(axis=0, keepdims=True)
  return jnp.asarray(real - mean, jnp.float32), jnp.asarray(fake - mean, jnp.float32)


def _row_batches(x: jax.Array, batch_size: int):
  """Yields ``(start, rows)`` with every ``rows`` of exactly ``b`` rows (the last zero-padded)."""
  n = x.shape[0]
  b = max(1, min(int(batch_size), n))
  pad = (-n) % b
  if pad:
    x = jnp.concatenate([x, jnp.zeros((pad, x.shape[1]), x.dtype)], axis=0)
  for start in range(0, n + pad, b):
    yield start, x[start:start + b]


def _knn_sq_radii(x: jax.Array, k: int, batch_size: int) -> np.ndarray:
  """Squared k-NN radii ``[N]`` of a float32 set against itself, in fixed-size row batches."""
  n = x.shape[0]
  if not 1 <= k < n:
    raise ValueError(f"need 1 <= k < N; got k={k}, N={n}.")
  x_sq = jnp.sum(x * x, axis=1)
  out = [np.asarray(_kth_nn_batch(rows, x, x_sq, k=k)) for _, rows in _row_batches(x, batch_size)]
  return np.concatenate(out)[:n]


def _ball_pass(centres: jax.Array, centres_r2: np.ndarray, points: jax.Array, batch_size: int):
  """Balls (centres, squared radii) against points, batched over centres.

  Rows are the ball centres, exactly as in :func:`_knn_sq_radii`, so when ``points`` is the centres'
  own set each distance is computed by the same row-major program as the radius it is compared with,
  and a neighbour on a ball's boundary is consistently inside.

  Returns:
    ``counts`` int64 ``[M]`` (number of balls containing each point) and ``nearest`` float32 ``[N]``
    (squared distance from each centre to its nearest point).
  """
  n = centres.shape[0]
  b = max(1, min(int(batch_size), n))
  r2 = np.full((n + (-n) % b,), -1.0, np.float32)
  r2[:n] = centres_r2
  points_sq = jnp.sum(points * points, axis=1)
  counts = np.zeros((points.shape[0],), np.int64)
  nearest = []
  for start, rows in _row_batches(centres, batch_size):
    c, near = _ball_batch(rows, jnp.asarray(r2[start:start + b]), points, points_sq)
    counts += np.asarray(c)
    nearest.append(np.asarray(near))
  return counts, np.concatenate(nearest)[:n]


def knn_radii(features, k: int, *, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
  """Distance from each sample to its k-th nearest neighbour within the same set (itself excluded).

  Args:
    features: ``[N, D]`` array-like of floats, ``N > k``.
    k: neighbour rank, ``>= 1``.
    batch_size: query rows per jitted call (memory ~ ``batch_size * N * 4`` bytes).

  Returns:
    float32 ``[N]`` radii >= 0 (0 where a sample has >= k exact duplicates).
  """
  x = np.asarray(features, dtype=np.float64)
  if x.ndim != 2:
    raise ValueError(f"features must have shape [N, D]; got {x.shape}.")
  x = jnp.asarray(x - x.mean(axis=0, keepdims=True), jnp.float32)  # centred, as in _prepare
  return np.sqrt(_knn_sq_radii(x, k, batch_size))


def precision_recall(
    real_features, fake_features, *, k: int = 3, batch_size: int = DEFAULT_BATCH_SIZE
) -> tuple[float, float]:
  """Improved precision and recall (Kynkäänniemi et al. 2019).

  Args:
    real_features: ``[N, D]`` array-like of floats (e.g. Inception or VGG-16 features), ``N > k``.
    fake_features: ``[M, D]`` array-like of floats, ``M > k``.
    k: neighbour rank of the manifold radii (paper default 3).
    batch_size: rows per jitted distance block (memory ~ ``batch_size * max(N, M) * 4`` bytes).

  Returns:
    ``(precision, recall)`` as Python floats in ``[0, 1]``: the share of fake samples within some real
    sample's k-NN ball, and the share of real samples within some fake sample's k-NN ball.
  """
  real, fake = _prepare(real_features, fake_features)
  # Squared radii straight from the distance pass: sqrt-then-square could move a boundary point out.
  in_real, _ = _ball_pass(real, _knn_sq_radii(real, k, batch_size), fake, batch_size)
  in_fake, _ = _ball_pass(fake, _knn_sq_radii(fake, k, batch_size), real, batch_size)
  return float(np.mean(in_real > 0)), float(np.mean(in_fake > 0))


def density_coverage(
    real_features, fake_features, *, k: int = 5, batch_size: int = DEFAULT_BATCH_SIZE
) -> tuple[float, float]:
  """Density and coverage (Naeem et al. 2020).

  Args:
    real_features: ``[N, D]`` array-like of floats, ``N > k``.
    fake_features: ``[M, D]`` array-like of floats, ``M >= 1``.
    k: neighbour rank of the real radii (paper default 5).
    batch_size: rows per jitted distance block (memory ~ ``batch_size * M * 4`` bytes).

  Returns:
    ``(density, coverage)`` as Python floats: density in ``[0, N / k]`` (~1 for matching
    distributions), coverage in ``[0, 1]``.
  """
  real, fake = _prepare(real_features, fake_features)
  real_r2 = _knn_sq_radii(real, k, batch_size)
  counts, nearest_fake = _ball_pass(real, real_r2, fake, batch_size)
  density = float(np.sum(counts)) / (k * fake.shape[0])
  coverage = float(np.mean(nearest_fake <= real_r2))
  return density, coverage
