"""Wall-clock time of the metric mathematics at FID-protocol sizes (no feature extraction).

Times each metric on random features shaped like Inception pool3 activations (non-negative, 2048-d),
``N`` real and ``N`` fake samples (default 10k each), on the default JAX device; the Fréchet distance
runs in float64 numpy on the host whatever the device. Each row is one call, jit compilation included
(a fraction of a second for these small programs); ``--repeats`` adds warm calls and reports the best.

  .venv/bin/python benchmarks/bench_metrics.py [--n 10000] [--dim 2048] [--only fid,kid,pr,dc,prdc]

``prdc`` is :func:`jgan.metrics.manifold_metrics` (all four k-NN metrics from one shared pass). The
header prints the 1-minute load average: on a shared machine, compare only runs with similar load.
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

import jgan  # noqa: E402,F401  (XLA:CPU work-around before JAX starts)
from jgan import metrics  # noqa: E402


def _time(fn, repeats: int):
  best, out = float("inf"), None
  for _ in range(repeats):
    start = time.perf_counter()
    out = fn()
    best = min(best, time.perf_counter() - start)
  return best, out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--n", type=int, default=10_000, help="samples per side")
  parser.add_argument("--dim", type=int, default=2048, help="feature dimension")
  parser.add_argument("--only", default="fid,kid,pr,dc,prdc", help="comma-separated subset of fid,kid,pr,dc,prdc")
  parser.add_argument("--repeats", type=int, default=1, help="calls per metric; the best is reported")
  args = parser.parse_args()
  which = set(args.only.split(","))

  rng = np.random.default_rng(0)
  # ReLU'd Gaussians: non-negative with a positive mean, like pool3 features; fake slightly shifted.
  real = np.maximum(rng.standard_normal((args.n, args.dim), dtype=np.float32) * 0.5 + 0.3, 0.0)
  fake = np.maximum(rng.standard_normal((args.n, args.dim), dtype=np.float32) * 0.5 + 0.32, 0.0)

  rows = []
  if "fid" in which:
    t_stats, (s_real, s_fake) = _time(
      lambda: (metrics.gaussian_stats(real), metrics.gaussian_stats(fake)), args.repeats
    )
    t_dist, fid = _time(lambda: metrics.frechet_distance(*s_real, *s_fake), args.repeats)
    rows.append(("FID: mean/cov, both sets (float64)", t_stats, f"{args.n} x {args.dim} x 2", ""))
    rows.append(("FID: Fréchet distance (2 eigh, f64)", t_dist, f"{args.dim} x {args.dim}", f"{fid:.4f}"))
  if "kid" in which:
    t, (kid, kid_std) = _time(lambda: metrics.kid_from_features(real, fake), args.repeats)
    rows.append(("KID: 100 subsets of 1000", t, f"{args.n} x {args.dim} x 2", f"{kid:.5f} +- {kid_std:.5f}"))
  if "pr" in which:
    t, (p, r) = _time(lambda: metrics.precision_recall(real, fake), args.repeats)
    rows.append(("Precision/recall (k=3)", t, f"{args.n} x {args.n} x {args.dim}", f"P={p:.3f} R={r:.3f}"))
  if "dc" in which:
    t, (dens, cov) = _time(lambda: metrics.density_coverage(real, fake), args.repeats)
    rows.append(("Density/coverage (k=5)", t, f"{args.n} x {args.n} x {args.dim}", f"D={dens:.3f} C={cov:.3f}"))
  if "prdc" in which:
    t, out = _time(lambda: metrics.manifold_metrics(real, fake), args.repeats)
    rows.append(
      (
        "P/R + D/C in one pass (manifold_metrics)",
        t,
        f"{args.n} x {args.n} x {args.dim}",
        " ".join(f"{k[0].upper()}={v:.3f}" for k, v in out.items()),
      )
    )

  print(
    f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), "
    f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}; "
    f"jax {jax.__version__}, numpy {np.__version__}; load average {os.getloadavg()[0]:.1f}"
  )
  print(f"{'metric':<42} {'seconds':>8}  {'size':<22} value")
  print("-" * 100)
  for name, seconds, size, value in rows:
    print(f"{name:<42} {seconds:8.2f}  {size:<22} {value}")


if __name__ == "__main__":
  main()
