"""``jgan judge`` without a browser: the study's images, orders and staircase, the HYPE statistics against
hand counts and an independent numpy bootstrap, the store under concurrent answers, the HTTP server's
answers to bad requests (a real server process; each bad request writes nothing), the command line's errors.

The browser tests (a scripted evaluator in Chromium, kill -9 mid-study) are in test_labs_judge_browser.py.
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading

import numpy as np
import pytest

from jgan.labs import judge_stats, judge_store, judge_study
from tests import faults, judge_driver
from tests.helpers import load_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """A 10-step smoke run (DCGAN on mnist5k), trained once per test session; studies go in its judge/."""
  from jgan import train

  def make(directory):
    config = load_config("smoke")
    config.parallel.num_devices = 1
    config.data.data_dir = str(faults.shared_dir(tmp_path_factory) / "judge_tfds")
    train.train_and_evaluate(config, str(directory / "run"))
    return {"run": str(directory / "run"), "data_dir": config.data.data_dir}

  return faults.once(tmp_path_factory, "judge_smoke_run", make)


def prepare(run, name: str, *extra: str) -> str:
  """A new study ``name`` of the smoke run through the command line (``--prepare_only``); its directory."""
  from jgan import cli

  args = ["judge", "--workdir", run["run"], "--study", name, "--prepare_only", "--no_progress", *extra]
  assert cli.main(args) == 0
  return os.path.join(run["run"], "judge", name)


# ---------------------------------------------------------------- the study's images, orders, staircase


def test_build_images_holds_half_fakes_half_reals_and_the_checks():
  rng = np.random.default_rng(0)
  fakes = rng.uniform(-1, 1, (5, 4, 4, 1)).astype(np.float32)
  reals = rng.uniform(-1, 1, (7, 4, 4, 1)).astype(np.float32)  # 5 study reals + 2 real checks
  records, pixels = judge_study.build_images(fakes, reals, num_checks=4, seed=3)
  kinds = [r["kind"] for r in records]
  assert sorted(kinds) == sorted(["fake"] * 5 + ["real"] * 5 + ["check_fake"] * 2 + ["check_real"] * 2)
  assert all(r["truth"] == ("fake" if r["kind"] in ("fake", "check_fake") else "real") for r in records)
  assert len({r["id"] for r in records}) == 14 and all(len(r["id"]) == 8 and int(r["id"], 16) >= 0 for r in records)
  u8 = lambda x: np.clip(np.round((x + 1) * 127.5), 0, 255).astype(np.uint8)
  for r, image in zip(records, pixels):
    if r["kind"] == "fake":
      np.testing.assert_array_equal(image, u8(fakes[r["source"]]))
    elif r["kind"] in ("real", "check_real"):
      np.testing.assert_array_equal(image, u8(reals[r["source"]]))
      assert (r["source"] >= 5) == (r["kind"] == "check_real")  # the checks are the reals after the study's
  again, _ = judge_study.build_images(fakes, reals, num_checks=4, seed=3)
  assert again == records
  assert judge_study.build_images(fakes, reals, num_checks=4, seed=4)[0] != records


def test_each_evaluator_has_an_order_of_their_own_that_survives_restarts():
  study = {"seed": 0, "images": [{"id": f"{i:08x}"} for i in range(30)]}
  a, b = judge_study.evaluator_order(study, "aaaa"), judge_study.evaluator_order(study, "bbbb")
  assert sorted(a) == sorted(b) == sorted(r["id"] for r in study["images"])
  assert a != b and a == judge_study.evaluator_order(study, "aaaa")


def test_hype_time_staircase_three_down_one_up():
  """Hand-run staircase: start 520 ms, 30 ms levels, 3 correct in a row -> one level shorter, an error ->
  one level longer, clipped to 100..1000 ms."""
  f = judge_study.exposure_ms
  assert judge_study.EXPOSURES_MS[0] == 100 and judge_study.EXPOSURES_MS[-1] == 1000
  assert f([]) == 520
  assert f([True, True]) == 520 and f([True] * 3) == 490 and f([True] * 5) == 490 and f([True] * 6) == 460
  assert f([False]) == 550 and f([True, True, False]) == 550 and f([True, True, False, True, True, True]) == 520
  assert f([True] * 300) == 100 and f([False] * 50) == 1000 and f([False] * 50 + [True] * 3) == 970


# ---------------------------------------------------------------- statistics


def _synthetic(seed=0):
  """A study of 6 fakes, 6 reals and 4 checks and answer rows of 4 evaluators with known policies."""
  kinds = ["fake"] * 6 + ["real"] * 6 + ["check_fake"] * 2 + ["check_real"] * 2
  images = [{"id": f"{i:08x}", "kind": k, "truth": judge_study.TRUTH[k]} for i, k in enumerate(kinds)]
  study = {"seed": seed, "mode": "infinite", "images": images, "n": 12, "num_checks": 4, "workdir": "w", "step": 1}
  study.update(data="mnist5k", split="test")
  policies = {
    "e_real": lambda r, i: "real" if not r["kind"].startswith("check") else r["truth"],  # every study image real
    "e_fake": lambda r, i: "fake" if not r["kind"].startswith("check") else r["truth"],
    "e_half": lambda r, i: ("real" if i % 2 else "fake") if not r["kind"].startswith("check") else r["truth"],
    "e_lazy": lambda r, i: "real",  # also the noise checks: 2 of 4 checks wrong -> inattentive
  }
  rows = []
  for e, policy in policies.items():
    for i, r in enumerate(images):
      if e == "e_half" and i == 3:
        continue  # one unanswered fake: unbalanced data
      rows.append(dict(evaluator=e, image=r["id"], position=i, kind=r["kind"], truth=r["truth"]))
      rows[-1].update(answer=policy(r, i), response_ms=100.0 * (i + 1), exposure_ms=None, ts=0.0)
  return study, rows


def _reference_interval(rows, evaluators, images, seed, num):
  """The documented bootstrap, written independently: resample evaluators then images with replacement,
  pool every answer of a drawn evaluator on a drawn image once per pair, error rate of the pool."""
  wrong = {(r["evaluator"], r["image"]): r["answer"] != r["truth"] for r in rows}
  E, I = sorted(evaluators), sorted(images)
  rng = np.random.default_rng(seed)
  reps = []
  for _ in range(num):
    es = rng.integers(0, len(E), len(E))
    ims = rng.integers(0, len(I), len(I))
    pool = [wrong[(E[a], I[c])] for a in es for c in ims if (E[a], I[c]) in wrong]
    if pool:
      reps.append(np.mean(pool))
  return np.percentile(reps, [2.5, 97.5])


def test_report_rates_match_hand_counts_and_inattentive_evaluators_are_apart():
  study, rows = _synthetic()
  rep = judge_stats.report(study, rows, {"e_real": "always real"}, num=300)
  by = {r["evaluator"]: r for r in rep["rows"]}
  assert (by["e_real"]["fakes_judged_real"], by["e_real"]["reals_judged_fake"], by["e_real"]["error"]) == (1, 0, 0.5)
  assert (by["e_fake"]["fakes_judged_real"], by["e_fake"]["reals_judged_fake"], by["e_fake"]["error"]) == (0, 1, 0.5)
  # e_half: odd positions "real". Fakes at 0..5 without 3: real at 1, 5 -> 2/5; reals at 6..11: fake at 6, 8, 10.
  assert by["e_half"]["fakes_judged_real"] == pytest.approx(2 / 5) and by["e_half"]["reals_judged_fake"] == 0.5
  assert by["e_half"]["error"] == pytest.approx(5 / 11) and by["e_half"]["answered"] == 15
  assert not by["e_lazy"]["attentive"] and by["e_lazy"]["checks_correct"] == 2 and by["e_real"]["checks_correct"] == 4
  assert rep["evaluators"] == 3 and rep["inattentive"] == 1 and by["e_real"]["name"] == "always real"
  # Pooled over the three attentive evaluators (e_lazy left out): fakes 6 + 0 + 2 of 17, reals 0 + 6 + 3 of 18.
  assert rep["hype"]["fakes"]["rate"] == pytest.approx(8 / 17) and rep["hype"]["fakes"]["answers"] == 17
  assert rep["hype"]["reals"]["rate"] == pytest.approx(9 / 18)
  assert rep["hype"]["overall"]["rate"] == pytest.approx(17 / 35)
  for key, subset in judge_stats.SUBSETS.items():
    images = [r["id"] for r in study["images"] if r["kind"] in subset]
    ref = _reference_interval(rows, ["e_real", "e_fake", "e_half"], images, study["seed"], 300)
    np.testing.assert_allclose(rep["hype"][key]["ci"], ref, rtol=0, atol=1e-12)
  # The most convincing fakes first: fake 1 and 5 (2 of 3 say real), then the others by id.
  assert [f["id"] for f in rep["fakes_ranked"][:2]] == ["00000001", "00000005"]
  assert rep["fakes_ranked"][0]["judged_real"] == 2 and rep["fakes_ranked"][0]["judgements"] == 3
  text = judge_stats.format_report(rep, "study")
  assert "| e_real | always real | 16/16 | 50.0 % | 100.0 % | 0.0 % | 4/4 |" in text
  assert "## Inattentive evaluators (left out)" in text and "| e_lazy |" in text.split("Inattentive")[1]


def test_hype_time_threshold_is_the_mean_modal_exposure():
  study, rows = _synthetic()
  study["mode"] = "time"
  exposures = {"e_real": [490, 490, 520], "e_fake": [700, 730, 730], "e_half": [100, 130]}
  for e, xs in exposures.items():
    study_rows = [r for r in rows if r["evaluator"] == e and not r["kind"].startswith("check")]
    for k, r in enumerate(study_rows):
      r["exposure_ms"] = xs[k % len(xs)]
  rep = judge_stats.report(study, rows, {}, num=200)
  modes = {r["evaluator"]: r["modal_exposure_ms"] for r in rep["rows"]}
  assert modes["e_real"] == 490 and modes["e_fake"] == 730 and modes["e_half"] == 100  # ties: the shortest
  assert rep["hype_time_ms"]["mean"] == pytest.approx((490 + 730 + 100) / 3)
  lo, hi = rep["hype_time_ms"]["ci"]
  assert 100 <= lo <= hi <= 730


# ---------------------------------------------------------------- the study of a run, the store


def test_prepared_study_holds_the_generators_fakes_and_held_out_reals(run):
  """The PNGs against independent sources: the fakes are ``sample(key(seed), n/2)`` of the run's EMA
  generator, the reals and real checks the first test-split digits of ``permutation(seed)``, raw from TFDS."""
  import jax
  import tensorflow_datasets as tfds

  from jgan import resume

  study_dir = prepare(run, "contents", "--n", "10", "--checks", "4", "--seed", "2")
  study = judge_study.load(study_dir)
  assert study["n"] == 10 and study["image_shape"] == [28, 28, 1] and study["scale"] == 12 and study["step"] == 10
  assert len(os.listdir(os.path.join(study_dir, "images"))) == 14
  fakes = np.asarray(resume.load_generator(run["run"])(jax.random.key(2), 5))
  u8 = np.clip(np.round((fakes + 1) * 127.5), 0, 255).astype(np.uint8)
  src = tfds.data_source("mnist5k", split="test", data_dir=run["data_dir"])
  order = np.random.default_rng(2).permutation(len(src))
  for r in study["images"]:
    image = judge_study.read_image(study_dir, r["id"])
    if r["kind"] == "fake":
      np.testing.assert_array_equal(image, u8[r["source"]])
    elif r["kind"] in ("real", "check_real"):
      np.testing.assert_array_equal(image, np.asarray(src[int(order[r["source"]])]["image"]))
    else:
      assert image.std() > 50  # uniform noise
  assert len({(r["kind"], r["source"]) for r in study["images"]}) == 14


def test_store_takes_concurrent_evaluators_and_one_of_two_racing_answers(tmp_path):
  study, _ = _synthetic()
  store = judge_store.Store(str(tmp_path), study)
  evaluators = [store.create_evaluator(f"e{k}") for k in range(6)]

  def answer_all(e):
    for _ in range(len(study["images"])):
      at = store.next(e)
      store.record(e, at.image, "real", 10.0)

  threads = [threading.Thread(target=answer_all, args=(e,)) for e in evaluators]
  for t in threads:
    t.start()
  for t in threads:
    t.join(timeout=judge_driver.HANG_S)
  rows = judge_driver.db_rows(str(tmp_path))
  assert len(rows) == 6 * 16
  for e in evaluators:
    mine = [r for r in rows if r[0] == e]
    assert [r[2] for r in mine] == list(range(16)) and [r[1] for r in mine] == store.order(e)
  # Two requests answering the same image at once: exactly one is stored, the other is refused (409).
  e = store.create_evaluator()
  image = store.next(e).image
  outcomes = []
  barrier = threading.Barrier(2)

  def race():
    barrier.wait()
    try:
      store.record(e, image, "fake", 5.0)
      outcomes.append(200)
    except judge_store.Rejected as err:
      outcomes.append(err.status)

  racers = [threading.Thread(target=race) for _ in range(2)]
  for t in racers:
    t.start()
  for t in racers:
    t.join(timeout=judge_driver.HANG_S)
  assert sorted(outcomes) == [200, 409]
  mine = [r for r in judge_driver.db_rows(str(tmp_path)) if r[0] == e]
  assert len(mine) == 1 and mine[0][1:3] == (image, 0) and mine[0][5:7] == ("fake", 5.0)


# ---------------------------------------------------------------- the server against bad requests


@pytest.fixture(scope="module")
def served(run):
  study_dir = prepare(run, "bad_requests", "--n", "6", "--checks", "2")
  server = judge_driver.Server(study_dir)
  yield study_dir, server
  server.stop()


def test_bad_requests_get_their_status_and_write_nothing(served):
  """Each bad request of the table gets its status, and neither answers nor evaluators change."""
  study_dir, server = served
  study = judge_study.load(study_dir)
  token, report = study["token"], study["report_token"]
  s, r = f"/s/{token}", f"/r/{report}"
  port = server.port
  js = {"Content-Type": "application/json"}

  def post(path, body, headers=js):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return judge_driver.request(port, "POST", path, data, headers)

  status, body = post(f"{s}/api/evaluators", {"name": "tester"})
  assert status == 200
  evaluator = json.loads(body)["evaluator"]
  first = json.loads(server.get(f"{s}/api/next?evaluator={evaluator}")[1])["image"]
  order = judge_study.evaluator_order(study, evaluator)
  assert order[0] == first
  good = {"evaluator": evaluator, "image": first, "answer": "real", "response_ms": 812.5}
  assert post(f"{s}/api/answer", good)[0] == 200  # the one answer this test stores
  second = order[1]
  ok = dict(good, image=second)
  get = lambda path: judge_driver.request(port, "GET", path)
  cases = {
    "no token: /": (lambda: get("/"), 403),
    "no token: /s/": (lambda: get("/s/"), 403),
    "no token: answer": (lambda: post("/s//api/answer", ok), 403),
    "no token: study.json": (lambda: get("/study.json"), 403),
    "wrong token: page": (lambda: get("/s/" + "A" * len(token) + "/"), 403),
    "wrong token: answer": (lambda: post(f"/s/{token[:-1]}x/api/answer", ok), 403),
    "wrong token: image": (lambda: get(f"/s/{token[:-1]}x/img/{second}"), 403),
    "study token on results": (lambda: get(f"/r/{token}/"), 403),
    "results token on study": (lambda: post(f"/s/{report}/api/answer", ok), 403),
    "token without slash": (lambda: get(s), 403),
    "unknown image: GET": (lambda: get(f"{s}/img/deadbeef"), 404),
    "unknown image: answer": (lambda: post(f"{s}/api/answer", dict(ok, image="deadbeef")), 404),
    "unknown evaluator": (lambda: post(f"{s}/api/answer", dict(ok, evaluator="0" * 16)), 404),
    "duplicate answer": (lambda: post(f"{s}/api/answer", good), 409),
    "duplicate, other answer": (lambda: post(f"{s}/api/answer", dict(good, answer="fake")), 409),
    "not the current image": (lambda: post(f"{s}/api/answer", dict(ok, image=order[2])), 409),
    "malformed: not JSON": (lambda: post(f"{s}/api/answer", b"{evaluator: 1"), 400),
    "malformed: a list": (lambda: post(f"{s}/api/answer", [ok]), 400),
    "malformed: missing key": (lambda: post(f"{s}/api/answer", {k: v for k, v in ok.items() if k != "answer"}), 400),
    "malformed: extra key": (lambda: post(f"{s}/api/answer", dict(ok, truth="real")), 400),
    "malformed: answer": (lambda: post(f"{s}/api/answer", dict(ok, answer="maybe")), 400),
    "malformed: negative time": (lambda: post(f"{s}/api/answer", dict(ok, response_ms=-1)), 400),
    "malformed: time as text": (lambda: post(f"{s}/api/answer", dict(ok, response_ms="5")), 400),
    "malformed: NaN time": (lambda: post(f"{s}/api/answer", json.dumps(dict(ok, response_ms=math.nan)).encode()), 400),
    "malformed: bool time": (lambda: post(f"{s}/api/answer", dict(ok, response_ms=True)), 400),
    "malformed: evaluator name": (lambda: post(f"{s}/api/evaluators", {"name": "x" * 65}), 400),
    "not JSON content type": (lambda: post(f"{s}/api/answer", ok, {"Content-Type": "text/plain"}), 415),
    "10 MB body": (lambda: judge_driver.post_large(port, f"{s}/api/answer", 10 << 20), 413),
    "10 MB chunked body": (lambda: judge_driver.post_large(port, f"{s}/api/answer", 10 << 20, chunked=True), 413),
    "10 MB new evaluator": (lambda: judge_driver.post_large(port, f"{s}/api/evaluators", 10 << 20), 413),
    "traversal: ../ raw": (lambda: get(f"{s}/img/../../study.json"), 403),
    "traversal: %2e%2e%2f": (lambda: get(f"{s}/img/%2e%2e%2f%2e%2e%2fstudy.json"), 403),
    "traversal: ..%2F db": (lambda: get(f"{s}/img/..%2Fanswers.sqlite"), 403),
    "traversal: .. as id": (lambda: get(f"{s}/img/.."), 404),
    "traversal: absolute": (lambda: get(f"{s}/img//etc/passwd"), 403),
    "traversal: id.png": (lambda: get(f"{s}/img/{second}.png"), 404),
    "wrong method": (lambda: get(f"{s}/api/answer"), 403),
    "wrong method: DELETE": (lambda: judge_driver.request(port, "DELETE", f"{s}/api/answer"), 403),
  }
  before = (judge_driver.db_rows(study_dir), judge_driver.db_rows(study_dir, "evaluators"))
  assert len(before[0]) == 1 and len(before[1]) == 1
  got = {}
  for name, (send, _) in cases.items():
    reply = send()
    got[name] = reply[0]
    if isinstance(reply[1], bytes):
      assert b"report_token" not in reply[1] and b"SQLite" not in reply[1], name
    after = (judge_driver.db_rows(study_dir), judge_driver.db_rows(study_dir, "evaluators"))
    assert after == before, f"{name} wrote something"
  assert got == {name: want for name, (_, want) in cases.items()}
  # The refused requests left the evaluator where they were: the second image is still next, and takes an answer.
  assert json.loads(server.get(f"{s}/api/next?evaluator={evaluator}")[1])["image"] == second
  assert post(f"{s}/api/answer", ok)[0] == 200
  status, page = get(f"{s}/")
  assert status == 200 and b"Real or fake?" in page
  status, page = get(f"{r}/")
  assert status == 200 and b"study bad_requests" in page and b"| tester |" not in page and b"<td>tester</td>" in page


# ---------------------------------------------------------------- the command line's errors


def _error_line(capsys) -> str:
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("error: "), err
  return err[0]


def test_command_line_errors_name_the_value_before_any_work(run, tmp_path, capsys, monkeypatch):
  from jgan import cli

  prepared = prepare(run, "cli_errors", "--n", "4", "--checks", "0")
  capsys.readouterr()  # what preparing printed ("wrote study ...")
  calls = []
  monkeypatch.setattr(judge_study, "prepare", lambda *a, **k: calls.append(a))  # no bad input reaches it
  (tmp_path / "empty_run").mkdir()
  (tmp_path / "empty_run" / "config.json").write_text(json.dumps({"data": {"name": "mnist5k"}}))
  busy = socket.socket()
  busy.bind(("127.0.0.1", 0))
  busy.listen(1)
  taken = str(busy.getsockname()[1])
  w = ["judge", "--workdir", run["run"], "--no_progress"]
  cases = [
    (["judge", "--workdir", str(tmp_path / "nowhere")], "nowhere' does not exist; expected a directory"),
    (["judge", "--workdir", str(tmp_path / "empty_run")], "holds no checkpoint"),
    (w + ["--data", "mnist6k"], "'mnist6k' is not an image dataset; valid choices: celeb_a, cifar10"),
    (w + ["--data", "ring8"], "'ring8' is not an image dataset"),
    (w + ["--n", "7"], "--n: must be even, got 7"),
    (w + ["--n", "0"], "--n: must be an integer in [2, 100000], got 0"),
    (w + ["--checks", "3"], "--checks: must be even, got 3"),
    (w + ["--mode", "fast"], "--mode: unknown mode 'fast'; valid choices: infinite, time"),
    (w + ["--study", "../x"], "--study '../x' must be a plain directory name"),
    (w + ["--study", "cli_errors"], "cli_errors' already exists; serve it with `jgan judge --serve"),
    (w + ["--port", taken, "--study", "new"], f"cannot listen on --host '127.0.0.1' --port {taken}"),
    (w + ["--port", "70000", "--study", "new"], "--port: must be an integer in [0, 65535], got 70000"),
    (w + ["--host", "192.0.2.1", "--study", "new"], "cannot listen on --host '192.0.2.1'"),
    (["judge", "--serve", str(tmp_path)], "is not a judge study (no study.json)"),
    (["judge", "--serve", str(tmp_path / "nowhere")], "nowhere' does not exist; expected a directory"),
    (["judge", "--serve", prepared, "--port", taken], f"--port {taken}"),
    (["judge", "--report", str(tmp_path)], "is not a judge study"),
    (["judge", "--report", prepared, "--bootstrap", "0"], "--bootstrap: must be an integer >= 1, got 0"),
    (["judge", "--n", "4"], "one of the arguments --workdir --serve --report is required"),
    (["judge", "--serve", prepared, "--report", prepared], "not allowed with argument"),
    (w + ["--bogus"], "unrecognized arguments: --bogus"),
  ]
  for argv, message in cases:
    assert cli.main(argv) == 2, argv
    assert message in _error_line(capsys), argv
  busy.close()
  assert not calls and not os.path.exists(os.path.join(run["run"], "judge", "new"))
  monkeypatch.undo()
  # A split the data set does not have is found when the data is read: still one line, nothing left behind.
  assert cli.main(w + ["--data", "mnist5k:validation", "--study", "bad_split", "--prepare_only"]) == 2
  assert "validation" in _error_line(capsys) and not os.path.exists(os.path.join(run["run"], "judge", "bad_split"))
