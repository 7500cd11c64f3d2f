"""HYPE statistics of a study's answers: error rates, bootstrap intervals, attention, per-evaluator rows.

**HYPE-infinity** (Zhou et al. 2019) is the evaluators' error rate on the study images (attention
checks excluded), pooled over answers::

    overall = (fakes judged real + reals judged fake) / all answers      50 %: indistinguishable
    fakes   = fakes judged real / answers on fakes                         100 %: every fake passes
    reals   = reals judged fake / answers on reals

**Attention**: an evaluator who answered attention checks and got fewer than :data:`ATTENTION_PASS` of
them right is *inattentive*: their answers are left out of the rates and they are reported apart.

**Bootstrap** (the paper's: resampling evaluators and images). For each of the three rates, with its
own ``rng = np.random.default_rng(seed)``, its attentive evaluators E (sorted ids) and its images I
(sorted ids of the study images of that rate: all, fakes or reals), draw ``B`` times, in this order,
``e = rng.integers(0, |E|, |E|)`` then ``i = rng.integers(0, |I|, |I|)``: the replicate pools every
answer of a drawn evaluator on a drawn image, each counted once per (evaluator draw, image draw) pair,
and its rate is errors / answers in that pool (a replicate with no answer is dropped). The interval is
``np.percentile(replicates, [2.5, 97.5])`` (linear interpolation).

**HYPE-time**: an evaluator's threshold is the modal exposure of their study answers (the shortest of
tied modes); the study's is the mean over attentive evaluators, with a bootstrap over evaluators only
(the staircase ties an evaluator's exposures to their own answer history, so images are not resampled).
"""

from __future__ import annotations

import collections
import os
from typing import Any

import numpy as np

from jgan.labs import judge_study

ATTENTION_PASS = 0.75  # fraction of attention checks an attentive evaluator answers correctly
BOOTSTRAP = 2000
LEVEL = 95.0
SUBSETS = {"overall": ("fake", "real"), "fakes": ("fake",), "reals": ("real",)}


def attention(rows: list[dict]) -> dict[str, tuple[int, int]]:
  """``{evaluator: (attention checks answered correctly, attention checks answered)}`` of answer rows."""
  out: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
  for r in rows:
    counts = out[r["evaluator"]]  # every evaluator with an answer gets an entry
    if r["kind"].startswith("check_"):
      counts[0] += r["answer"] == r["truth"]
      counts[1] += 1
  return {e: (c[0], c[1]) for e, c in out.items()}


def is_attentive(correct: int, answered: int) -> bool:
  """Whether checks ``correct`` of ``answered`` pass (no check answered yet passes)."""
  return answered == 0 or correct / answered >= ATTENTION_PASS


def error_matrix(rows: list[dict], evaluators: list[str], images: list[str]) -> tuple[np.ndarray, np.ndarray]:
  """``(errors, answered)``: float64 ``[E, I]`` 1 where the evaluator's answer on the image was wrong,
  and bool ``[E, I]`` where they answered it (rows of other evaluators or images are ignored)."""
  e_index = {e: k for k, e in enumerate(evaluators)}
  i_index = {i: k for k, i in enumerate(images)}
  errors = np.zeros((len(evaluators), len(images)))
  answered = np.zeros((len(evaluators), len(images)), bool)
  for r in rows:
    if r["evaluator"] in e_index and r["image"] in i_index:
      errors[e_index[r["evaluator"]], i_index[r["image"]]] = r["answer"] != r["truth"]
      answered[e_index[r["evaluator"]], i_index[r["image"]]] = True
  return errors, answered


def bootstrap(errors: np.ndarray, answered: np.ndarray, num: int = BOOTSTRAP, seed: int = 0) -> np.ndarray:
  """The bootstrap replicates of the pooled error rate (module docstring): float64 ``[<= num]`` in [0, 1].

  ``errors``/``answered`` as :func:`error_matrix` returns them; evaluators and images are resampled
  with replacement, evaluators first, with ``np.random.default_rng(seed)``.
  """
  rng = np.random.default_rng(seed)
  n_e, n_i = errors.shape
  wrong = errors * answered
  mask = answered.astype(np.float64)
  out = []
  for _ in range(num):
    ce = np.bincount(rng.integers(0, n_e, n_e), minlength=n_e).astype(np.float64)
    ci = np.bincount(rng.integers(0, n_i, n_i), minlength=n_i).astype(np.float64)
    total = ce @ mask @ ci
    if total > 0:
      out.append(ce @ wrong @ ci / total)
  return np.asarray(out)


def interval(replicates: np.ndarray, level: float = LEVEL) -> list[float]:
  """The percentile interval ``[lo, hi]`` holding ``level`` % of ``replicates`` (NaNs if there are none)."""
  if not len(replicates):
    return [float("nan"), float("nan")]
  tail = (100.0 - level) / 2
  return [float(v) for v in np.percentile(replicates, [tail, 100.0 - tail])]


def modal_exposure(exposures: list[float]) -> float:
  """The most frequent exposure (ms) of a list, the shortest of tied ones; NaN for an empty list."""
  if not exposures:
    return float("nan")
  counts = collections.Counter(exposures)
  top = max(counts.values())
  return float(min(x for x, c in counts.items() if c == top))


def evaluator_rows(study: dict, rows: list[dict], names: dict[str, str]) -> list[dict[str, Any]]:
  """One summary per evaluator who answered: counts, rates (fractions; NaN without answers), checks,
  median response time (ms), attentiveness and (HYPE-time) modal exposure; sorted by id."""
  checks = attention(rows)
  by_e = collections.defaultdict(list)
  for r in rows:
    by_e[r["evaluator"]].append(r)
  out = []
  for e in sorted(by_e):
    rs = by_e[e]
    study_rs = [r for r in rs if not r["kind"].startswith("check_")]
    fakes = [r["answer"] == "real" for r in study_rs if r["kind"] == "fake"]
    reals = [r["answer"] == "fake" for r in study_rs if r["kind"] == "real"]
    wrong = [r["answer"] != r["truth"] for r in study_rs]
    exposures = [r["exposure_ms"] for r in study_rs if r["exposure_ms"] is not None]
    row = dict(
      evaluator=e,
      name=names.get(e, ""),
      answered=len(rs),
      total=len(study["images"]),
      error=float(np.mean(wrong)) if wrong else float("nan"),
      fakes_judged_real=float(np.mean(fakes)) if fakes else float("nan"),
      reals_judged_fake=float(np.mean(reals)) if reals else float("nan"),
      checks_correct=checks[e][0],
      checks_answered=checks[e][1],
      attentive=is_attentive(*checks[e]),
      median_response_ms=float(np.median([r["response_ms"] for r in rs])),
    )
    if study["mode"] == "time":
      row["modal_exposure_ms"] = modal_exposure(exposures)
    out.append(row)
  return out


def report(study: dict, rows: list[dict], names: dict[str, str], *, num: int = BOOTSTRAP) -> dict[str, Any]:
  """The study's results (a JSON-ready dict): HYPE rates with bootstrap intervals (fractions in [0, 1]),
  per-evaluator rows, and the fakes ranked from most to least often judged real by attentive evaluators.

  Args:
    study: the study record (:func:`jgan.labs.judge_study.load`).
    rows: every answer (:meth:`jgan.labs.judge_store.Store.answers`).
    names: evaluator id -> display name.
    num: bootstrap replicates; the bootstrap's seed is the study's seed.
  """
  per_e = evaluator_rows(study, rows, names)
  attentive = sorted(r["evaluator"] for r in per_e if r["attentive"])
  kinds = {r["id"]: r["kind"] for r in study["images"]}
  hype = {}
  for name, subset in SUBSETS.items():
    images = sorted(i for i, k in kinds.items() if k in subset)
    errors, answered = error_matrix(rows, attentive, images)
    reps = bootstrap(errors, answered, num=num, seed=int(study["seed"]))
    rate = float(errors[answered].mean()) if answered.any() else float("nan")
    hype[name] = {"rate": rate, "ci": interval(reps), "answers": int(answered.sum())}
  fakes = sorted(i for i, k in kinds.items() if k == "fake")
  judged = {i: [0, 0] for i in fakes}
  for r in rows:
    if r["evaluator"] in attentive and r["kind"] == "fake":
      judged[r["image"]][0] += r["answer"] == "real"
      judged[r["image"]][1] += 1
  ranked = sorted(fakes, key=lambda i: (-(judged[i][0] / max(judged[i][1], 1)), i))
  out: dict[str, Any] = {
    key: study[key] for key in ("mode", "workdir", "step", "data", "split", "n", "seed", "num_checks")
  }
  out.update(
    evaluators=len(attentive),
    inattentive=len(per_e) - len(attentive),
    hype=hype,
    rows=per_e,
    fakes_ranked=[{"id": i, "judged_real": judged[i][0], "judgements": judged[i][1]} for i in ranked],
    bootstrap={"replicates": num, "seed": int(study["seed"]), "level": LEVEL, "resamples": "evaluators and images"},
  )
  if study["mode"] == "time":
    thresholds = np.asarray([r["modal_exposure_ms"] for r in per_e if r["attentive"]], np.float64)
    thresholds = thresholds[np.isfinite(thresholds)]
    rng = np.random.default_rng(int(study["seed"]))
    reps = np.asarray([thresholds[rng.integers(0, len(thresholds), len(thresholds))].mean() for _ in range(num)])
    out["hype_time_ms"] = {
      "mean": float(thresholds.mean()) if len(thresholds) else float("nan"),
      "ci": interval(reps if len(thresholds) else np.zeros(0)),
    }
  return out


def write_grids(study_dir: str, study: dict, ranked: list[dict], k: int = 8) -> dict[str, str]:
  """PNG grids of the ``k`` most and ``k`` least convincing fakes (``ranked`` as :func:`report` orders
  them; only fakes with a judgement), most / least convincing first, written into ``study_dir``;
  returns ``{"most": path, "least": path}`` (no entry when no fake was judged)."""
  from jgan import writers

  judged = [r["id"] for r in ranked if r["judgements"]]
  k = min(k, len(judged))
  h = study["image_shape"][0]
  paths = {}
  for name, ids in (("most", judged[:k]), ("least", judged[::-1][:k])):
    if not ids:
      continue
    images = np.stack([judge_study.read_image(study_dir, i) for i in ids]).astype(np.float32) / 127.5 - 1.0
    grid = writers.image_grid(images, ncols=min(len(ids), 8))
    paths[name] = writers.save_png(os.path.join(study_dir, f"{name}_convincing.png"), grid, max(1, 96 // h))
  return paths


def _pct(x: float) -> str:
  return "n/a" if not np.isfinite(x) else f"{100 * x:.1f} %"


def format_report(rep: dict[str, Any], study_dir: str = "") -> str:
  """The report as Markdown text (what ``jgan judge --report`` prints and writes to ``report.md``)."""
  mode = "HYPE-time" if rep["mode"] == "time" else "HYPE-∞"
  lines = [
    f"# {mode} study {study_dir}".rstrip(),
    "",
    f"{rep['n']} study images: {rep['n'] // 2} fakes of {rep['workdir']} (EMA generator, step {rep['step']}), "
    f"{rep['n'] // 2} reals of {rep['data']}:{rep['split']}; {rep['num_checks']} attention checks. "
    f"{rep['evaluators']} attentive evaluators, {rep['inattentive']} inattentive (left out, listed apart).",
    "",
    f"| HYPE-∞ | rate | {rep['bootstrap']['level']:g} % CI | answers |",
    "|---|---|---|---|",
  ]
  label = {"overall": "error rate (overall)", "fakes": "fakes judged real", "reals": "reals judged fake"}
  for key, text in label.items():
    h = rep["hype"][key]
    lines.append(f"| {text} | {_pct(h['rate'])} | [{_pct(h['ci'][0])}, {_pct(h['ci'][1])}] | {h['answers']} |")
  b = rep["bootstrap"]
  lines += ["", f"Bootstrap: {b['replicates']} replicates resampling {b['resamples']}, seed {b['seed']}."]
  if "hype_time_ms" in rep:
    t = rep["hype_time_ms"]
    lines += ["", f"HYPE-time: {t['mean']:.0f} ms (95 % CI [{t['ci'][0]:.0f}, {t['ci'][1]:.0f}] ms over evaluators)."]
  header = "| evaluator | name | answered | error | fakes judged real | reals judged fake | checks | median ms |"
  for title, keep in (("Evaluators", True), ("Inattentive evaluators (left out)", False)):
    chosen = [r for r in rep["rows"] if r["attentive"] == keep]
    if not chosen and not keep:
      continue
    columns = 9 if "hype_time_ms" in rep else 8
    lines += ["", f"## {title}", "", header + (" modal exposure |" if columns == 9 else ""), "|---" * columns + "|"]
    for r in chosen:
      cells = [
        r["evaluator"],
        r["name"],
        f"{r['answered']}/{r['total']}",
        _pct(r["error"]),
        _pct(r["fakes_judged_real"]),
        _pct(r["reals_judged_fake"]),
        f"{r['checks_correct']}/{r['checks_answered']}",
        f"{r['median_response_ms']:.0f}",
      ]
      if "hype_time_ms" in rep:
        cells.append(f"{r['modal_exposure_ms']:.0f}")
      lines.append("| " + " | ".join(cells) + " |")
  ranked = [r for r in rep["fakes_ranked"] if r["judgements"]]
  if ranked:
    fmt = lambda rs: ", ".join(f"{r['id']} ({r['judged_real']}/{r['judgements']})" for r in rs)
    lines += ["", "## Fakes (judged real / judgements)", "", f"Most convincing: {fmt(ranked[:8])}"]
    lines += [f"Least convincing: {fmt(ranked[::-1][:8])}"]
  for name, path in rep.get("grids", {}).items():
    lines += [f"Grid of the {name} convincing fakes: {path}"]
  return "\n".join(lines) + "\n"


def write_report(study_dir: str, *, num: int = BOOTSTRAP) -> tuple[dict[str, Any], str]:
  """Computes the report of the study in ``study_dir`` from its database and writes ``report.json``,
  ``report.md`` and the two fake grids (:func:`write_grids`) there; returns ``(report, markdown)``."""
  import json

  from jgan.labs import judge_store

  study = judge_study.load(study_dir)
  store = judge_store.Store(study_dir, study)
  rep = report(study, store.answers(), store.evaluators(), num=num)
  rep["grids"] = write_grids(study_dir, study, rep["fakes_ranked"])
  text = format_report(rep, study_dir)
  with open(os.path.join(study_dir, "report.json"), "w") as f:
    json.dump(rep, f, indent=1)
  with open(os.path.join(study_dir, "report.md"), "w") as f:
    f.write(text)
  return rep, text
