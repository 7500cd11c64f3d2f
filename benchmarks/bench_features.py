"""Throughput of the feature extractors and the cost of the Fréchet distance at 2048 dims.

Rows (each timed after one warm-up call, so compilation is excluded; best of ``--repeats``):

* the digit domain classifier (:mod:`jgan.metrics.classifier`, configs/classifier_mnist5k.py's
  architecture, random weights: speed does not depend on them) on 28 px digits, images/s;
* FID Inception-v3 (:mod:`jgan.metrics.inception`, random weights) on 28 px grayscale images resized to
  299 px, images/s, at a small batch (CPU) - the network costs ~5.7 GFLOPs per image;
* the Fréchet distance between two 2048-d Gaussians (two float64 ``eigh``, :mod:`jgan.metrics.frechet`)
  and the mean/covariance of ``--n`` 2048-d features.

  .venv/bin/python benchmarks/bench_features.py [--inception_batch 8] [--classifier_batch 500] [--n 10000]

The header prints the 1-minute load average before and after: on a shared machine compare ratios
between rows of one run, and only runs with similar load.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

import jgan  # noqa: E402,F401  (XLA:CPU work-around before JAX starts)
from jgan import metrics  # noqa: E402
from jgan.metrics import classifier, inception  # noqa: E402


def _best(fn, repeats: int) -> float:
  fn()  # warm-up: compilation
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - start)
  return best


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--classifier_batch", type=int, default=500)
  parser.add_argument("--inception_batch", type=int, default=8)
  parser.add_argument("--n", type=int, default=10_000, help="features for the mean/covariance row")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--skip_inception", action="store_true")
  args = parser.parse_args()
  load_before = os.getloadavg()[0]
  rng = np.random.default_rng(0)
  rows = []

  model = classifier.DigitClassifier(rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  apply = jax.jit(lambda p, x: nnx.merge(graphdef, p)(x))
  x = jax.device_put(rng.uniform(-1, 1, (args.classifier_batch, 28, 28, 1)).astype(np.float32))
  t = _best(lambda: jax.block_until_ready(apply(params, x)), args.repeats)
  rows.append(
    (f"classifier features+logits, batch {args.classifier_batch}", t, f"{args.classifier_batch / t:,.0f} img/s")
  )

  if not args.skip_inception:
    net = inception.make_apply(inception.InceptionV3(rngs=nnx.Rngs(0)))
    x = jax.device_put(rng.uniform(-1, 1, (args.inception_batch, 28, 28, 1)).astype(np.float32))
    t = _best(lambda: jax.block_until_ready(net(x)), args.repeats)
    rows.append(
      (f"Inception pool3+probs @299, batch {args.inception_batch}", t, f"{args.inception_batch / t:,.2f} img/s")
    )

  feats = [np.maximum(rng.standard_normal((args.n, 2048), dtype=np.float32) * 0.5 + m, 0.0) for m in (0.3, 0.32)]
  t = _best(lambda: metrics.gaussian_stats(feats[0]), args.repeats)
  rows.append((f"mean/cov of {args.n} x 2048 (float64)", t, ""))
  (mu1, s1), (mu2, s2) = metrics.gaussian_stats(feats[0]), metrics.gaussian_stats(feats[1])
  t = _best(lambda: metrics.frechet_distance(mu1, s1, mu2, s2), args.repeats)
  rows.append(("Fréchet distance, 2048 dims (2 eigh, f64)", t, f"FID {metrics.frechet_distance(mu1, s1, mu2, s2):.4f}"))

  print(
    f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), {os.cpu_count()} CPU cores, "
    f"{platform.processor() or platform.machine()}; jax {jax.__version__}; "
    f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
  )
  print(f"{'what':<46} {'seconds':>8}  result")
  print("-" * 80)
  for name, seconds, result in rows:
    print(f"{name:<46} {seconds:8.3f}  {result}")


if __name__ == "__main__":
  main()
