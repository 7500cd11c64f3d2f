"""Evaluation: the METRICS registry, the evaluator on a train state, separation of real / collapsed
samples, 2-D mode metrics, the real-feature cache, error messages, and `launch.py eval`.
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

from jgan import data as data_lib
from jgan import evaluation
from jgan.data import mixtures
from jgan.metrics import METRICS, protocols
from tests.helpers import load_config, setup
from tests.test_metrics_classifier import small_classifier  # noqa: F401  (session fixture)


def _config(name="smoke", **evals):
  c = load_config(name)
  c.evals.update(evals)
  return c


def test_registry_names_and_keys():
  for name, p in METRICS.items():
    assert p.extractor in evaluation.EXTRACTORS, name
    assert p.distance in protocols.DISTANCES or p.distance in protocols.MODE_OUTPUTS, name
    assert name.endswith(("500", "2500", "5k", "10k", "26k", "50k")), name
  assert METRICS["fid10k"] == protocols.Protocol("inception", "fid", 10_000)
  assert METRICS["mnist_modes5k"] == protocols.Protocol("mnist", "class_modes", 5_000, num_classes=10)
  assert protocols.result_keys("fid50k") == ("fid50k",)
  assert protocols.result_keys("kid10k") == ("kid10k/kid", "kid10k/kid_std")
  assert protocols.parse_metric_names(" fid10k,,kid10k,fid10k ") == ["fid10k", "kid10k"]
  # A metric computed on another sample count than its name says is reported under that count.
  assert protocols.result_keys("fid10k", 64) == ("fid64",)
  assert protocols.result_keys("fid10k", 10_000) == ("fid10k",)
  assert protocols.result_keys("mnist_kid5k", 500) == ("mnist_kid500/kid", "mnist_kid500/kid_std")
  assert protocols.result_keys("modes2500", 3000) == ("modes3k/modes", "modes3k/high_quality", "modes3k/reverse_kl")
  assert protocols.result_keys("stacked_modes26k", 2500)[0] == "stacked_modes2500/modes"
  with pytest.raises(ValueError, match="unknown metric 'fid1k'; valid choices: .*fid10k"):
    protocols.parse_metric_names("fid1k")


def test_modes2500_separates_full_and_collapsed_mixtures(tmp_path):
  config = _config("ring8", metrics="modes2500")
  ev = evaluation.Evaluator(config, str(tmp_path), progress=False)
  real = mixtures.sample("ring8", 2500, np.random.default_rng(0)).astype(np.float32)
  full = ev.evaluate(real)
  assert full["modes2500/modes"] == 8 and full["modes2500/high_quality"] > 0.99
  assert full["modes2500/reverse_kl"] < 0.01
  collapsed = ev.evaluate(np.repeat(mixtures.ring8_centres()[:1], 2500, axis=0).astype(np.float32))
  assert collapsed["modes2500/modes"] == 1
  assert collapsed["modes2500/reverse_kl"] == pytest.approx(np.log(8))


def test_config_errors_come_before_any_work(tmp_path, monkeypatch):
  monkeypatch.delenv("JGAN_INCEPTION_WEIGHTS", raising=False)
  monkeypatch.delenv("JGAN_CLASSIFIER", raising=False)
  with pytest.raises(ValueError, match="does not apply to data set 'mnist5k'"):
    evaluation.Evaluator(_config(metrics="modes2500"), str(tmp_path))
  with pytest.raises(ValueError, match="modes2500"):
    evaluation.Evaluator(_config("ring8", metrics="mnist_fid5k"), str(tmp_path))
  with pytest.raises(FileNotFoundError, match="JGAN_INCEPTION_WEIGHTS"):
    evaluation.Evaluator(_config(metrics="fid10k", inception_weights=str(tmp_path / "no.pth")), str(tmp_path))
  with pytest.raises(ValueError, match="unknown evals.fid_mode 'tf'; valid choices: legacy_pytorch, clean"):
    evaluation.Evaluator(_config(metrics="fid10k", fid_mode="tf"), str(tmp_path))
  with pytest.raises(FileNotFoundError, match="jgan classifier"):
    evaluation.Evaluator(_config(metrics="mnist_fid5k", classifier_path=str(tmp_path / "no")), str(tmp_path))
  ev = evaluation.make_evaluator(_config(), str(tmp_path))  # no metrics: nothing to do
  assert ev.metrics == [] and not ev.due(1000) and ev.evaluate(lambda rng, n: None) == {}
  legacy = _config()
  del legacy["evals"]  # a config saved before the section existed
  assert evaluation.eval_settings(legacy).batch_size == evaluation.DEFAULTS["batch_size"]


def test_real_digits_beat_collapsed_ones(small_classifier, tmp_path):  # noqa: F811
  """Held-out real digits vs one class resampled: FID, recall/coverage and mode count must separate."""
  names = "mnist_fid500,mnist_kid500,mnist_is500,mnist_prdc500,mnist_modes500"
  config = _config(metrics=names, classifier_path=small_classifier, batch_size=250)
  ev = evaluation.Evaluator(config, str(tmp_path), progress=False)
  images, labels = map(np.concatenate, zip(*data_lib.split_batches(config.data, "test", None, 500)))
  real = ev.evaluate(images)
  ones = images[labels == 1]
  collapsed = ev.evaluate(ones[np.random.default_rng(0).integers(0, len(ones), 500)])
  assert real["mnist_modes500/modes"] == 10 and collapsed["mnist_modes500/modes"] <= 2
  assert real["mnist_fid500"] < collapsed["mnist_fid500"] / 5
  assert real["mnist_kid500/kid"] < collapsed["mnist_kid500/kid"] / 5
  assert real["mnist_is500/is"] > 2 * collapsed["mnist_is500/is"]
  assert real["mnist_prdc500/recall"] > 0.5 > 0.1 > collapsed["mnist_prdc500/recall"]
  assert real["mnist_prdc500/coverage"] > 0.5 > 0.2 > collapsed["mnist_prdc500/coverage"]
  cached = os.listdir(tmp_path / "eval_cache")
  assert len(cached) == 1 and cached[0].startswith("real_mnist5k_28px_train_mnist-")


def test_evaluator_on_a_train_state(small_classifier, tmp_path):  # noqa: F811
  config = _config(
    metrics="mnist_fid500,mnist_modes500",
    every_steps=100,
    classifier_path=small_classifier,
    cache_dir=str(tmp_path / "cache"),
  )
  ev = evaluation.make_evaluator(config, str(tmp_path / "run"), progress=False)
  assert ev.due(200) and not ev.due(150)
  state = setup(config, (28, 28, 1), jax.random.key(0))[2]
  first = ev(state, 200)
  assert set(first) == {"mnist_fid500", "mnist_modes500/modes", "mnist_modes500/reverse_kl"}
  assert np.isfinite(first["mnist_fid500"]) and 1 <= first["mnist_modes500/modes"] <= 10
  # The same noise at every call: an unchanged generator scores exactly the same (real features cached).
  again = evaluation.make_evaluator(config, str(tmp_path / "run"), progress=False)(state, 300)
  assert again == first
  rows = [json.loads(line) for line in (tmp_path / "run" / "evals.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows] == [200, 300] and rows[0]["generator"] == "ema"
  assert rows[0]["mnist_fid500"] == first["mnist_fid500"]
  # The sampler draws from the EMA parameters by default, the live ones with ema=False.
  s = evaluation.state_sampler(state)
  x = s(jax.random.key(1), 4)
  assert x.shape == (4, 28, 28, 1) and np.array_equal(np.asarray(x), np.asarray(s(jax.random.key(1), 4)))


def test_sampler_splits_the_batch_over_a_mesh():
  from jgan import sharding

  config = _config()
  state = setup(config, (28, 28, 1), jax.random.key(0))[2]
  one = np.asarray(evaluation.state_sampler(state)(jax.random.key(2), 16))
  sh = sharding.make_shardings(sharding.make_mesh(8))
  sampler = evaluation.state_sampler(jax.device_put(state, sh.replicated))
  x = sampler(jax.random.key(2), 16)
  assert x.sharding.spec == jax.sharding.PartitionSpec("data")  # each device made 2 of the 16
  np.testing.assert_allclose(np.asarray(x), one, atol=1e-5)
  assert sampler(jax.random.key(2), 12).shape == (12, 28, 28, 1)  # 12 does not split over 8: replicated


@pytest.mark.slow
@pytest.mark.parametrize("fid_mode", ["legacy_pytorch", "clean"])
def test_inception_metrics_end_to_end(tmp_path, fid_mode):
  """fid10k and is10k with Inception (random weights in a .pth written here) on 10 samples, in both
  resize modes; the mode is recorded and keys the real-feature cache.

  (KID and PR run on the same code path as the mnist_* metrics, tested above.)
  """
  from tests.test_metrics_inception import random_fid_state_dict, write_torch_zip

  path = tmp_path / "pt_inception.pth"
  write_torch_zip(path, random_fid_state_dict())
  config = _config(
    metrics="fid10k,is10k", inception_weights=str(path), num_samples=10, batch_size=10, fid_mode=fid_mode
  )
  ev = evaluation.Evaluator(config, str(tmp_path), progress=False)
  assert ev.record_fields() == {"fid_mode": fid_mode}
  assert ev.extractor("inception").digest.endswith("-clean") == (fid_mode == "clean")
  state = setup(config, (28, 28, 1), jax.random.key(0))[2]
  with pytest.warns(RuntimeWarning, match="singular"):
    r = ev(state, 0)
  assert json.loads((tmp_path / "evals.jsonl").read_text().splitlines()[-1])["fid_mode"] == fid_mode
  assert set(r) == {"fid10", "is10/is", "is10/is_std"}  # named by the 10 samples used, not "fid10k"
  assert all(np.isfinite(v) for v in r.values()) and r["fid10"] > 0 and 1 <= r["is10/is"] <= 1008
  assert any(f.endswith("_10.npz") and "inception-" in f for f in os.listdir(tmp_path / "eval_cache"))


@pytest.mark.slow
def test_launch_eval_on_a_finished_run(small_classifier, tmp_path, capsys):  # noqa: F811
  from jgan import cli, train

  workdir = str(tmp_path / "run")
  config = load_config("smoke")
  config.parallel.num_devices = 1
  train.train_and_evaluate(config, workdir)
  args = [
    "--workdir",
    workdir,
    "--classifier",
    small_classifier,
    "--no_progress",
    "--metrics",
    "mnist_fid500,mnist_modes500",
  ]
  assert cli.main(["eval", *args]) == 0
  assert cli.main(["eval", *args, "--data", "test"]) == 0
  assert cli.main(["eval", *args[:-1], "nope"]) == 2
  assert "unknown metric 'nope'" in capsys.readouterr().err
  # The 5k protocols on the 500-digit held-out split: scored on all 500 and named so, with a note.
  assert cli.main(["eval", *args[:-1], "mnist_fid5k"]) == 0
  assert cli.main(["eval", *args[:-1], "mnist_fid5k", "--data", "test"]) == 0
  assert "holds 500 images, fewer than the 5000" in capsys.readouterr().err
  assert cli.main(["eval", *args[:-1], "mnist_fid5k", "--num_samples", "64"]) == 0
  rows = [json.loads(line) for line in (tmp_path / "run" / "evals.jsonl").read_text().splitlines()]
  assert [(r["step"], r["generator"]) for r in rows] == [(10, "ema"), (0, "data:test")] + [
    (10, "ema"),
    (0, "data:test"),
    (10, "ema"),
  ]
  assert rows[1]["mnist_fid500"] < rows[0]["mnist_fid500"]  # real digits beat a 10-step generator
  assert "mnist_fid5k" in rows[2] and "mnist_fid500" in rows[3] and "mnist_fid5k" not in rows[3]
  assert set(rows[4]) >= {"mnist_fid64"} and "mnist_fid5k" not in rows[4]


@pytest.mark.slow
def test_eval_right_after_training_trains_the_classifier_once_and_logs_to_tensorboard(tmp_path, monkeypatch, capsys):
  """`jgan eval --workdir RUN` with no classifier anywhere: the default one is trained into the cache
  (here a short version of it), every default metric is printed, and the results reach TensorBoard."""
  from jgan import classifier_training, cli, train
  from jgan.metrics import classifier

  monkeypatch.delenv(classifier.CLASSIFIER_ENV, raising=False)
  monkeypatch.setattr(classifier, "DEFAULT_PATH", str(tmp_path / "cache" / "classifier_mnist5k"))
  short = classifier_training.default_config()
  short.train.steps = 30
  monkeypatch.setattr(classifier_training, "default_config", lambda: short)
  workdir = str(tmp_path / "run")
  config = load_config("smoke")
  config.parallel.num_devices = 1
  train.train_and_evaluate(config, workdir)
  assert cli.main(["eval", "--workdir", workdir, "--no_progress"]) == 0
  out, err = capsys.readouterr()
  assert "training it once into" in err and os.path.isfile(
    tmp_path / "cache" / "classifier_mnist5k" / "classifier.json"
  )
  for key in evaluation.Evaluator(config, workdir, evaluation.DEFAULT_METRICS["mnist5k"], progress=False).result_keys():
    assert key in out, key
  assert cli.main(["eval", "--workdir", workdir, "--no_progress", "--metrics", "mnist_modes500"]) == 0
  assert "training it once" not in capsys.readouterr().err  # cached now
  tags = set()
  for f in os.listdir(os.path.join(workdir, "tb")):
    tags |= _scalar_tags(os.path.join(workdir, "tb", f))
  assert {"eval/mnist_fid5k", "eval/mnist_modes500/modes"} <= tags, sorted(tags)[:20]


def _scalar_tags(path: str) -> set[str]:
  """The scalar tags of a TensorBoard event file, read as its TFRecord framing + Event protos."""
  import struct

  from tensorboardX.proto.event_pb2 import Event

  tags, data = set(), open(path, "rb").read()
  i = 0
  while i + 12 <= len(data):
    (n,) = struct.unpack("<Q", data[i : i + 8])
    event = Event.FromString(data[i + 12 : i + 12 + n])  # skip the length's CRC; the record's follows
    tags |= {v.tag for v in event.summary.value}
    i += 12 + n + 4
  return tags


def test_evals_during_data_parallel_training_with_a_weighted_extractor(small_classifier, tmp_path):  # noqa: F811
  """Samples sharded over the 8-device mesh meet the classifier's single-device weights: gathered first
  (this raised jit's "incompatible devices" before)."""
  from jgan import train

  config = _config(metrics="mnist_modes500", every_steps=5, classifier_path=small_classifier)
  assert jax.device_count() == 8 and config.parallel.num_devices in (0, 8)
  train.train_and_evaluate(config, str(tmp_path))
  rows = [json.loads(line) for line in (tmp_path / "evals.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows] == [5, 10] and all(0 <= r["mnist_modes500/modes"] <= 10 for r in rows)


@pytest.mark.slow
def test_save_stats_then_fid_against_them_equals_fid_against_real_data(small_classifier, tmp_path, capsys):  # noqa: F811
  """`--save_stats` writes pytorch-fid's .npz (mu, sigma); `--ref_stats` of the real split's statistics
  gives the same FID as comparing with the real features directly."""
  from jgan import cli, train
  from jgan.metrics import frechet

  workdir = str(tmp_path / "run")
  config = load_config("smoke")
  config.parallel.num_devices = 1
  train.train_and_evaluate(config, workdir)
  base = ["eval", "--workdir", workdir, "--classifier", small_classifier, "--no_progress", "--metrics", "mnist_fid500"]
  stats = str(tmp_path / "real_stats.npz")
  assert cli.main([*base, "--data", "train", "--save_stats", stats]) == 0
  with np.load(stats) as z:
    d = z["mu"].shape[0]  # the classifier's feature size
    assert sorted(z.files) == ["mu", "sigma"] and z["sigma"].shape == (d, d)
  real, _ = data_lib.split_arrays(config.data, "train", limit=500)
  ev = evaluation.Evaluator(load_config("smoke"), str(tmp_path), "mnist_fid500", progress=False)
  ev.settings.classifier_path = small_classifier
  mu, sigma = frechet.gaussian_stats(ev._fake_outputs(real, ["mnist_fid500"])["mnist"]["features"])
  np.testing.assert_allclose(np.load(stats)["mu"], mu, rtol=1e-6)
  assert cli.main(base) == 0
  assert cli.main([*base, "--ref_stats", stats]) == 0
  rows = [json.loads(line) for line in (tmp_path / "run" / "evals.jsonl").read_text().splitlines()]
  assert rows[-1]["fid_reference"] == stats and "fid_reference" not in rows[-2]
  assert rows[-1]["mnist_fid500"] == pytest.approx(rows[-2]["mnist_fid500"], rel=1e-6)
  assert cli.main([*base, "--ref_stats", str(tmp_path / "nope.npz")]) == 2
  assert cli.main([*base[:-1], "mnist_modes500", "--save_stats", stats]) == 2
  assert "--save_stats needs a FID metric" in capsys.readouterr().err
