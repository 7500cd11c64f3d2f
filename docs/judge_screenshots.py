"""The HYPE study of docs/evaluation.md: a scripted evaluator in the test browser, and its screenshots.

Run from the repository root (in the venv) after ``make demo``::

    .venv/bin/python docs/judge_screenshots.py --workdir runs/demo --out docs/img

It prepares a study of the run (``jgan judge --workdir RUN --n 100 --prepare_only``), serves it as a
real process (``jgan judge --serve``), and answers it in headless Chromium by keys, as the browser tests
do (tests/judge_driver.py), with three *scripted* evaluators at the same time — no person:

* ``grey-rule`` calls an image fake when more of its pixels are mid-grey (32..223; real MNIST digits are
  nearly black and white) than in 95 % of mnist5k's *train* digits;
* ``classifier-rule`` calls it fake when the digit classifier (``--classifier``, trained by ``jgan
  classifier``) is less sure of its class than of 95 % of the train digits (top softmax probability);
* ``both-rules`` calls it fake when either rule does.

Both thresholds come from the train split; the study's reals come from the test split. It saves the
study page (``judge_study.png``) and the results page (``judge_results.png``) into ``--out`` and prints
the report.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from tests import judge_driver  # noqa: E402


def grey_fraction(u8: np.ndarray) -> float:
  """Fraction of the pixels of a uint8 image that are mid-grey (32..223)."""
  return float(((u8 >= 32) & (u8 <= 223)).mean())


def confidence(classifier: str, u8: np.ndarray) -> np.ndarray:
  """The classifier's top softmax probability of each uint8 ``[N, 28, 28, 1]`` digit (float ``[N]``)."""
  import jax

  from jgan.metrics import classifier as classifier_lib

  _, logits_fn = classifier_lib.load_classifier(classifier)
  logits = np.asarray(logits_fn(u8.astype(np.float32) / 127.5 - 1.0))
  return np.asarray(jax.nn.softmax(logits, axis=-1)).max(-1)


def rules(study_dir: str, classifier: str, data_dir: str) -> dict:
  """The scripted evaluators' answers, ``{name: {image id: "real" | "fake"}}``."""
  from jgan import config as config_lib
  from jgan import data as data_lib
  from jgan.labs import judge_study

  cfg = config_lib.defaults().data
  cfg.name, cfg.image_size, cfg.data_dir = "mnist5k", 28, data_dir
  train, _ = data_lib.split_arrays(cfg, "train")
  train_u8 = judge_study.to_uint8(train)
  grey_limit = np.percentile([grey_fraction(x) for x in train_u8], 95)
  sure_limit = np.percentile(confidence(classifier, train_u8), 5)
  print(
    f"grey-rule: fake above {100 * grey_limit:.1f} % mid-grey pixels; classifier-rule: fake below p={sure_limit:.4f}"
  )
  ids = [r["id"] for r in judge_study.load(study_dir)["images"]]
  images = np.stack([judge_study.read_image(study_dir, i) for i in ids])
  sure = confidence(classifier, images)
  grey = {i: grey_fraction(x) > grey_limit for i, x in zip(ids, images)}
  unsure = {i: p < sure_limit for i, p in zip(ids, sure)}
  answer = lambda fake: "fake" if fake else "real"
  return {
    "grey-rule": {i: answer(grey[i]) for i in ids},
    "classifier-rule": {i: answer(unsure[i]) for i in ids},
    "both-rules": {i: answer(grey[i] or unsure[i]) for i in ids},
  }


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--workdir", default="runs/demo")
  p.add_argument("--study", default="docs_scripted_n100")
  p.add_argument("--n", type=int, default=100)
  p.add_argument("--out", default="docs/img")
  p.add_argument("--data_dir", default="")
  p.add_argument("--classifier", default="runs/classifier", help="a jgan classifier directory")
  args = p.parse_args()
  from jgan.labs import judge_study

  study_dir = os.path.join(args.workdir, "judge", args.study)
  if not os.path.isdir(study_dir):
    cmd = ["judge", "--workdir", args.workdir, "--n", str(args.n), "--study", args.study, "--prepare_only"]
    subprocess.run([sys.executable, "-m", "jgan", *cmd], check=True)
  answers = rules(study_dir, args.classifier, args.data_dir)
  total = len(judge_study.load(study_dir)["images"])
  server = judge_driver.Server(study_dir)
  try:
    with judge_driver.chromium() as browser:
      pages = {}
      for name in answers:
        pages[name] = browser.new_context(viewport={"width": 900, "height": 720}).new_page()
        pages[name].goto(server.study_url + f"?name={name}")
      for k in range(total):
        for name, page in pages.items():
          if k == 5 and name == "both-rules":
            judge_driver.wait_at(page, k)
            page.screenshot(path=os.path.join(args.out, "judge_study.png"))
          judge_driver.answer_by_key(page, k, answers[name].__getitem__)
      for page in pages.values():
        judge_driver.wait_done(page)
      results = browser.new_page(viewport={"width": 1000, "height": 900})
      results.goto(server.results_url)
      results.screenshot(path=os.path.join(args.out, "judge_results.png"), full_page=True)
  finally:
    server.stop()
  subprocess.run([sys.executable, "-m", "jgan", "judge", "--report", study_dir], check=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
