"""``jgan judge`` in a real headless browser (the system's Chromium driven by Playwright; ``make browser``).

* Scripted evaluators answer a 40-image study (+ 4 attention checks) by keys with known policies, three
  at the same time; the report's rates equal the counts the policies imply (computed here from the
  study's truth, not by jgan), its bootstrap intervals equal an independent numpy bootstrap of the rows
  read from the database with plain sqlite3, and the inattentive evaluator is reported apart.
* kill -9 of the server mid-study: every answer the page had acknowledged is in the database; after a
  restart the reloaded page continues at the next image and the study completes.

The server is a real process (``python -m jgan judge --serve``); waits are on conditions, each with a
hang guard (tests/judge_driver.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from jgan.labs import judge_study
from tests import judge_driver
from tests.test_labs_judge import _reference_interval, prepare, run  # noqa: F401  (run: module fixture)

SCREENSHOTS = os.environ.get("JGAN_JUDGE_SCREENSHOTS", "")  # also save the screenshots there


def _policies(study):
  truth = {r["id"]: r for r in study["images"]}
  check = lambda i: truth[i]["kind"].startswith("check_")
  return {
    # Every study image "real"; the attention checks right.
    "always-real": lambda i: truth[i]["truth"] if check(i) else "real",
    # "fake" when the id is a multiple of 3; the attention checks right.
    "by-id": lambda i: truth[i]["truth"] if check(i) else ("fake" if int(i, 16) % 3 == 0 else "real"),
    # "real" for everything, the noise checks too: 2 of 4 checks wrong -> inattentive.
    "careless": lambda i: "real",
  }


def _screenshot(page, name, tmp_path, **kwargs):
  path = str(tmp_path / name)
  page.screenshot(path=path, **kwargs)
  if SCREENSHOTS:
    page.screenshot(path=os.path.join(SCREENSHOTS, name), **kwargs)
  from PIL import Image

  assert Image.open(path).size[0] >= 600
  return path


def test_scripted_evaluators_answer_by_keys_and_the_report_shows_the_expected_rates(run, tmp_path):  # noqa: F811
  study_dir = prepare(run, "browser_policies", "--n", "40", "--checks", "4")
  study = judge_study.load(study_dir)
  truth = {r["id"]: r for r in study["images"]}
  fakes = [i for i, r in truth.items() if r["kind"] == "fake"]
  reals = [i for i, r in truth.items() if r["kind"] == "real"]
  assert len(fakes) == len(reals) == 20 and len(truth) == 44
  policies = _policies(study)
  server = judge_driver.Server(study_dir)
  shown = {name: [] for name in policies}
  try:
    with judge_driver.chromium() as browser:
      pages = {}
      for name in policies:  # one browser context (own localStorage) per evaluator
        pages[name] = browser.new_context(viewport={"width": 900, "height": 720}).new_page()
        pages[name].goto(server.study_url + f"?name={name}")
      for k in range(len(truth)):  # all three answer at the same time, in turns, without waiting for acks
        for name, page in pages.items():
          if name == "always-real" and k == 5:
            judge_driver.wait_at(page, k)
            _screenshot(page, "judge_study.png", tmp_path)
            assert page.text_content("#progress") == "Image 6 of 44"
          shown[name].append(judge_driver.answer_by_key(page, k, policies[name]))
      for page in pages.values():
        judge_driver.wait_done(page)
        assert page.evaluate("window.jgan.acked") == page.evaluate("window.jgan.shown")
      results = browser.new_page(viewport={"width": 1000, "height": 900})
      results.goto(server.results_url)
      _screenshot(results, "judge_results.png", tmp_path, full_page=True)
      results_text = results.text_content("main")
  finally:
    server.stop()

  rows = judge_driver.db_rows(study_dir)
  ids = {row[1]: row[0] for row in judge_driver.db_rows(study_dir, "evaluators")}  # name -> evaluator id
  assert sorted(ids) == sorted(policies)
  for name, e in ids.items():
    mine = [r for r in rows if r[0] == e]
    assert [r[2] for r in mine] == list(range(44))  # every image once, in the order the page showed them
    assert [r[1] for r in mine] == shown[name] and sorted(shown[name]) == sorted(truth)
    assert all(r[5] == policies[name](r[1]) and r[4] == truth[r[1]]["truth"] for r in mine)
    assert all(r[6] >= 0 for r in mine)
  assert shown["always-real"] != shown["by-id"]  # shuffled per evaluator

  out = subprocess.run(
    [sys.executable, "-m", "jgan", "judge", "--report", study_dir],
    capture_output=True,
    text=True,
    timeout=judge_driver.HANG_S,
    cwd=judge_driver.ROOT,
  )
  assert out.returncode == 0, out.stderr[-3000:]
  rep = json.load(open(os.path.join(study_dir, "report.json")))
  by = {r["name"]: r for r in rep["rows"]}
  # The known policy: fakes 100 % taken for real, reals 0 % mistaken, in the report and in its printout.
  a = by["always-real"]
  assert (a["fakes_judged_real"], a["reals_judged_fake"], a["error"], a["attentive"]) == (1.0, 0.0, 0.5, True)
  assert f"| {ids['always-real']} | always-real | 44/44 | 50.0 % | 100.0 % | 0.0 % | 4/4 |" in out.stdout
  b_fakes_real = sum(int(i, 16) % 3 != 0 for i in fakes)
  b_reals_fake = sum(int(i, 16) % 3 == 0 for i in reals)
  assert by["by-id"]["fakes_judged_real"] == b_fakes_real / 20 and by["by-id"]["reals_judged_fake"] == b_reals_fake / 20
  assert not by["careless"]["attentive"] and by["careless"]["checks_correct"] == 2
  assert rep["evaluators"] == 2 and rep["inattentive"] == 1
  assert out.stdout.split("## Inattentive evaluators")[1].count("careless") == 1
  hype = rep["hype"]
  assert hype["fakes"]["rate"] == pytest.approx((20 + b_fakes_real) / 40, abs=1e-15)
  assert hype["reals"]["rate"] == pytest.approx(b_reals_fake / 40, abs=1e-15)
  assert hype["overall"]["rate"] == pytest.approx((20 + b_fakes_real + b_reals_fake) / 80, abs=1e-15)
  # The bootstrap intervals against numpy, from the stored rows of the two attentive evaluators.
  stored = [dict(evaluator=r[0], image=r[1], answer=r[5], truth=r[4]) for r in rows]
  attentive = [ids["always-real"], ids["by-id"]]
  for key, images in (("overall", fakes + reals), ("fakes", fakes), ("reals", reals)):
    ref = _reference_interval(stored, attentive, images, study["seed"], 2000)
    np.testing.assert_allclose(hype[key]["ci"], ref, rtol=0, atol=1e-12)
    assert f"[{100 * ref[0]:.1f} %, {100 * ref[1]:.1f} %]" in out.stdout
  assert hype["fakes"]["ci"][0] < hype["fakes"]["ci"][1]  # two evaluators who disagree: a real interval
  # The results page shows the same table.
  assert "always-real" in results_text and f"{100 * hype['overall']['rate']:.1f} %" in results_text
  assert os.path.isfile(os.path.join(study_dir, "most_convincing.png"))


def test_kill_9_mid_study_keeps_every_acknowledged_answer_and_the_evaluator_continues(run):  # noqa: F811
  study_dir = prepare(run, "browser_kill", "--n", "20", "--checks", "2")
  total = 22
  policy = lambda i: "fake" if int(i, 16) % 2 else "real"
  server = judge_driver.Server(study_dir)
  try:
    with judge_driver.chromium() as browser:
      page = browser.new_page()
      page.goto(server.study_url)
      for k in range(7):
        judge_driver.answer_by_key(page, k, policy)
        judge_driver.wait_acked(page, k + 1)
      in_flight = judge_driver.answer_by_key(page, 7, policy)  # the 8th answer is on its way ...
      server.kill9()  # ... when the server dies
      acked = page.evaluate("window.jgan.acked")
      rows = judge_driver.db_rows(study_dir)
      stored = [r[1] for r in rows]
      assert len(acked) in (7, 8) and stored[: len(acked)] == acked  # every acknowledged answer, in order
      assert set(stored) - set(acked) <= {in_flight} and [r[2] for r in rows] == list(range(len(rows)))
      assert all(r[5] == policy(r[1]) for r in rows)

      server = judge_driver.Server(study_dir, port=server.port)
      page.reload()
      resumed = judge_driver.wait_at(page, len(rows))  # continues after what is stored ...
      if in_flight in stored:
        assert resumed not in stored
      else:
        assert resumed == in_flight  # ... which is the image the lost answer was for
      assert page.text_content("#progress") == f"Image {len(rows) + 1} of {total}"
      for k in range(len(rows), total):
        judge_driver.answer_by_key(page, k, policy)
      judge_driver.wait_done(page)
  finally:
    server.stop()
  final = judge_driver.db_rows(study_dir)
  assert len({r[0] for r in final}) == 1 and len(judge_driver.db_rows(study_dir, "evaluators")) == 1
  assert [r[2] for r in final] == list(range(total)) and len({r[1] for r in final}) == total
  assert final[: len(rows)] == rows  # what was stored before the crash is unchanged


def test_hype_time_shows_each_image_for_its_staircase_exposure_then_masks_it(run):  # noqa: F811
  study_dir = prepare(run, "browser_time", "--n", "8", "--checks", "2", "--mode", "time")
  study = judge_study.load(study_dir)
  truth = {r["id"]: r for r in study["images"]}
  server = judge_driver.Server(study_dir)
  try:
    with judge_driver.chromium() as browser:
      page = browser.new_page()
      page.goto(server.study_url)
      for k in range(len(truth)):
        image = judge_driver.wait_at(page, k)
        # The image goes behind the mask once its exposure is over; the answer comes after that.
        page.wait_for_function(
          "() => document.getElementById('image').hidden && !document.getElementById('mask').hidden",
          timeout=judge_driver.HANG_S * 1000,
        )
        right = truth[image]["truth"] == "real"
        page.keyboard.press("r" if right != (k % 3 == 0) else "f")  # every third answer wrong
      judge_driver.wait_done(page)
  finally:
    server.stop()
  rows = judge_driver.db_rows(study_dir)
  with contextlib.closing(sqlite3.connect(os.path.join(study_dir, "answers.sqlite"))) as db:
    exposures = [r[0] for r in db.execute("SELECT exposure_ms FROM answers ORDER BY position")]
  # The staircase by hand over the stored answers: 520 ms, 3 right in a row -> 30 ms shorter, wrong -> longer.
  level, streak = 520, 0
  for (_, _, _, kind, t, answer, _, _), exposure in zip(rows, exposures):
    if kind.startswith("check_"):
      assert exposure == 1000
      continue
    assert exposure == level
    if answer == t:
      streak += 1
      if streak == 3:
        level, streak = level - 30, 0
    else:
      level, streak = level + 30, 0
  assert len(set(exposures) - {1000}) >= 2  # the staircase moved
