"""Tests of jgan.metrics' mathematics against independent references (closed forms, scipy, naive loops)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.linalg
from scipy.spatial.distance import cdist

from jgan import metrics
from jgan.data import mixtures
from jgan.metrics import frechet, modes


def _rng(seed=0):
  return np.random.default_rng(seed)


# ----------------------------------------------------------------------------------------- Fréchet


def _diag_closed_form(mu1, a, mu2, b):
  # Between N(mu1, diag a) and N(mu2, diag b) the covariances commute, so
  # d^2 = ||mu1 - mu2||^2 + sum (sqrt a - sqrt b)^2.
  return float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))


def _scipy_reference(f1, f2):
  # The classic pytorch-fid formula: np.cov + scipy.linalg.sqrtm of the (non-symmetric) product.
  mu1, mu2 = f1.mean(0), f2.mean(0)
  s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
  covmean = scipy.linalg.sqrtm(s1 @ s2)
  covmean = np.real(covmean)
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_frechet_distance_closed_form_from_stats():
  rng = _rng(1)
  d = 6
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  a, b = rng.uniform(0.1, 3.0, size=d), rng.uniform(0.1, 3.0, size=d)
  got = metrics.frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
  assert got == pytest.approx(_diag_closed_form(mu1, a, mu2, b), rel=1e-12)


def test_frechet_distance_closed_form_rotated_and_singular():
  # Rotating both Gaussians by the same orthogonal Q leaves the distance unchanged, so a full
  # (non-diagonal) covariance pair still has the diagonal closed form; zeros in a, b make both singular.
  rng = _rng(2)
  d = 8
  q, _ = np.linalg.qr(rng.normal(size=(d, d)))
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  a = np.array([2.0, 1.0, 0.5, 0.0, 0.0, 3.0, 0.2, 0.0])
  b = np.array([1.0, 0.0, 0.5, 0.7, 0.0, 1.0, 0.0, 0.0])
  s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
  got = metrics.frechet_distance(q @ mu1, s1, q @ mu2, s2)
  assert isinstance(got, float) and math.isfinite(got)
  assert got == pytest.approx(_diag_closed_form(mu1, a, mu2, b), rel=1e-7)


def test_fid_from_large_samples_matches_closed_form():
  rng = _rng(3)
  n, d = 200_000, 4
  mu1, mu2 = np.array([0.0, 1.0, -1.0, 0.5]), np.array([0.5, 1.0, 0.0, 0.0])
  a, b = np.array([1.0, 0.25, 2.0, 0.5]), np.array([0.5, 1.0, 2.0, 0.1])
  f1 = mu1 + rng.normal(size=(n, d)) * np.sqrt(a)
  f2 = mu2 + rng.normal(size=(n, d)) * np.sqrt(b)
  expected = _diag_closed_form(mu1, a, mu2, b)
  assert metrics.fid_from_features(f1, f2) == pytest.approx(expected, rel=0.02)
  # And from the stats directly.
  assert metrics.frechet_distance(*metrics.gaussian_stats(f1), *metrics.gaussian_stats(f2)) == (
    pytest.approx(expected, rel=0.02)
  )


def test_fid_matches_scipy_sqrtm_reference():
  rng = _rng(4)
  d = 24
  mix1, mix2 = rng.normal(size=(d, d)), rng.normal(size=(d, d))
  f1 = rng.normal(size=(600, d)) @ mix1 + 0.3
  f2 = rng.normal(size=(500, d)) @ mix2
  got = metrics.fid_from_features(f1, f2)
  assert got == pytest.approx(_scipy_reference(f1, f2), rel=1e-8)
  assert metrics.fid_from_features(f2, f1) == pytest.approx(got, rel=1e-8)


def test_fid_rank_deficient_is_real_finite_and_warns():
  rng = _rng(5)
  d = 32
  f1 = rng.normal(size=(12, d))  # covariance rank 11 < 32
  f2 = rng.normal(size=(20, d)) + 0.1
  with pytest.warns(RuntimeWarning, match="singular"):
    got = metrics.fid_from_features(f1, f2)
  assert isinstance(got, float) and math.isfinite(got) and got > 0
  # Independent route: tr sqrt(S1 S2) from the general (non-symmetric, complex) eigenvalues.
  mu1, mu2 = f1.mean(0), f2.mean(0)
  s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
  ev = np.clip(np.real(np.linalg.eigvals(s1 @ s2)), 0, None)
  ref = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(ev))
  assert got == pytest.approx(ref, rel=1e-6)
  # The same rank-deficient set against itself: exactly 0 after clamping, never NaN.
  with pytest.warns(RuntimeWarning):
    assert metrics.fid_from_features(f1, f1) == pytest.approx(0.0, abs=1e-9)


def test_no_warning_when_enough_samples():
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    metrics.gaussian_stats(_rng(6).normal(size=(9, 8)))


def test_streaming_accumulator_matches_batch_stats():
  rng = _rng(7)
  # A large common offset: the naive E[xx^T] - mu mu^T would lose most digits here.
  x = rng.normal(size=(1000, 5)) * 0.01 + 1e4
  acc = metrics.GaussianStatsAccumulator()
  for start in range(0, 1000, 137):
    acc.update(x[start : start + 137])
  mu, sigma = acc.result()
  assert acc.count == 1000
  np.testing.assert_allclose(mu, x.mean(0), rtol=1e-14)
  np.testing.assert_allclose(sigma, np.cov(x, rowvar=False), rtol=1e-7, atol=1e-12)


def test_trace_sqrt_product_has_no_complex_result():
  rng = _rng(8)
  a = rng.normal(size=(5, 30))
  s = a.T @ a  # rank 5 of 30
  t = frechet.trace_sqrt_product(s, s)
  assert isinstance(t, float)
  assert t == pytest.approx(np.trace(s), rel=1e-8)  # tr sqrt(S S) = tr S for PSD S


# ----------------------------------------------------------------------------------------- KID


def _naive_mmd2(x, y):
  # O(m^2) double loop over pairs, float64, straight from the definition.
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  m, d = x.shape
  k = lambda u, v: (float(np.dot(u, v)) / d + 1.0) ** 3
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
  return xx + yy - 2 * xy


def test_kid_whole_set_matches_naive_double_loop():
  rng = _rng(10)
  x = rng.normal(size=(30, 8))
  y = rng.normal(size=(30, 8)) * 1.3 + 0.4
  ref = _naive_mmd2(x, y)
  mean, std = metrics.kid_from_features(x, y, num_subsets=4, subset_size=1000)  # clamps to 30
  assert mean == pytest.approx(ref, rel=1e-5)
  assert std == pytest.approx(0.0, abs=1e-5 * abs(ref))
  assert metrics.polynomial_mmd2(x, y) == pytest.approx(ref, rel=1e-5)


def test_kid_subsets_match_naive_on_the_same_subsets():
  rng = _rng(11)
  x = rng.normal(size=(25, 6)) + 0.2
  y = rng.normal(size=(20, 6))
  num_subsets, m, seed = 3, 12, 5
  # The documented draw order: one generator, per subset a choice from x then one from y.
  gen = np.random.default_rng(seed)
  vals = []
  for _ in range(num_subsets):
    ix = gen.choice(25, m, replace=False)
    iy = gen.choice(20, m, replace=False)
    vals.append(_naive_mmd2(x[ix], y[iy]))
  mean, std = metrics.kid_from_features(x, y, num_subsets=num_subsets, subset_size=m, seed=seed)
  assert mean == pytest.approx(np.mean(vals), rel=1e-5)
  assert std == pytest.approx(np.std(vals), rel=1e-4)
  assert metrics.kid_from_features(x, y, num_subsets=3, subset_size=m, seed=seed) == (mean, std)
  assert metrics.kid_from_features(x, y, num_subsets=3, subset_size=m, seed=seed + 1) != (mean, std)


def test_kid_near_zero_for_same_distribution_and_positive_for_shift():
  rng = _rng(12)
  x, y = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
  same, _ = metrics.kid_from_features(x, y, num_subsets=10, subset_size=200)
  shifted, _ = metrics.kid_from_features(x, y + 0.5, num_subsets=10, subset_size=200)
  # Under equal distributions MMD^2_u at m = 200 has std ~0.011 here (measured over 200 seeds).
  assert abs(same) < 0.05
  assert shifted > 10 * abs(same) and shifted > 0.5


# ----------------------------------------------------------------------------------------- IS


def test_inception_score_constant_predictions_is_one():
  p = _rng(13).dirichlet(np.ones(7))
  mean, std = metrics.inception_score(np.tile(p, (100, 1)))
  assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_uniform_one_hot_is_k():
  k, splits = 12, 10
  labels = np.arange(splits * k * 3) % k  # each split sees every class 3 times
  mean, std = metrics.inception_score(np.eye(k)[labels], num_splits=splits)
  assert mean == pytest.approx(k, rel=1e-12) and std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_matches_naive_loop():
  p = _rng(14).dirichlet(np.full(5, 0.3), size=41).astype(np.float32)
  p64 = p.astype(np.float64) / p.astype(np.float64).sum(1, keepdims=True)
  scores = []
  for lo, hi in [(0, 13), (13, 27), (27, 41)]:  # i * 41 // 3
    part = p64[lo:hi]
    marg = part.mean(0)
    kl = [sum(q * math.log(q / r) for q, r in zip(row, marg) if q > 0) for row in part]
    scores.append(math.exp(sum(kl) / len(kl)))
  mean, std = metrics.inception_score(p, num_splits=3)
  assert mean == pytest.approx(np.mean(scores), rel=1e-10)
  assert std == pytest.approx(np.std(scores), rel=1e-8)


def test_inception_score_rejects_logits():
  with pytest.raises(ValueError, match="sum to 1"):
    metrics.inception_score(np.abs(_rng(15).normal(size=(20, 4))), num_splits=2)


# ------------------------------------------------------------------ precision/recall, density/coverage


def _naive_manifold(real, fake, k, inclusive):
  # Brute force in float64: radii = k-th smallest distance to the own set, self excluded.
  def radii(x):
    dist = cdist(x, x)
    np.fill_diagonal(dist, np.inf)
    return np.sort(dist, axis=1)[:, k - 1]

  inside = np.less_equal if inclusive else np.less
  r_real, r_fake = radii(real), radii(fake)
  d_fr = cdist(fake, real)  # [M, N]
  precision = np.mean(np.any(inside(d_fr, r_real[None, :]), axis=1))
  recall = np.mean(np.any(inside(d_fr.T, r_fake[None, :]), axis=1))
  density = np.sum(inside(d_fr, r_real[None, :])) / (k * len(fake))
  coverage = np.mean(inside(d_fr.min(axis=0), r_real))
  return precision, recall, density, coverage


@pytest.mark.parametrize("batch_size", [1024, 7])
@pytest.mark.parametrize("duplicates", [False, True])
def test_manifold_metrics_match_brute_force(batch_size, duplicates):
  rng = _rng(20)
  real = rng.normal(size=(60, 5))
  fake = rng.normal(size=(45, 5)) * 1.2 + 0.3
  if duplicates:  # fakes exactly on real samples: ties at ball boundaries, where the conventions differ
    fake[:20] = real[rng.permutation(60)[:20]]
  # Defaults: precision/recall inclusive (NVlabs' code), density/coverage strict (the prdc package).
  p3, r3, _, _ = _naive_manifold(real, fake, 3, inclusive=True)
  _, _, d5, c5 = _naive_manifold(real, fake, 5, inclusive=False)
  precision, recall = metrics.precision_recall(real, fake, batch_size=batch_size)
  density, coverage = metrics.density_coverage(real, fake, batch_size=batch_size)
  assert (precision, recall) == pytest.approx((p3, r3), abs=1e-12)
  assert (density, coverage) == pytest.approx((d5, c5), abs=1e-12)
  both = metrics.manifold_metrics(real, fake, batch_size=batch_size)
  assert both == pytest.approx({"precision": p3, "recall": r3, "density": d5, "coverage": c5}, abs=1e-12)
  flipped = metrics.manifold_metrics(real, fake, batch_size=batch_size, pr_inclusive=False, dc_inclusive=True)
  p3s, r3s, _, _ = _naive_manifold(real, fake, 3, inclusive=False)
  _, _, d5i, c5i = _naive_manifold(real, fake, 5, inclusive=True)
  assert flipped == pytest.approx({"precision": p3s, "recall": r3s, "density": d5i, "coverage": c5i}, abs=1e-12)
  ref_radii = np.sort(cdist(real, real), axis=1)[:, 3]
  np.testing.assert_allclose(metrics.knn_radii(real, 3, batch_size=batch_size), ref_radii, rtol=1e-4)


def test_manifold_identical_sets():
  x = _rng(21).normal(size=(200, 16))
  assert metrics.precision_recall(x, x) == (1.0, 1.0)
  density, coverage = metrics.density_coverage(x, x, batch_size=64)
  assert coverage == 1.0
  # Each real ball holds its centre and its k - 1 nearest neighbours strictly inside; the k-th lies on
  # the boundary, which the prdc convention (<) excludes: density = k / k = 1 ...
  assert density == pytest.approx(1.0, abs=1e-12)
  # ... and a closed ball (<=, counted consistently because distances and radii come from the same
  # row-major pass) includes: density = (k + 1) / k.
  density, coverage = metrics.density_coverage(x, x, batch_size=64, inclusive=True)
  assert (density, coverage) == (pytest.approx(6 / 5, abs=1e-12), 1.0)


def test_manifold_disjoint_far_apart_sets():
  rng = _rng(22)
  real = rng.normal(size=(100, 8))
  fake = rng.normal(size=(80, 8)) + 100.0
  assert metrics.precision_recall(real, fake) == (0.0, 0.0)
  assert metrics.density_coverage(real, fake) == (0.0, 0.0)


def test_manifold_fake_covers_half_of_the_clusters():
  rng = _rng(23)
  d, n_clusters, per = 4, 10, 100
  centres = rng.normal(size=(n_clusters, d)) * 50.0  # clusters far apart
  real = np.concatenate([c + rng.normal(size=(per, d)) for c in centres])
  fake = np.concatenate([c + rng.normal(size=(per, d)) for c in centres[:5]])
  precision, recall = metrics.precision_recall(real, fake)
  density, coverage = metrics.density_coverage(real, fake)
  # Where fakes exist they follow the real distribution; k-NN estimates of a matching distribution are
  # somewhat below 1 at finite N (~0.9 for k = 3, ~0.97 for k = 5), so the halves land a bit under 0.5.
  # Real samples of the 5 missed clusters are 50+ units from any fake: they can never be recalled.
  assert precision > 0.85
  assert 0.4 < recall <= 0.5
  assert 0.45 < coverage <= 0.5
  assert 0.8 < density < 1.2


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("which", ["real", "fake"])
@pytest.mark.parametrize("metric", ["prdc", "kid", "fid"])
def test_feature_metrics_refuse_non_finite_features(metric, which, bad):
  # One NaN real sample used to give precision = recall = density = coverage = 0.0 and KID = NaN.
  rng = _rng(24)
  sets = {"real": rng.normal(size=(40, 6)), "fake": rng.normal(size=(40, 6))}
  sets[which][3, 2] = bad
  fn = {"prdc": metrics.manifold_metrics, "kid": metrics.kid_from_features, "fid": metrics.fid_from_features}[metric]
  with pytest.raises(ValueError, match=r"NaN or Inf value\(s\) in 1 of 40 samples \(first: sample 3, feature 2"):
    fn(sets["real"], sets["fake"])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_inception_score_and_mode_counts_on_non_finite_inputs(bad):
  probs = np.full((20, 4), 0.25)
  probs[5, 1] = bad
  with pytest.raises(ValueError, match="probs must be finite"):
    metrics.inception_score(probs, num_splits=2)
  # Mode counts are defined on diverged samples: a NaN point is no mode's (low quality), by design.
  points = np.repeat(mixtures.ring8_centres(), 10, axis=0)
  points[0] = bad
  out = metrics.mode_metrics(points, mixtures.ring8_centres(), 0.02)
  assert out["modes"] == 8 and out["high_quality"] == pytest.approx(79 / 80)


# ----------------------------------------------------------------------------------------- modes


def _ring_points(centre, count, dist):
  # `count` points on a circle of radius `dist` around `centre`.
  angles = 2 * np.pi * np.arange(count) / count + 0.1
  return centre + dist * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def test_mixture_centres_and_sigmas():
  ring = mixtures.ring8_centres()
  assert ring.shape == (8, 2)
  np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 1.0)
  np.testing.assert_allclose(ring[2], [0.0, 1.0], atol=1e-15)
  np.testing.assert_allclose(np.linalg.norm(mixtures.ring8_centres(radius=2.0), axis=1), 2.0)
  grid = mixtures.grid25_centres()
  assert grid.shape == (25, 2)
  assert {tuple(p) for p in grid} == {(i, j) for i in range(-4, 5, 2) for j in range(-4, 5, 2)}
  assert (mixtures.RING8_SIGMA, mixtures.GRID25_SIGMA) == (0.01, 0.05)
  assert set(mixtures.MIXTURES) == {"ring8", "grid25"}


def test_mode_metrics_ring_known_coverage():
  centres, sigma = mixtures.ring8_centres(), mixtures.RING8_SIGMA
  covered = [0, 2, 3, 5, 7]
  good = [_ring_points(centres[m], 40, 2.0 * sigma) for m in covered]
  bad = np.zeros((50, 2))  # the ring's centre: 100 sigma from every mode
  out = metrics.mode_metrics(np.concatenate(good + [bad]), centres, sigma)
  assert out["modes"] == 5
  assert out["high_quality"] == pytest.approx(200 / 250)
  assert out["reverse_kl"] == pytest.approx(math.log(8 / 5), rel=1e-12)


def test_mode_metrics_threshold_and_min_count():
  centres, sigma = mixtures.grid25_centres(), mixtures.GRID25_SIGMA
  inside = _ring_points(centres[0], 10, 2.9 * sigma)
  outside = _ring_points(centres[1], 10, 3.1 * sigma)
  few = _ring_points(centres[2], 3, 0.5 * sigma)
  samples = np.concatenate([inside, outside, few])
  labels = modes.assign_modes(samples, centres, sigma)
  np.testing.assert_array_equal(labels, [0] * 10 + [-1] * 10 + [2] * 3)
  assert metrics.mode_metrics(samples, centres, sigma)["modes"] == 2
  assert metrics.mode_metrics(samples, centres, sigma, min_count=5)["modes"] == 1
  q = np.array([10, 3]) / 13
  expected_kl = float(np.sum(q * np.log(q * 25)))
  assert metrics.mode_metrics(samples, centres, sigma)["reverse_kl"] == pytest.approx(expected_kl)


def test_mode_metrics_grid_balanced_collapsed_and_nan():
  centres, sigma = mixtures.grid25_centres(), mixtures.GRID25_SIGMA
  balanced = np.concatenate([_ring_points(c, 4, sigma) for c in centres])
  out = metrics.mode_metrics(balanced, centres, sigma)
  assert (out["modes"], out["high_quality"]) == (25, 1.0)
  assert out["reverse_kl"] == pytest.approx(0.0, abs=1e-12)
  collapsed = _ring_points(centres[12], 30, sigma)
  out = metrics.mode_metrics(collapsed, centres, sigma)
  assert out["modes"] == 1 and out["reverse_kl"] == pytest.approx(math.log(25))
  out = metrics.mode_metrics(np.full((5, 2), np.nan), centres, sigma)
  assert out["modes"] == 0 and out["high_quality"] == 0.0 and math.isnan(out["reverse_kl"])


def test_class_mode_counts():
  labels = np.repeat(np.array([0, 1, 2, 4, 5, 8, 9]), 6)
  out = metrics.class_mode_counts(labels, 10)
  assert out["modes"] == 7
  assert out["reverse_kl"] == pytest.approx(math.log(10 / 7), rel=1e-12)
  assert metrics.class_mode_counts(np.append(labels, 3), 10, min_count=2)["modes"] == 7
  with pytest.raises(ValueError):
    metrics.class_mode_counts(np.array([0, 10]), 10)


def test_stacked_kl_parts_split_the_total_into_channel_skew_and_dependence():
  """Against closed forms: independent channels (every triple as often as the product of its digits'
  weights) have no dependence and channel KLs of their weights; three equal digits have uniform
  channels and all of the KL, log 100, in the dependence."""
  w = [np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 1]), np.array([2, 1, 1, 1, 1, 1, 1, 1, 1, 0]), np.arange(1, 11)]
  triples = [(a, b, c) for a in range(10) for b in range(10) for c in range(10)]
  labels = np.concatenate([np.full(w[0][a] * w[1][b] * w[2][c], 100 * a + 10 * b + c) for a, b, c in triples])
  out = metrics.stacked_kl_parts(labels)
  for got, weights in zip(out["channel_kl"], w):
    q = weights[weights > 0] / weights.sum()
    assert got == pytest.approx(float(np.sum(q * np.log(10 * q))), abs=1e-12)
  np.testing.assert_allclose(out["channel_freq"][1], w[1] / w[1].sum(), atol=1e-15)
  assert out["dependence"] == pytest.approx(0.0, abs=1e-12)
  assert out["reverse_kl"] == pytest.approx(sum(out["channel_kl"]), abs=1e-12)
  tied = metrics.stacked_kl_parts(np.repeat(np.arange(10) * 111, 7))
  assert tied["channel_kl"] == pytest.approx([0.0, 0.0, 0.0], abs=1e-12)
  assert tied["dependence"] == pytest.approx(math.log(100), rel=1e-12)


def test_distances_registry_output_names():
  rng = _rng(30)
  real, fake = rng.normal(size=(40, 6)), rng.normal(size=(40, 6))
  probs = rng.dirichlet(np.ones(4), size=40)
  assert set(metrics.DISTANCES) == set(metrics.DISTANCE_OUTPUTS)
  for name, fn in metrics.DISTANCES.items():
    out = fn(probs) if name == "inception_score" else fn(real, fake)
    if isinstance(out, dict):
      assert tuple(out) == metrics.DISTANCE_OUTPUTS[name]
    else:
      assert len(np.atleast_1d(out)) == len(metrics.DISTANCE_OUTPUTS[name])
