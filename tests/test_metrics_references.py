"""jgan's metrics next to the reference packages themselves, on the same inputs.

The packages come from PyPI in the ``crosscheck`` extra, which ``make test`` (and so CI) installs:
``prdc`` (Naeem et al.'s release) for precision / recall / density / coverage.
"""

import numpy as np
import pytest

from jgan import metrics

prdc = pytest.importorskip("prdc", reason="the reference package; `pip install -e '.[crosscheck]'` (make test does)")


def _sets(seed, n=300, m=250, d=32):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(n, d)).astype(np.float32), (rng.normal(size=(m, d)) * 1.1 + 0.2).astype(np.float32)


@pytest.mark.parametrize("k", [3, 5])
def test_prdc_package_matches_on_the_same_features(k, capsys):
  real, fake = _sets(0)
  ref = prdc.compute_prdc(real, fake, nearest_k=k)
  # prdc uses < for all four metrics: precision/recall need pr_inclusive=False to follow it.
  ours = metrics.manifold_metrics(real, fake, k_pr=k, k_dc=k, pr_inclusive=False, dc_inclusive=False)
  for name in ("precision", "recall", "density", "coverage"):
    assert ours[name] == pytest.approx(float(ref[name]), rel=1e-4, abs=1e-6), name


def test_prdc_package_identical_sets_density_is_one():
  # The case the boundary convention decides: jgan's default (<) gives prdc's 1.0, not (k + 1) / k.
  x, _ = _sets(1)
  ref = prdc.compute_prdc(x, x, nearest_k=5)
  density, coverage = metrics.density_coverage(x, x, k=5)
  assert float(ref["density"]) == pytest.approx(1.0) and density == pytest.approx(1.0)
  assert coverage == float(ref["coverage"]) == 1.0
