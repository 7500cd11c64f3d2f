"""jgan's metrics next to the reference packages themselves, on the same inputs.

The packages come from PyPI in the ``crosscheck`` extra, which ``make test`` (and so CI) installs:
``prdc`` (Naeem et al.'s release) for precision / recall / density / coverage. pytorch-fid (features,
end-to-end FID) and clean-fid (its resizer, KID) need PyTorch and run in a reference environment of
their own (``make reference-env``; ``make test`` builds it), through tests/reference/torch_refs.py.
"""

import os
import subprocess

import jax.numpy as jnp
import numpy as np
import pytest

from jgan import metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sets(seed, n=300, m=250, d=32):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(n, d)).astype(np.float32), (rng.normal(size=(m, d)) * 1.1 + 0.2).astype(np.float32)


@pytest.mark.parametrize("k", [3, 5])
def test_prdc_package_matches_on_the_same_features(k, capsys):
  prdc = pytest.importorskip("prdc", reason="`pip install -e '.[crosscheck]'` (make test does)")
  real, fake = _sets(0)
  ref = prdc.compute_prdc(real, fake, nearest_k=k)
  # prdc uses < for all four metrics: precision/recall need pr_inclusive=False to follow it.
  ours = metrics.manifold_metrics(real, fake, k_pr=k, k_dc=k, pr_inclusive=False, dc_inclusive=False)
  for name in ("precision", "recall", "density", "coverage"):
    assert ours[name] == pytest.approx(float(ref[name]), rel=1e-4, abs=1e-6), name


def test_prdc_package_identical_sets_density_is_one():
  prdc = pytest.importorskip("prdc", reason="`pip install -e '.[crosscheck]'` (make test does)")
  # The case the boundary convention decides: jgan's default (<) gives prdc's 1.0, not (k + 1) / k.
  x, _ = _sets(1)
  ref = prdc.compute_prdc(x, x, nearest_k=5)
  density, coverage = metrics.density_coverage(x, x, k=5)
  assert float(ref["density"]) == pytest.approx(1.0) and density == pytest.approx(1.0)
  assert coverage == float(ref["coverage"]) == 1.0


# ----------------------------------------------------------------------------- pytorch-fid, clean-fid
# They need PyTorch + torchvision, which live in a separate environment (`make reference-env`, which
# `make test` runs): tests/reference/torch_refs.py computes their side there, this file compares.
REF_PYTHON = os.environ.get("JGAN_REFERENCE_PYTHON") or os.path.join(ROOT, ".venv-ref", "bin", "python")


@pytest.fixture(scope="module")
def torch_refs(tmp_path_factory):
  """pytorch-fid features / FID and clean-fid resizes / KID on 28, 32 and 64 px images, with the same
  random Inception weights written here as a .pth that both sides load."""
  if not os.path.exists(REF_PYTHON):
    pytest.skip(f"no reference environment at {REF_PYTHON} (make reference-env)")
  from tests.test_metrics_inception import random_fid_state_dict, write_torch_zip

  d = tmp_path_factory.mktemp("refs")
  write_torch_zip(d / "w.pth", random_fid_state_dict(seed=11))
  rng = np.random.default_rng(12)
  sets = {
    "a28": rng.integers(0, 256, (12, 28, 28, 1), dtype=np.uint8),
    "b28": np.clip(rng.normal(100, 60, (12, 28, 28, 1)), 0, 255).astype(np.uint8),
    "c32": rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8),
    "d64": rng.integers(0, 256, (6, 64, 64, 3), dtype=np.uint8),
  }
  np.savez(d / "in.npz", **sets)
  script = os.path.join(ROOT, "tests", "reference", "torch_refs.py")
  cmd = [REF_PYTHON, script, "--weights", str(d / "w.pth"), "--images", str(d / "in.npz"), "--out", str(d / "out.npz")]
  r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
  assert r.returncode == 0, r.stderr[-3000:]
  with np.load(d / "out.npz") as z:
    ref = {k: z[k] for k in z.files}
  from jgan.metrics import inception

  model, _ = inception.load_inception(str(d / "w.pth"))
  run = inception.make_apply(model)
  ours = {name: np.asarray(run(jnp.asarray(x / 127.5 - 1.0, jnp.float32))[0], np.float64) for name, x in sets.items()}
  return sets, ref, ours


def _rel(a, b) -> float:
  return float(np.abs(a - b).max() / np.abs(b).max())


def _record(what: str, value: float) -> None:
  # Measured differences, shown with `pytest -s` (the docs table quotes them).
  print(f"\n[reference] {what}: {value:.3g}")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["a28", "c32", "d64"])
def test_pytorch_fid_features_match(torch_refs, name):
  sets, ref, ours = torch_refs
  rel = _rel(ours[name], ref[f"features_{name}"])
  _record(f"pytorch-fid features, {sets[name].shape[1]} px: max rel. difference", rel)
  assert rel < 1e-4, rel


@pytest.mark.slow
def test_pytorch_fid_end_to_end_fid_and_clean_fid_kid(torch_refs):
  _, ref, ours = torch_refs
  fid = metrics.fid_from_features(ours["a28"], ours["b28"])
  _record(f"FID jgan {fid:.6f} vs pytorch-fid {float(ref['fid']):.6f}: rel.", abs(fid / float(ref["fid"]) - 1))
  assert fid == pytest.approx(float(ref["fid"]), rel=1e-4)
  # KID on the reference's own features: the same kernel and estimator, not the same network.
  kid, _ = metrics.kid_from_features(ref["features_a28"], ref["features_b28"], num_subsets=1, subset_size=12)
  _record(f"KID jgan {kid:.6g} vs clean-fid {float(ref['kid']):.6g}: rel.", abs(kid / float(ref["kid"]) - 1))
  assert kid == pytest.approx(float(ref["kid"]), rel=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["a28", "c32", "d64"])
def test_clean_fid_resizer_matches(torch_refs, name):
  from jgan.metrics import resize

  sets, ref, _ = torch_refs
  ours = (resize.clean_resize(sets[name] / 127.5 - 1.0) + 1.0) * 127.5
  theirs = ref[f"clean_resized_{name}"][..., : ours.shape[-1]]
  diff = float(np.abs(ours - theirs).max())
  _record(f"clean-fid resize, {sets[name].shape[1]} px: max abs. difference (of 255)", diff)
  assert diff < 1e-3, diff
