"""The latent-space claims of the survey jgan started from (vector arithmetic, smooth walks), measured
on a trained digit generator.

    python benchmarks/latent_measures.py --workdir runs/demo --classifier ~/.cache/jgan/classifier_mnist5k \
        [--walks 100] [--frames 32] [--pools 10] [--pool 512] [--ks 3] [--scales 1] [--min-confidence 0.9] \
        [--figures docs/img] [--json out.json]

1. **Smoothness.** ``--walks`` slerp walks of ``--frames`` frames between random z pairs; per walk, the
   largest per-frame RMS pixel change over the mean one (:func:`jgan.labs.latent.jump_ratio`, 1 = perfectly
   even, frames - 1 = one jump). The same walks answered by a memoriser (each frame replaced by its
   nearest training image, in pixel space and in the classifier's feature space) give the lookup-table
   counterfactual of the seed article's argument.
2. **Arithmetic.** In each of ``--pools`` pools of ``--pool`` random z's, for every ordered digit pair
   (a, b), a != b: ``thick_a - thin_a + thin_b`` with concepts of 3 z's each, chosen by the classifier's
   label (probability >= 0.9) and the ink thickness (:func:`jgan.labs.attributes.thickness`), and DCGAN's 8
   variations (the exact result + 7 with U(-0.25, 0.25) noise). Reported: the fraction of result images
   labelled b, and the fraction thicker than the mean of the 3 "thin b" images (and than G(thin_b), the
   concept's own image). A control replaces thick_a and thin_a by two random draws of 3 z's labelled a,
   so any thickening it shows comes from regression to the mean (thin_b is an extreme) or the noise,
   not from the thickness direction. ``--ks`` and ``--scales`` (``thin_b + s (thick_a - thin_a)``) vary
   the recipe.

Prints one JSON object (also to ``--json``); with ``--figures`` writes ``latent_smoothness.png`` and
``latent_memoriser_walk.png`` there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jgan  # noqa: E402,F401  (XLA:CPU work-around before JAX starts)
from jgan.labs import latent, latent_figures  # noqa: E402
from jgan.metrics import classifier as clf_lib  # noqa: E402


def _quantiles(x: np.ndarray) -> dict:
  x = np.asarray(x, np.float64)
  return {
    "median": float(np.median(x)),
    "p95": float(np.percentile(x, 95)),
    "mean": float(np.mean(x)),
    "min": float(np.min(x)),
    "max": float(np.max(x)),
  }


def _batched(fn, x: np.ndarray, bs: int = 500) -> np.ndarray:
  return np.concatenate([np.asarray(fn(jnp.asarray(x[i : i + bs]))) for i in range(0, len(x), bs)])


def smoothness(g, d: int, train: np.ndarray, features_fn, walks: int, frames: int, seed: int) -> tuple[dict, dict]:
  """Jump ratios of generator walks vs the memorisers answering the same walks (see module docstring)."""
  ends = np.asarray(jax.random.normal(jax.random.fold_in(jax.random.key(seed), 1), (2, walks, d)))
  out, arrays = {}, {}
  for method in ("slerp", "lerp"):
    z = np.asarray(latent.interpolate(jnp.asarray(ends[0]), jnp.asarray(ends[1]), frames, method))
    imgs = g(z.reshape(-1, d))  # [walks * frames, H, W, C]
    shape = (walks, frames, *imgs.shape[1:])
    ratio = np.asarray(latent.jump_ratio(latent.frame_changes(jnp.asarray(imgs.reshape(shape)))))
    out[f"generator_{method}"] = _quantiles(ratio)
    arrays[f"generator_{method}"] = (ratio, imgs.reshape(shape))
    if method != "slerp":
      continue
    spaces = {"pixel": (imgs, train)}
    if features_fn is not None:
      spaces["feature"] = (_batched(features_fn, imgs), _batched(features_fn, train))
    for space, (queries, bank) in spaces.items():
      _, nn = latent.nearest_neighbours(queries, bank)
      mem = train[nn[:, 0]].reshape(shape)
      r = np.asarray(latent.jump_ratio(latent.frame_changes(jnp.asarray(mem))))
      distinct = [len(np.unique(row)) for row in nn[:, 0].reshape(walks, frames)]
      out[f"memoriser_{space}"] = {**_quantiles(r), "distinct_images_per_walk_median": float(np.median(distinct))}
      arrays[f"memoriser_{space}"] = (r, mem)
  return out, arrays


def arithmetic(
  g, d: int, logits_fn, pools: int, pool: int, seed: int, k: int = 3, scale: float = 1.0, min_conf: float = 0.9
) -> dict:
  """Rates of ``thin_b + scale (thick_a - thin_a)`` (and the random-direction control) over pools and pairs.

  ``scale = 1`` is DCGAN's ``thick_a - thin_a + thin_b``. Returns a JSON-able dict (see the module docstring).
  """
  # Rows per image: (a, b, labelled b, thicker than the thin-b sources, thicker than G(thin-b concept)).
  hits = {"arith": [], "control": []}
  thick = {"thin_b_sources": [], "thin_b_concept": [], "control": [], "arith": [], "thick_a_sources": []}
  concept_label_b, skipped = [], 0
  for p in range(pools):
    key = jax.random.fold_in(jax.random.key(seed), 100 + p)
    z = np.asarray(jax.random.normal(key, (pool, d)))
    scores = latent_figures.describe(g(z), logits_fn)
    rng = np.random.default_rng([seed, p, k])

    def mean(idx, z=z):
      return z[idx].mean(0)

    trials, batch = [], []  # all trials of a pool go through G in one batch
    for a in range(10):
      for b in range(10):
        if a == b:
          continue
        try:
          i_thick = latent_figures.concept_indices(f"thick{a}", scores, k, min_conf)
          i_thin = latent_figures.concept_indices(f"thin{a}", scores, k, min_conf)
          i_thin_b = latent_figures.concept_indices(f"thin{b}", scores, k, min_conf)
        except ValueError:
          skipped += 1
          continue
        eligible_a = np.flatnonzero((scores["label"] == a) & (scores["confidence"] >= min_conf))
        r1, r2 = rng.choice(eligible_a, k, replace=False), rng.choice(eligible_a, k, replace=False)
        vkey = jax.random.fold_in(key, 1000 + 10 * a + b)
        for target in (
          mean(i_thin_b) + scale * (mean(i_thick) - mean(i_thin)),
          mean(i_thin_b) + scale * (mean(r1) - mean(r2)),
        ):
          batch.append(np.asarray(latent.variations(jnp.asarray(target), vkey, 8)))
        batch.append(mean(i_thin_b)[None])
        trials.append((a, b, scores["thickness"][i_thin_b], scores["thickness"][i_thick]))
    if not trials:
      continue
    res = latent_figures.describe(g(np.concatenate(batch)), logits_fn)
    for t, (a, b, thin_b, thick_a) in enumerate(trials):
      base = 17 * t  # per trial: 8 arithmetic, 8 control, 1 thin-b concept image
      concept_thickness = res["thickness"][base + 16]
      for j, name in enumerate(("arith", "control")):
        sl = slice(base + 8 * j, base + 8 * j + 8)
        hits[name].append(
          np.stack(
            [
              np.full(8, a),
              np.full(8, b),
              res["label"][sl] == b,
              res["thickness"][sl] > thin_b.mean(),
              res["thickness"][sl] > concept_thickness,
            ],
            axis=1,
          )
        )
        thick[name].append(res["thickness"][sl])
      thick["thin_b_sources"].append(thin_b)
      thick["thick_a_sources"].append(thick_a)
      thick["thin_b_concept"].append(res["thickness"][base + 16 : base + 17])
      concept_label_b.append(res["label"][base + 16] == b)
  out = {"k": k, "scale": scale, "trials": len(concept_label_b), "skipped_pairs": skipped, "images_per_trial": 8}
  for name, rows in hits.items():
    h = np.concatenate(rows)
    per_b = [float(h[h[:, 1] == b, 2].mean()) for b in range(10)]
    out[name] = {
      "labelled_b": float(h[:, 2].mean()),
      "thicker_than_thin_b": float(h[:, 3].mean()),
      "labelled_b_and_thicker": float((h[:, 2] * h[:, 3]).mean()),
      "thicker_than_thin_b_concept": float(h[:, 4].mean()),
      "labelled_b_by_b": [round(x, 3) for x in per_b],
    }
  out["thin_b_concept_labelled_b"] = float(np.mean(concept_label_b))
  out["mean_thickness"] = {n: float(np.mean(np.concatenate(v))) for n, v in thick.items()}
  return out


def _figures(arrays: dict, out_dir: str, frames: int) -> list[str]:
  import matplotlib.pyplot as plt

  from jgan import plots  # noqa: F401  (headless backend)

  fig, ax = plt.subplots(figsize=(6.5, 3.2), dpi=110)
  bins = np.linspace(1, frames - 1, 61)
  labels = {
    "generator_slerp": "generator (slerp)",
    "memoriser_pixel": "memoriser: pixel NN",
    "memoriser_feature": "memoriser: feature NN",
  }
  for name, label in labels.items():
    if name in arrays:
      ax.hist(arrays[name][0], bins=bins, alpha=0.6, label=label)
  ax.set_xlabel(f"largest / mean per-frame change along a walk (1 = even, {frames - 1} = one jump)")
  ax.set_ylabel("walks")
  ax.legend()
  fig.tight_layout()
  hist = os.path.join(out_dir, "latent_smoothness.png")
  fig.savefig(hist)
  plt.close(fig)
  # One walk (the one with the median generator ratio), as the generator and the pixel memoriser draw it.
  ratio, gen = arrays["generator_slerp"]
  i = int(np.argsort(ratio)[len(ratio) // 2])
  rows = [("generator", gen[i]), ("pixel NN", arrays["memoriser_pixel"][1][i])]
  if "memoriser_feature" in arrays:
    rows.append(("feature NN", arrays["memoriser_feature"][1][i]))
  strip = latent_figures.labelled_rows(os.path.join(out_dir, "latent_memoriser_walk.png"), rows, frames, cell=0.4)
  return [hist, strip]


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--workdir", default="runs/demo")
  p.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
  p.add_argument("--classifier", default="")
  p.add_argument("--walks", type=int, default=100)
  p.add_argument("--frames", type=int, default=32)
  p.add_argument("--pools", type=int, default=10)
  p.add_argument("--pool", type=int, default=512)
  p.add_argument("--ks", default="3", help="z's per concept, comma-separated (DCGAN: 3), e.g. 1,3,10")
  p.add_argument("--scales", default="1", help="factors on the attribute difference, e.g. 1,0.5")
  p.add_argument("--min-confidence", type=float, default=0.9, help="classifier probability for a label")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--figures", default="")
  p.add_argument("--json", default="")
  args = p.parse_args(argv)
  t0 = time.time()
  g, config = latent_figures.load_generator_fn(args.workdir, step=args.step)
  d = config.model.latent_dim
  features_fn, logits_fn = clf_lib.load_classifier(args.classifier)
  info = clf_lib.load(args.classifier).info
  train = latent_figures.training_images(config.data, "train")
  smooth, arrays = smoothness(g, d, train, features_fn, args.walks, args.frames, args.seed)
  result = {
    "workdir": args.workdir,
    "step": config.get("restored_step"),
    "classifier_test_accuracy": info.get("test_accuracy"),
    "smoothness": {"walks": args.walks, "frames": args.frames, **smooth},
  }
  result["arithmetic"] = [
    arithmetic(g, d, logits_fn, args.pools, args.pool, args.seed, k, s, args.min_confidence)
    for k in map(int, args.ks.split(","))
    for s in map(float, args.scales.split(","))
  ]
  if args.figures:
    os.makedirs(args.figures, exist_ok=True)
    result["figures"] = _figures(arrays, args.figures, args.frames)
  result["seconds"] = round(time.time() - t0, 1)
  text = json.dumps(result, indent=2)
  print(text)
  if args.json:
    with open(args.json, "w") as f:
      f.write(text + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
