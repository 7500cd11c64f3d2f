"""The command blocks of docs/evaluation.md run as written, on smoke settings.

Each ```bash / ```python block is run with only these substitutions: ``runs/demo`` (and the other
``runs/...`` names) point at a 10-step smoke run made here; training commands get smoke-sized
``--config`` overrides; ``~`` is a scratch home (so the classifier block trains into it, shortened);
``jgan`` and ``python`` are this environment's. A block preceded by ``<!-- docs-test: skip (why) -->``
is skipped and must say why.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "evaluation.md")
SMOKE = [
  "--config.train.steps=10",
  "--config.model.g_width=8",
  "--config.model.d_width=8",
  "--config.train.batch_size=16",
  "--config.evals.every_steps=10",  # one evaluation, at the end
  "--config.train.progress=False",
]


def blocks(path: str) -> list[tuple[str, str, str]]:
  """``(language, code, skip reason or "")`` of every fenced block of ``path``."""
  text = open(path).read()
  out = []
  for m in re.finditer(
    r"(<!-- docs-test: skip \((?P<why>[^)]*)\) -->\n)?```(?P<lang>\w*)\n(?P<code>.*?)```", text, re.S
  ):
    out.append((m["lang"], m["code"], m["why"] or ""))
  return out


def _commands(code: str) -> list[str]:
  joined = code.replace("\\\n", " ")
  return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
  """A smoke run standing in for runs/demo, and a scratch home with a small classifier in its cache."""
  from jgan import classifier_training, train
  from tests.helpers import load_config

  home = tmp_path_factory.mktemp("home")
  config = load_config("smoke")
  config.parallel.num_devices = 1
  run = str(home / "runs" / "demo")
  train.train_and_evaluate(config, run)
  short = classifier_training.default_config()
  short.train.steps = 30
  classifier_training.train_classifier(short, str(home / ".cache" / "jgan" / "classifier_mnist5k"))
  return home, run


def _run(cmd: str, home, run) -> subprocess.CompletedProcess:
  args = [str(home) + a[1:] if a.startswith("~/") else a for a in shlex.split(cmd)]  # ~ is the scratch home
  bin_dir = os.path.dirname(sys.executable)
  if args[0] in ("jgan", "python"):
    args[0] = os.path.join(bin_dir, args[0]) if args[0] == "jgan" else sys.executable
  args = [a.replace("runs/", str(home / "runs") + "/") for a in args]
  if "--step" in args:  # the smoke run's checkpoint
    args[args.index("--step") + 1] = "10"
  if "train" in args[:2] or "classifier" in args[:2]:
    args += SMOKE if "train" in args[:2] else ["--config.train.steps=20"]
  env = dict(os.environ, HOME=str(home), JGAN_CLASSIFIER="", PYTHONPATH=ROOT)
  return subprocess.run(args, capture_output=True, text=True, timeout=900, cwd=ROOT, env=env)


def test_every_block_is_run_or_says_why_not():
  found = blocks(DOC)
  assert len(found) >= 4 and all(lang in ("bash", "python") for lang, _, _ in found)
  assert all(why.strip() for lang, code, why in found if why), "a skipped block must say why"


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(blocks(DOC))))
def test_docs_evaluation_block_runs(index, demo):
  lang, code, why = blocks(DOC)[index]
  if why:
    pytest.skip(f"docs/evaluation.md block {index}: {why}")
  home, run = demo
  if lang == "python":
    preamble = "import numpy as np\nimages = np.zeros((5000, 28, 28, 1), np.float32)\n"
    script = preamble + code.replace('"runs/', f'"{home}/runs/')
    r = subprocess.run(
      [sys.executable, "-c", script],
      capture_output=True,
      text=True,
      timeout=900,
      cwd=ROOT,
      env=dict(os.environ, HOME=str(home), JGAN_CLASSIFIER=""),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return
  for cmd in _commands(code):
    r = _run(cmd, home, run)
    assert r.returncode == 0, (cmd, r.stdout[-2000:], r.stderr[-3000:])
