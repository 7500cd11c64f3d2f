"""The model-zoo studies of docs/models.md: conditional GANs, augmentation on 500 digits, Stacked MNIST, R3GAN's loss.

Run from the repository root (in the venv), one study at a time; every (arm, seed) run is appended to
``<workdir>/<study>/results.jsonl`` as soon as it is evaluated, and arms/seeds already there are
skipped, so an interrupted study resumes where it stopped:

    .venv/bin/python docs/zoo_studies.py conditional --seeds 0,1,2
    .venv/bin/python docs/zoo_studies.py augment --seeds 0,1,2
    .venv/bin/python docs/zoo_studies.py stacked --seeds 0,1,2
    .venv/bin/python docs/zoo_studies.py loss --seeds 0,1,2
    .venv/bin/python docs/zoo_studies.py demo --arms cond_b16 --seeds 0 --set evals.every_steps=2000
    .venv/bin/python docs/zoo_studies.py augment --table       # the markdown table (mean ± sd, per seed)
    .venv/bin/python docs/zoo_studies.py loss --rescore        # add outputs a metric gained since, then --table
    .venv/bin/python docs/zoo_studies.py augment --figure docs/img/augment_curves.png
    .venv/bin/python docs/zoo_studies.py loss --input-grads    # D's input-gradient norms, real vs fake

Each run trains a preset of jgan.presets with the arm's overrides through ``jgan.train_and_evaluate``
and evaluates the final EMA generator with the study's metrics (jgan.evaluation.Evaluator: the same code
as ``jgan eval``). The workdirs stay under ``<workdir>/<study>/<arm>_s<seed>`` (metrics.jsonl,
TensorBoard, sample grids, checkpoints).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
import time
from typing import NamedTuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


class Arm(NamedTuple):
  preset: str  # a jgan.presets.PRESETS name
  overrides: dict  # dotted config key -> value
  metrics: str  # comma list of jgan.metrics.METRICS
  resumes: str = ""  # another arm of the study whose finished workdir (same seed) this arm copies and trains on


_FID_MATCH = "mnist_fid5k,mnist_class_match10k"
_STACKED = "stacked_modes26k"
_B16 = {"train.batch_size": 16, "evals.every_steps": 3000}
_B16_LONG = {"train.batch_size": 16, "train.steps": 48000, "evals.every_steps": 6000}
_WIDE = {"model.g_width": 64, "model.d_width": 64}
_D64 = {"model.d_width": 64}
_SHIFT_CUTOUT = {"augment.name": "diffaugment", "augment.policy": "translation,cutout"}
_D64_LN = {**_D64, "model.d_norm": "layer"}
_G64_D64_LN = {**_D64_LN, "model.g_width": 64}
_G64_D128_LN = {**_G64_D64_LN, "model.d_width": 128}
# ADA on a 3,000-step budget (192k real images): the paper's 500 kimg would let p reach only 0.38, so p
# may move by 1 in 100k images here; target 0.6 and interval 4 as published.
_ADA = {"augment.name": "ada", "augment.kimg": 100.0}
# The baseline's r_t, measured as ADA measures it, without augmenting: ADA with p fixed at 0 is the
# identity (tests/test_augment.py) and reports r_t = E[sign D(real)].
_MEASURE_RT = {"augment.name": "ada", "augment.adaptive": False, "augment.p": 0.0}
# 500 digits, 15,000 G steps (1.9M images shown, ~3,800 epochs of the subset), FID every 2,500 steps. At
# 3,000 steps augmentation was behind (it slows G's start; seed 0: none 117.5, DiffAugment 153.0, ADA
# 180.9); measured on seed 0 with FID every 2,500 steps, DiffAugment caught up at 12,500 (80.4 vs 80.6).
_SUBSET = {"data.num_examples": 500, "train.steps": 15000, "evals.every_steps": 2500, "train.sample_every": 2500}

# Candidates for the `make demo` recipe at about the old demo's cost (configs/dcgan_mnist5k.py: batch 64 x
# 3,000 steps). A step's cost is about linear in the batch (conditional or not), so half (a quarter of) the
# batch buys about twice (four times) the updates. _HINGE: jgan.recipes' hinge recipe as overrides (hinge
# loss, D spectrally normalised without BatchNorm; 1.16x the step cost at batch 64).
_COND = {"model.conditional": True}
_HINGE = {"objective.name": "hinge", "model.d_norm": "none", "model.d_spectral_norm": True}

STUDIES: dict[str, dict[str, Arm]] = {
  # Must-show 1: class-conditional generators vs the unconditional run of the same budget.
  # The DCGAN pair at 5,000 steps: at the demo's 3,000 the one-hot conditional DCGAN matched 92.7 / 94.9 /
  # 92.7 % (seeds 0-2), still rising (52.9 % at 1,500).
  "conditional": {
    "dcgan": Arm("dcgan_mnist5k", {"train.steps": 5000}, "mnist_fid5k"),
    "dcgan_cond": Arm("dcgan_mnist5k", {"train.steps": 5000, "model.conditional": True}, _FID_MATCH),
    "resnet": Arm("resnet_mnist5k", {"train.steps": 5000, "model.conditional": False}, "mnist_fid5k"),
    "resnet_cond": Arm("resnet_mnist5k", {"train.steps": 5000, "model.conditional": True}, _FID_MATCH),
  },
  # Must-show 2: limited data (500 digits), the same step budget with and without augmentation.
  "augment": {
    "none": Arm("dcgan_mnist5k", {**_SUBSET, **_MEASURE_RT}, "mnist_fid5k"),
    "diffaugment": Arm("dcgan_mnist5k", {**_SUBSET, "augment.name": "diffaugment"}, "mnist_fid5k"),
    "ada": Arm("dcgan_mnist5k", {**_SUBSET, **_ADA}, "mnist_fid5k"),
  },
  # The `make demo` recipe: the old demo (configs/dcgan_mnist5k.py) and the candidates for the new one.
  "demo": {
    "dcgan": Arm("dcgan_mnist5k", {}, "mnist_fid5k"),
    "cond": Arm("dcgan_mnist5k", _COND, _FID_MATCH),
    "cond_hinge": Arm("dcgan_mnist5k", {**_COND, **_HINGE}, _FID_MATCH),
    "cond_b32": Arm("dcgan_mnist5k", {**_COND, "train.batch_size": 32, "train.steps": 6000}, _FID_MATCH),
    "cond_b16": Arm("dcgan_mnist5k", {**_COND, "train.batch_size": 16, "train.steps": 12000}, _FID_MATCH),
    "cond_b8": Arm("dcgan_mnist5k", {**_COND, "train.batch_size": 8, "train.steps": 16000}, _FID_MATCH),
  },
  # Must-show 3: PacGAN Table 3's protocol on Stacked MNIST.
  "stacked": {
    "dcgan": Arm("stacked_mnist5k", {}, "stacked_modes26k"),
    "pacdcgan2": Arm("stacked_mnist5k", {"model.pack": 2}, "stacked_modes26k"),
    "diffaugment": Arm("stacked_mnist5k", {"augment.name": "diffaugment"}, "stacked_modes26k"),
    # The demo DCGAN with the new demo's trade (a quarter of the batch, four times the updates: the same
    # 192k images), scored every 3,000 steps.
    "dcgan_b16": Arm("stacked_mnist5k", {**_B16, "train.steps": 12000}, _STACKED),
    "dcgan_b16_long": Arm("stacked_mnist5k", {**_B16, "train.steps": 48000, "evals.every_steps": 6000}, _STACKED),
    # The long run's KL stays at 0.30 from 30,000 steps on, nearly all of it channel skew (4s drawn as 9s):
    # D twice as wide (32 -> 64 channels), which the tiny D (36,577 parameters) may need to tell them apart.
    "dcgan_b16_d64": Arm("stacked_mnist5k", {**_B16, "train.steps": 24000, "model.d_width": 64}, _STACKED),
    "dcgan_b16_d64_long": Arm("stacked_mnist5k", {**_B16_LONG, **_D64}, _STACKED),
    # The wide D levels off at KL 0.20-0.22, the same skew on every channel (too few 4s, too many 9s): G's
    # digits, not its mode coverage. G twice as wide too (1.4x the step cost here), with the rates constant
    # or decayed to 0 on a cosine over the run.
    "dcgan_b16_g64d64": Arm("stacked_mnist5k", {**_B16_LONG, **_WIDE}, _STACKED),
    "dcgan_b16_g64d64_cos": Arm("stacked_mnist5k", {**_B16_LONG, **_WIDE, "optim.lr_schedule": "cosine"}, _STACKED),
    # G's width barely moved the KL (0.230 against 0.238 at 24,000 steps), while D separates real from fake
    # by ~9 logits late in the run: D overfits the 5,000 digits. Regularise D instead: DiffAugment's shifts and
    # cutout (no colour transform: it would mix the three digits), or LeCam.
    "dcgan_b16_d64_diffaug": Arm("stacked_mnist5k", {**_B16_LONG, **_D64, **_SHIFT_CUTOUT}, _STACKED),
    "dcgan_b16_d64_lecam": Arm("stacked_mnist5k", {**_B16_LONG, **_D64, "lecam.weight": 0.1}, _STACKED),
    # Both were behind the plain wide D at 12,000 steps. What the skew is: each channel's digit frequencies,
    # a first moment of D's features, which D's BatchNorm subtracts from every real and every fake batch
    # before D can use it. D normalised per sample (LayerNorm) or not at all:
    "dcgan_b16_d64_ln": Arm("stacked_mnist5k", {**_B16_LONG, **_D64_LN}, _STACKED),
    "dcgan_b16_d64_nonorm": Arm("stacked_mnist5k", {**_B16_LONG, **_D64, "model.d_norm": "none"}, _STACKED),
    # LayerNorm takes the KL at 48,000 steps from 0.215 (BatchNorm) to 0.112, no normalisation to 0.153. On the
    # LayerNorm D: the rates decayed to 0 on a cosine over the run, without or with G twice as wide.
    "dcgan_b16_d64_ln_cos": Arm("stacked_mnist5k", {**_B16_LONG, **_D64_LN, "optim.lr_schedule": "cosine"}, _STACKED),
    "dcgan_b16_g64d64_ln_cos": Arm(
      "stacked_mnist5k", {**_B16_LONG, **_G64_D64_LN, "optim.lr_schedule": "cosine"}, _STACKED
    ),
    # With decayed rates the KL stopped falling (0.160 at 48,000 against 0.112 at constant rates); G's width helped
    # under decay. Constant rates, with G twice as wide, or with D twice as wide again:
    "dcgan_b16_g64d64_ln": Arm("stacked_mnist5k", {**_B16_LONG, **_G64_D64_LN}, _STACKED),
    "dcgan_b16_d128_ln": Arm("stacked_mnist5k", {**_B16_LONG, **_D64_LN, "model.d_width": 128}, _STACKED),
    # The same run continued to 72,000 steps (a copy of the 48,000-step workdir resumes: train.steps does
    # not change what a constant-rate run computes).
    "dcgan_b16_g64d64_ln_72k": Arm(
      "stacked_mnist5k", {**_B16_LONG, **_G64_D64_LN, "train.steps": 72000}, _STACKED, resumes="dcgan_b16_g64d64_ln"
    ),
    # From 36,000 steps on the KL moves within 0.088-0.112 from one evaluation to the next: an average over a longer
    # stretch of G's weights may sit nearer the middle. The 72,000-step runs continued 12,000 steps with the EMA's
    # horizon 5x longer (decay 0.999 -> 0.9998, ~5,000 steps; a copy of the 72k workdir resumes).
    "dcgan_b16_g64d64_ln_ema": Arm(
      "stacked_mnist5k",
      {
        **_B16_LONG,
        **_G64_D64_LN,
        "train.steps": 84000,
        "optim.ema_decay": 0.9998,
        "checkpoint.allow_config_change": True,
      },
      _STACKED,
      resumes="dcgan_b16_g64d64_ln_72k",
    ),
    # The longer EMA left the KL where it was (0.103 / 0.101 / 0.109 at 84,000): most of the skew is a bias shared
    # by G's recent weights, not their spread. What acts on the distribution of G's digits rather than on each
    # sample: D sees two samples at once (PacGAN's packing, the theory of which bounds mode dropping), or the
    # relativistic pairing loss (whose landscape has no mode-dropping local minima, R3GAN section 2), or both.
    "dcgan_b16_g64d64_ln_pac2": Arm("stacked_mnist5k", {**_B16_LONG, **_G64_D64_LN, "model.pack": 2}, _STACKED),
    "dcgan_b16_g64d64_ln_rpgan": Arm(
      "stacked_mnist5k", {**_B16_LONG, **_G64_D64_LN, "objective.name": "rpgan"}, _STACKED
    ),
    "dcgan_b16_g64d64_ln_rpgan_pac2": Arm(
      "stacked_mnist5k", {**_B16_LONG, **_G64_D64_LN, "objective.name": "rpgan", "model.pack": 2}, _STACKED
    ),
    # All three behind the plain LayerNorm run at every evaluation (seed 0; stopped at 18,000-24,000). D's width
    # was what moved the BatchNorm runs most (32 -> 64: KL 0.30 -> 0.21), so D twice as wide again, for 36,000 steps
    # (the 64-wide runs reached their plateau there), then continued to 48,000 and to 60,000 (seed 1 was at 0.102
    # at 48,000, falling by ~0.003 per 6,000 steps).
    "dcgan_b16_g64d128_ln": Arm("stacked_mnist5k", {**_B16_LONG, **_G64_D128_LN, "train.steps": 36000}, _STACKED),
    "dcgan_b16_g64d128_ln_48k": Arm(
      "stacked_mnist5k", {**_B16_LONG, **_G64_D128_LN}, _STACKED, resumes="dcgan_b16_g64d128_ln"
    ),
    "dcgan_b16_g64d128_ln_60k": Arm(
      "stacked_mnist5k",
      {**_B16_LONG, **_G64_D128_LN, "train.steps": 60000},
      _STACKED,
      resumes="dcgan_b16_g64d128_ln_48k",
    ),
    # From 36,000 steps on each seed's KL moves by up to 0.017 between evaluations around ~0.09-0.105 (seed 1
    # highest). Three ways to change the game for the last 12,000 steps, each a copy of the 48,000-step workdir
    # resumed with one change: both rates at a quarter (R3GAN's final 2e-4 -> 5e-5; the EMA did not remove the
    # skew, a smaller step might), D's rate doubled, or two D updates per G update (D's capacity is what moved
    # the KL most).
    **{
      f"dcgan_b16_g64d128_ln_{tag}": Arm(
        "stacked_mnist5k",
        {**_B16_LONG, **_G64_D128_LN, "train.steps": 60000, **change, "checkpoint.allow_config_change": True},
        _STACKED,
        resumes="dcgan_b16_g64d128_ln_48k",
      )
      for tag, change in (
        ("lr_quarter", {"optim.g.lr": 5e-5, "optim.d.lr": 5e-5}),
        ("dlr2", {"optim.d.lr": 4e-4}),
        ("ncritic2", {"train.n_critic": 2}),
      )
    },
    # D's doubled rate helped late; the same two time scales from the first step, for 24,000 steps (the equal-rate
    # runs' KL there: 0.105 / 0.128 / 0.103).
    "dcgan_b16_g64d128_ln_ttur": Arm(
      "stacked_mnist5k", {**_B16_LONG, **_G64_D128_LN, "train.steps": 24000, "optim.d.lr": 4e-4}, _STACKED
    ),
  },
  # R3GAN's loss ablation on Stacked MNIST (Huang et al. 2024, section 5.1) at reduced scale: the same small
  # network (the demo DCGAN, D without BatchNorm) and schedules, the classic (non-saturating) or the
  # relativistic pairing loss, R1 alone or R1 + R2 (same gamma).
  "loss": {
    "gan_r1": Arm("r3gan_loss_stacked5k", {"objective.name": "non_saturating", "penalty.name": "r1"}, _STACKED),
    "rpgan_r1": Arm("r3gan_loss_stacked5k", {"penalty.name": "r1"}, _STACKED),
    "gan_r1r2": Arm("r3gan_loss_stacked5k", {"objective.name": "non_saturating"}, _STACKED),
    "rpgan_r1r2": Arm("r3gan_loss_stacked5k", {}, _STACKED),
  },
}
# At 2,000 steps no arm failed and RpGAN + R1 came second; the same four arms at three times the budget (the
# schedules span the run, so these are fresh runs, not continuations), evaluated every 2,000 steps.
STUDIES["loss"] |= {
  f"{name}_6k": arm._replace(overrides={**arm.overrides, "train.steps": 6000, "evals.every_steps": 2000})
  for name, arm in STUDIES["loss"].items()
}
# At 6,000 steps the classic loss with R1 alone led: the same four losses on the paper's own network (config E,
# jgan's `r3gan` model at the CPU size of `r3gan_stacked_mnist5k`: 28 px, width 32, one block per stage, gamma 1),
# batch 32 for 4,000 steps (128 k images, the 2,000-step DCGAN arms' count), evaluated every 1,000 steps.
_R3_LOSS = {"train.steps": 4000, "evals.every_steps": 1000}
STUDIES["loss"] |= {
  f"r3net_{name}": Arm("r3gan_stacked_mnist5k", {**_R3_LOSS, **STUDIES["loss"][name].overrides}, _STACKED)
  for name in ("gan_r1", "rpgan_r1", "gan_r1r2", "rpgan_r1r2")
}


def config_for(arm: Arm, seed: int, steps: int | None, extra: dict | None = None):
  import jgan

  c = jgan.presets.PRESETS[arm.preset]()
  c.update_from_flattened_dict({**arm.overrides, **(extra or {})})  # dotted keys at any depth ("optim.g.lr")
  c.seed = seed
  c.train.progress = False
  c.evals.metrics = arm.metrics
  if steps:
    c.train.steps = steps
  return c


def run_one(study: str, name: str, seed: int, root: str, steps: int | None, extra: dict | None = None) -> dict:
  """Trains and evaluates one (arm, seed); returns its results row."""
  import jgan
  from jgan import evaluation

  arm = STUDIES[study][name]
  config = config_for(arm, seed, steps, extra)
  workdir = os.path.join(root, study, f"{name}_s{seed}")
  if arm.resumes and not os.path.exists(workdir):
    # A continuation: train on from a copy of the earlier arm's finished run, which stays as it was.
    source = os.path.join(root, study, f"{arm.resumes}_s{seed}")
    if (arm.resumes, seed) not in {
      (r["arm"], r["seed"]) for r in load_rows(os.path.join(root, study, "results.jsonl"))
    }:
      raise SystemExit(f"arm {name!r} continues {arm.resumes!r}: run that arm for seed {seed} first")
    shutil.copytree(source, workdir)
  t0 = time.time()
  state = jgan.train_and_evaluate(config, workdir)
  train_s = time.time() - t0
  if int(state.step) < config.train.steps:  # stopped by SIGTERM / SIGINT after a checkpoint: rerun resumes
    raise SystemExit(f"{workdir} stopped at step {int(state.step)} of {config.train.steps}; rerun to resume it")
  ev = evaluation.Evaluator(jgan.config.resolve(config), workdir, arm.metrics, progress=False)
  results = ev(state, int(state.step))
  return {
    "arm": name,
    "seed": seed,
    "steps": int(state.step),
    "train_s": round(train_s, 1),
    "eval_s": round(time.time() - t0 - train_s, 1),
    **results,
  }


def rescore(study: str, root: str, path: str) -> None:
  """Re-evaluates every stored run's final EMA G with its arm's metrics (the same fixed noise) and adds the
  outputs its row lacks (a metric that gained outputs since); the values it had must come out again."""
  import jgan  # noqa: F401
  from jgan import evaluation, resume

  rows = load_rows(path)
  for row in rows:
    workdir = os.path.join(root, study, f"{row['arm']}_s{row['seed']}")
    state, config = resume.load_state(workdir)
    results = evaluation.Evaluator(config, workdir, STUDIES[study][row["arm"]].metrics, progress=False)(
      state, int(state.step), write=False
    )
    moved = {k: (row[k], v) for k, v in results.items() if k in row and row[k] != v}
    if moved:
      raise SystemExit(f"{workdir}: stored values did not come out again: {moved}")
    row |= results
  with open(path + ".tmp", "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
  os.replace(path + ".tmp", path)


def load_rows(path: str) -> list[dict]:
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def table(rows: list[dict], arms: list[str]) -> str:
  """Markdown: one row per arm, each metric as mean ± sd over seeds and the per-seed values."""
  skip = ("arm", "seed", "steps", "train_s", "eval_s")
  keys = sorted({k for r in rows for k, v in r.items() if k not in skip and isinstance(v, int | float)})
  lines = ["| arm | seeds | steps | " + " | ".join(keys) + " |", "|---|---|---|" + "---|" * len(keys)]
  for arm in arms:
    rs = sorted((r for r in rows if r["arm"] == arm), key=lambda r: r["seed"])
    if not rs:
      continue
    cells = []
    for k in keys:
      v = np.asarray([r[k] for r in rs if k in r], np.float64)
      if not v.size:
        cells.append("")
        continue
      sd = f" ± {v.std(ddof=1):.3g}" if v.size > 1 else ""
      per = ", ".join(f"{x:.4g}" for x in v)
      cells.append(f"{v.mean():.4g}{sd} ({per})")
    seeds = ",".join(str(r["seed"]) for r in rs)
    lines.append(f"| {arm} | {seeds} | {rs[0]['steps']} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _d_apply(graphdef, params, stats, x):
  """D's raw outputs ``[B]`` for images ``x`` (D in training mode, as the penalties call it)."""
  from flax import nnx

  net = nnx.merge(graphdef, params, stats, copy=True)
  net.train()
  return net(x)


def input_gradients(root: str, study: str, arms: list[str], seeds: list[int], n: int = 512) -> str:
  """Markdown: D's input-gradient norms at each stored checkpoint of every (arm, seed) run, the quantity
  R1 and R2 penalise (R3GAN section 2: with R1 alone, ``||grad_x D||`` on the fakes is left free).

  Per checkpoint: the root mean square of ``||grad_x D(x)||_2`` over ``n`` real training images and over
  ``n`` fakes of the live G in training mode (what D is trained against), and D's mean logit gap
  ``D(real) - D(fake)`` on them. D must be free of BatchNorm (per-sample gradients), as R1 / R2 need.
  """
  import jax  # main() imported jgan first (its XLA:CPU work-around)
  import jax.numpy as jnp

  from jgan import data, penalties, resume
  from jgan import state as state_lib
  from jgan.checkpoint import Checkpointer

  @functools.partial(jax.jit, static_argnums=0)
  def grad_norms(graphdef, params, stats, x):  # ||grad_x D(x_i)||_2 per image, float32 [B]
    return penalties.gradient_norms(functools.partial(_d_apply, graphdef, params, stats), x)

  lines = [
    "| arm | seed | step | rms ‖∇D(real)‖ | rms ‖∇D(fake)‖ | fake / real | D(real) - D(fake) |",
    "|---|---|---|---|---|---|---|",
  ]
  real_cache: dict[str, np.ndarray] = {}
  for name in arms:
    for seed in seeds:
      workdir = os.path.join(root, study, f"{name}_s{seed}")
      if not os.path.isdir(os.path.join(workdir, "checkpoints")):
        continue
      for step in Checkpointer(os.path.join(workdir, "checkpoints"), read_only=True).steps():
        st, config = resume.load_state(workdir, step=step)
        if config.data.name not in real_cache:
          real_cache[config.data.name] = data.split_arrays(config.data, "train", n)[0]
        real = jnp.asarray(real_cache[config.data.name])
        z = jax.random.normal(jax.random.key(seed), (n, config.model.latent_dim), jnp.float32)
        fake = state_lib.generate(st, z, ema=False, train=True)
        d_parts = (st.d_graphdef, st.d.params, st.d.stats)
        rms = [float(jnp.sqrt(jnp.mean(jnp.square(grad_norms(*d_parts, x))))) for x in (real, fake)]
        gap = float(jnp.mean(_d_apply(*d_parts, real)) - jnp.mean(_d_apply(*d_parts, fake)))
        lines.append(f"| {name} | {seed} | {step} | {rms[0]:.3g} | {rms[1]:.3g} | {rms[1] / rms[0]:.3g} | {gap:.3g} |")
  return "\n".join(lines)


def figure(root: str, study: str, path: str) -> None:
  """ADA's p and every arm's r_t = E[sign D(real)] over training (seed 0), from the runs' metrics.jsonl."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, (ax_rt, ax_p) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110)
  for name in STUDIES[study]:
    rows = load_rows(os.path.join(root, study, f"{name}_s0", "metrics.jsonl"))
    rows = [r for r in rows if "ada_rt" in r]
    if not rows:
      continue
    steps = [r["step"] for r in rows]
    ax_rt.plot(steps, [r["ada_rt"] for r in rows], label=name)
    if name == "ada":
      ax_p.plot(steps, [r["ada_p"] for r in rows], color="C2", label="ada: p")
  ax_rt.axhline(0.6, color="gray", ls="--", lw=0.8, label="ADA target 0.6")
  ax_rt.set(xlabel="G step", ylabel="r_t = E[sign D(real)]", title="D's overfitting heuristic (500 digits)")
  ax_p.set(xlabel="G step", ylabel="augmentation probability p", title="ADA's p", ylim=(0, 1))
  ax_rt.legend(fontsize=8)
  ax_p.legend(fontsize=8)
  fig.tight_layout()
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  fig.savefig(path)
  plt.close(fig)


def main(argv: list[str] | None = None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("study", choices=sorted(STUDIES))
  ap.add_argument("--seeds", default="0,1,2")
  ap.add_argument("--arms", default="", help="comma list (default: every arm of the study)")
  ap.add_argument("--steps", type=int, default=0, help="override the presets' step budget (0: keep)")
  ap.add_argument("--workdir", default="runs/zoo")
  ap.add_argument(
    "--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every arm (Python literal)"
  )
  ap.add_argument("--table", action="store_true", help="print the table of the stored results, train nothing")
  ap.add_argument("--rescore", action="store_true", help="add the outputs stored rows lack, train nothing")
  ap.add_argument("--figure", default="", help="write the r_t / p figure to this path, train nothing")
  ap.add_argument(
    "--input-grads", action="store_true", help="print D's input-gradient norms at the stored checkpoints, train nothing"
  )
  args = ap.parse_args(argv)
  arms = args.arms.split(",") if args.arms else list(STUDIES[args.study])
  unknown = sorted(set(arms) - set(STUDIES[args.study]))
  if unknown:
    ap.error(f"unknown arms {unknown} of study {args.study!r}; valid choices: {', '.join(STUDIES[args.study])}")
  path = os.path.join(args.workdir, args.study, "results.jsonl")
  if args.rescore:
    rescore(args.study, args.workdir, path)
    args.table = True
  if args.table or args.figure:
    if args.figure:
      figure(args.workdir, args.study, args.figure)
    if args.table:
      print(table(load_rows(path), arms))
    return 0
  import ast

  import jgan  # noqa: F401  (the XLA:CPU work-around before any JAX work)

  if args.input_grads:
    print(input_gradients(args.workdir, args.study, arms, [int(s) for s in args.seeds.split(",")]))
    return 0

  extra = {}
  for kv in args.set:
    key, _, value = kv.partition("=")
    try:
      extra[key] = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      extra[key] = value  # a bare string
  seeds = [int(s) for s in args.seeds.split(",")]
  done = {(r["arm"], r["seed"]) for r in load_rows(path)}
  os.makedirs(os.path.dirname(path), exist_ok=True)
  for seed in seeds:  # seeds outermost: a partial study has every arm at the first seeds
    for name in arms:
      if (name, seed) in done:
        continue
      row = run_one(args.study, name, seed, args.workdir, args.steps or None, extra)
      with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
      print(json.dumps(row), flush=True)
  print(table(load_rows(path), arms))
  return 0


if __name__ == "__main__":
  sys.exit(main())
