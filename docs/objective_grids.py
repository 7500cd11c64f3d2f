"""Regenerates docs/objectives.md: one MNIST (mnist5k) sample grid per objective family.

Run from the repository root: `.venv/bin/python docs/objective_grids.py [--steps N] [names...]`.
Each objective trains `configs/dcgan_mnist5k.py:<name>` (its recipe from jgan/recipes.py) for the same
number of G steps from the same seed; every grid shows the EMA generator on the same fixed z. Writes
`docs/img/objectives/all.png` (every grid, labelled), `docs/img/objectives/results.json` (one row per
objective, so a subset can be rerun) and the page `docs/objectives.md` (commands, timings, final
losses); the per-objective grids stay in `<workdir>/<name>/samples_final.png`.
"""

import argparse
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jgan  # noqa: E402,F401
from jgan import train  # noqa: E402
from tests.helpers import load_config  # noqa: E402

IMG_DIR = "docs/img/objectives"
HAND_WRITTEN = "## What the grids show"  # heading of the page's hand-written section, kept on regeneration
# One objective per family of jgan.objectives.OBJECTIVES (the f-GAN family is represented by KL; its
# nine divergences share the model, step and recipe and differ only in g_f and f*).
FAMILIES = {
  "non_saturating": "GAN, non-saturating (Goodfellow et al. 2014)",
  "kl": "f-GAN, KL divergence (Nowozin et al. 2016)",
  "wasserstein": "WGAN, weight clipping (Arjovsky et al. 2017)",
  "wgan_gp": "WGAN-GP (Gulrajani et al. 2017)",
  "least_squares": "LSGAN (Mao et al. 2017)",
  "hinge": "hinge + spectral norm (Miyato et al. 2018)",
  "relativistic": "relativistic average GAN (Jolicoeur-Martineau 2019)",
  "ebgan": "EBGAN (Zhao et al. 2017)",
  "began": "BEGAN (Berthelot et al. 2017)",
}


def labelled_figure(names: list[str], workdir: str, path: str) -> str:
  """All per-objective grids side by side (3 per row), each titled with its objective name."""
  import math

  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from PIL import Image

  cols = 3
  rows = math.ceil(len(names) / cols)
  fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.5 * rows), dpi=100, squeeze=False)
  for ax in axes.ravel():
    ax.axis("off")
  for ax, name in zip(axes.ravel(), names):
    ax.imshow(Image.open(os.path.join(workdir, name, "samples_final.png")), cmap="gray")
    ax.set_title(name, fontsize=11)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
  return path


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--steps", type=int, default=3000)
  ap.add_argument("--workdir", default="runs/objective_grids")
  ap.add_argument("--report-only", action="store_true", help="rebuild the page and figure, train nothing")
  ap.add_argument("names", nargs="*", default=list(FAMILIES))
  args = ap.parse_args()
  if args.report_only:
    args.names = []
  os.makedirs(IMG_DIR, exist_ok=True)
  # Rows of earlier invocations are kept, so a subset of objectives can be rerun and the page rebuilt.
  results_path = os.path.join(IMG_DIR, "results.json")
  stored = json.load(open(results_path)) if os.path.exists(results_path) else {}
  for name in args.names:
    c = load_config("dcgan_mnist5k", name)
    c.train.steps, c.train.sample_every, c.train.progress = args.steps, 0, False
    c.checkpoint.every_steps = 0
    wd = os.path.join(args.workdir, name)
    shutil.rmtree(wd, ignore_errors=True)
    t0 = time.time()
    train.train_and_evaluate(c, wd)
    dt = time.time() - t0
    last = [json.loads(line) for line in open(os.path.join(wd, "metrics.jsonl"))][-1]
    o = c.optim.d
    opt = f"{o.name} {o.lr:g}" + (f" ({o.b1:g}, {o.b2:g})" if o.name == "adam" else "")
    stored[name] = [name, dt, last["d_loss"], last["g_loss"], c.train.n_critic, opt, os.getloadavg()[0], args.steps]
    with open(results_path, "w") as f:
      json.dump(stored, f, indent=1)
    print(f"{name}: {dt:.0f} s", flush=True)
  rows = [stored[n][:7] for n in FAMILIES if n in stored]
  steps = sorted({stored[n][7] for n in FAMILIES if n in stored})
  if len(steps) != 1:
    raise SystemExit(f"stored runs have different step counts {steps}; rerun all objectives")
  args.steps = steps[0]
  labelled_figure([r[0] for r in rows], args.workdir, os.path.join(IMG_DIR, "all.png"))
  # The page's hand-written findings (from HAND_WRITTEN on) survive a regeneration: only the generated
  # part above them is rewritten.
  page = "docs/objectives.md"
  hand = ""
  if os.path.exists(page):
    old = open(page).read()
    if HAND_WRITTEN in old:
      hand = "\n" + old[old.index(HAND_WRITTEN) :]
  with open(page, "w") as f:
    f.write("# Objectives on MNIST: one sample grid per family\n\n")
    f.write(
      f"Each objective trains `configs/dcgan_mnist5k.py:<objective>` (the 28 px DCGAN of the first `make demo`, "
      f"with the objective's recipe from `jgan/recipes.py`: optimiser, critic steps, D "
      f"normalisation) for {args.steps} G steps on mnist5k from seed 0; the grids show the EMA "
      f"generator on the same fixed z. Regenerate with "
      f"`.venv/bin/python docs/objective_grids.py --steps {args.steps}` "
      f"(the f-GAN family is represented by `kl`; any other divergence trains with "
      f"`--config configs/dcgan_mnist5k.py:NAME`).\n\n"
    )
    f.write("![all objectives](img/objectives/all.png)\n\n")
    f.write(
      "| objective | family | D optimiser | D steps per G step | final d_loss | final g_loss | "
      "wall time (s, 2-core CPU) | load average |\n|---|---|---|---|---|---|---|---|\n"
    )
    for name, dt, dl, gl, nc, opt, la in rows:
      f.write(f"| `{name}` | {FAMILIES.get(name, name)} | {opt} | {nc} | {dl:.3f} | {gl:.3f} | {dt:.0f} | {la:.1f} |\n")
    f.write("\nLosses are on each objective's own scale and are not comparable across rows.\n")
    f.write(hand)


if __name__ == "__main__":
  main()
