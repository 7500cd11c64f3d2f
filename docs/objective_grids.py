"""Regenerates docs/objectives.md: one MNIST (mnist5k) sample grid per objective family.

Run from the repository root: `.venv/bin/python docs/objective_grids.py [--steps N] [names...]`.
Each objective trains `configs/dcgan_mnist5k.py:<name>` (its recipe from configs/common.py) for the same
number of G steps; grids use the same fixed z.
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

FAMILIES = {
    "non_saturating": "GAN (non-saturating, Goodfellow et al. 2014)",
    "kl": "f-GAN, KL divergence (Nowozin et al. 2016)",
    "wgan_gp": "WGAN-GP (Gulrajani et al. 2017)",
    "least_squares": "LSGAN (Mao et al. 2017)",
    "hinge": "hinge + spectral norm (Miyato et al. 2018)",
    "began": "BEGAN (Berthelot et al. 2017)",
}


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--steps", type=int, default=1500)
  ap.add_argument("--workdir", default="runs/objective_grids")
  ap.add_argument("names", nargs="*", default=list(FAMILIES))
  args = ap.parse_args()
  rows = []
  for name in args.names:
    c = load_config("dcgan_mnist5k", name)
    c.train.steps, c.train.sample_every, c.train.progress = args.steps, 0, False
    wd = os.path.join(args.workdir, name)
    shutil.rmtree(wd, ignore_errors=True)
    t0 = time.time()
    train.train_and_evaluate(c, wd)
    dt = time.time() - t0
    shutil.copyfile(os.path.join(wd, "samples_final.png"), f"docs/img/objectives/{name}.png")
    last = [json.loads(line) for line in open(os.path.join(wd, "metrics.jsonl"))][-1]
    rows.append((name, dt, last["d_loss"], last["g_loss"], c.train.n_critic))
    print(f"{name}: {dt:.0f} s", flush=True)
  with open("docs/objectives.md", "w") as f:
    f.write("# Objectives on MNIST: one sample grid per family\n\n")
    f.write(f"`configs/dcgan_mnist5k.py:<objective>` (the objective's recipe from `configs/common.py`), "
            f"{args.steps} G steps each on mnist5k, EMA generator, the same fixed z. Regenerate with "
            f"`.venv/bin/python docs/objective_grids.py --steps {args.steps}`.\n\n")
    f.write("| objective | D steps per G step | final d_loss | final g_loss | wall time (s, shared CPU) |\n|---|---|---|---|---|\n")
    for name, dt, dl, gl, nc in rows:
      f.write(f"| `{name}` | {nc} | {dl:.3f} | {gl:.3f} | {dt:.0f} |\n")
    f.write("\n")
    for name, *_ in rows:
      f.write(f"### {FAMILIES.get(name, name)}: `{name}`\n\n![{name}](img/objectives/{name}.png)\n\n")


if __name__ == "__main__":
  main()
