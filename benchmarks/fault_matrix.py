"""The kill / signal matrix of docs/reliability.md: each kill point and signal tried several times, each
trial on its own workdir, each ending in a comparison with an uninterrupted run.

    .venv/bin/python benchmarks/fault_matrix.py [--repeats 3] [--seed 0]

The scenario of tests/test_faults.py (ring8 MLP GAN, 300 steps, checkpoints every 40, rows every 15, real
``launch.py`` processes; helpers in tests/faults.py): SIGKILL during the first save, between saves, during
a later save, during the final save and during the restore of a rerun (after a kill between saves);
SIGINT and SIGTERM a random 0-30 ms after a random logging step. A trial counts as identical when the
last run's final checkpoint (every leaf, bit for bit), iterator state, metrics.jsonl rows and TensorBoard
scalars equal the uninterrupted run's. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import random
import re
import signal
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import faults  # noqa: E402

TOTAL, EVERY, LOG_EVERY = 300, 40, 15
RING8 = [
  "--config",
  "configs/ring8.py",
  "--config.parallel.num_devices=1",
  f"--config.train.steps={TOTAL}",
  "--config.train.steps_per_call=1",
  f"--config.train.log_every={LOG_EVERY}",
  f"--config.checkpoint.every_steps={EVERY}",
  "--config.train.sample_every=0",
  "--config.train.batch_size=64",
  "--config.train.num_samples=64",
  "--config.seed=1",
]
# A trial: the kill points of one chain; the last one is the one counted.
KILL_TRIALS = {
  "SIGKILL during the first save": ("the first save",),
  "SIGKILL between saves": ("between saves",),
  "SIGKILL during a later save": ("a later save",),
  "SIGKILL during the final save": ("the final save",),
  "SIGKILL during the restore": ("between saves", "the restore"),
}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  rnd = random.Random(args.seed)
  root = pathlib.Path(tempfile.mkdtemp(prefix="fault_matrix-"))
  env = dict(
    os.environ, JAX_COMPILATION_CACHE_DIR=str(root / "jax_cache"), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0"
  )
  env["PYTHONUNBUFFERED"] = "1"
  launcher = faults.Launcher(RING8, env, TOTAL)
  ref = root / "reference"
  launcher.run(ref)
  results: dict[str, list] = {}
  t0 = time.monotonic()
  for name, chain in KILL_TRIALS.items():
    for i in range(args.repeats):
      w = root / f"{len(results)}-{i}"
      try:
        lines = faults.kill_chain(launcher, w, chain, ref)
        ok, note = True, lines[-1]
      except (AssertionError, Exception) as e:  # noqa: BLE001 (a failed trial is a result)
        ok, note = False, f"{type(e).__name__}: {str(e)[:200]}"
      results.setdefault(name, []).append((ok, note))
      print(f"{name} #{i + 1}: {'identical' if ok else 'DIFFERS'} ({note})", flush=True)
  ref_rows = faults.rows(ref)
  for sig in (signal.SIGINT, signal.SIGTERM):
    name = f"{sig.name} mid-run (exit 75)"
    for i in range(args.repeats):
      w = root / f"{sig.name}-{i}"
      after = rnd.randrange(2, TOTAL // LOG_EVERY - 2) * LOG_EVERY
      delay = rnd.uniform(0.0, 0.03)
      p = launcher.start(w)
      faults.kill_when(
        p, lambda w=w, after=after: faults.last_row(w) >= after, sig, armed=faults.training(w), delay_s=delay
      )
      _, err = p.communicate(timeout=faults.TIMEOUT)
      m = re.search(r"received: saved checkpoint \S+ at step (\d+)", err)
      try:
        assert p.returncode == 75 and m, err[-500:]
        step = int(m.group(1))
        assert faults.rows(w) == [r for r in ref_rows if r["step"] <= step]
        launcher.run(w)
        faults.assert_identical(w, ref, TOTAL)
        boundary = step % LOG_EVERY == 0 or step % EVERY == 0
        ok, note = True, f"stopped at step {step} ({'a' if boundary else 'not a'} logging step)"
      except AssertionError as e:
        ok, note = False, str(e)[:200]
      results.setdefault(name, []).append((ok, note))
      print(f"{name} #{i + 1}: {'identical' if ok else 'DIFFERS'} ({note})", flush=True)
  print(f"\n{time.monotonic() - t0:.0f} s; work in {root}\n")
  print("| fault | tried | bit-identical resumes |\n|---|---:|---:|")
  for name, rs in results.items():
    print(f"| {name} | {len(rs)} | {sum(ok for ok, _ in rs)} |")
  total = [ok for rs in results.values() for ok, _ in rs]
  print(f"| **all** | **{len(total)}** | **{sum(total)}** |")
  return 0 if all(total) else 1


if __name__ == "__main__":
  sys.exit(main())
