"""``make stress``: the fault, checkpoint and multi-process tests, repeated while busy loops load the cores.

    python -m tests.stress [--count 5] [--first_save_count 20] [--busy 2] [--workers 2] [PYTEST_ARGS ...]

Starts ``--busy`` processes that spin forever (the load of a shared CI machine), runs
tests/test_faults.py, tests/test_checkpoint.py and tests/test_multihost.py ``--count`` times each
(pytest-repeat, ``--workers`` pytest-xdist workers), then the first-save kill
(``test_faults.py::test_sigkill_during_the_first_save_then_resume_is_bit_identical``: a SIGKILL during
the first checkpoint, resume, compare bit for bit) ``--first_save_count`` times, and prints per test how
many repeats passed. Exit status 0 only if every repeat of every test passed. Not part of ``make test``:
with the defaults it takes about an hour on a 2-core machine.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = ("tests/test_faults.py", "tests/test_checkpoint.py", "tests/test_multihost.py")
FIRST_SAVE = "tests/test_faults.py::test_sigkill_during_the_first_save_then_resume_is_bit_identical"
# pytest-repeat appends "<i>-<count>" to the test's parameters: "t[1-5]", "t[param-1-5]".
REPEAT = re.compile(r"(\[(.*?)-?\d+-\d+\])$")


def outcomes(junit_xml: str) -> dict[str, collections.Counter]:
  """``{test id without the repeat suffix: Counter(passed=, failed=, skipped=)}`` from a JUnit XML report."""
  out: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
  for case in ET.parse(junit_xml).getroot().iter("testcase"):
    name = case.get("name", "")
    m = REPEAT.search(name)
    if m:
      name = name[: m.start()] + (f"[{m.group(2)}]" if m.group(2) else "")
    test = f"{case.get('classname', '')}::{name}"
    kinds = {child.tag for child in case}
    kind = "failed" if kinds & {"failure", "error"} else "skipped" if "skipped" in kinds else "passed"
    out[test][kind] += 1
  return out


def run(tests: list[str], count: int, workers: int, extra: list[str], report: str) -> int:
  """Runs ``tests`` ``count`` times each under pytest; returns pytest's exit status."""
  args = [sys.executable, "-m", "pytest", *tests, f"--count={count}", "-p", "no:cacheprovider", "-q"]
  args += [f"--junitxml={report}", "-o", "junit_family=xunit2", *extra]
  if workers > 1:
    args += ["-n", str(workers)]
  print("$", " ".join(args), flush=True)
  return subprocess.call(args, cwd=ROOT)


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m tests.stress", description=__doc__.split("\n\n")[0])
  p.add_argument("--count", type=int, default=5, help="repeats of every fault, checkpoint and multihost test")
  p.add_argument("--first_save_count", type=int, default=20, help="repeats of the first-save kill")
  p.add_argument("--busy", type=int, default=2, help="busy-loop processes loading the cores meanwhile")
  p.add_argument("--workers", type=int, default=2, help="pytest-xdist workers")
  args, extra = p.parse_known_args(argv)
  for name in ("count", "first_save_count", "workers"):
    if getattr(args, name) < 1:
      p.error(f"--{name}={getattr(args, name)}: must be at least 1")
  if args.busy < 0:
    p.error(f"--busy={args.busy}: must be at least 0")
  busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
  results: dict[str, collections.Counter] = {}
  try:
    with tempfile.TemporaryDirectory() as tmp:
      status = 0
      for tests, count, name in ((list(FILES), args.count, "all"), ([FIRST_SAVE], args.first_save_count, "first")):
        report = os.path.join(tmp, f"{name}.xml")
        rc = run(tests, count, args.workers, extra, report)
        status |= rc
        if not os.path.exists(report):  # pytest was killed or crashed before writing its report
          print(f"pytest ended with status {rc} and no report: the counts below lack the {name!r} round", flush=True)
          status |= 1
          continue
        for test, c in outcomes(report).items():
          results.setdefault(test, collections.Counter()).update(c)
  finally:
    for b in busy:
      b.kill()
      b.wait()
  width = max(map(len, results), default=10)
  print(f"\n{'test':<{width}}  passed  failed  skipped   (under {args.busy} busy-loop processes)")
  for test in sorted(results):
    c = results[test]
    print(f"{test:<{width}}  {c['passed']:>6}  {c['failed']:>6}  {c['skipped']:>7}")
  total = sum(results.values(), collections.Counter())
  print(f"{'all':<{width}}  {total['passed']:>6}  {total['failed']:>6}  {total['skipped']:>7}")
  return 0 if status == 0 and total["failed"] == 0 else 1


if __name__ == "__main__":
  sys.exit(main())
