"""jgan.labs.latent (closed forms), jgan.labs.attributes (synthetic strokes of known width and angle), and
the latent CLI."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan.cli import latent as latent_cli
from jgan.labs import attributes, latent, latent_figures

D = 16


def _rand(seed, shape):
  return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


def _angle(u, v):
  cos = np.sum(u * v, -1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
  return np.arccos(np.clip(cos, -1, 1))


# --- Interpolation --------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [latent.lerp, latent.slerp])
def test_endpoints_are_exact_for_any_norms(fn):
  a, b = _rand(0, (5, D)), 3.0 * _rand(1, (5, D))
  np.testing.assert_allclose(fn(a, b, 0.0), a, atol=1e-5)
  np.testing.assert_allclose(fn(a, b, 1.0), b, atol=1e-5)
  np.testing.assert_allclose(
    fn(a, b, jnp.array([0.0, 1.0, 0.0, 1.0, 0.0])), np.where(np.array([0, 1, 0, 1, 0])[:, None] == 1, b, a), atol=1e-5
  )


def test_slerp_stays_on_the_sphere_with_uniform_angle_and_lerp_cuts_the_chord():
  a, b = _rand(2, (D,)), _rand(3, (D,))
  b = b * jnp.linalg.norm(a) / jnp.linalg.norm(b)  # equal norms r
  r, omega = float(jnp.linalg.norm(a)), float(_angle(np.asarray(a), np.asarray(b)))
  t = np.linspace(0, 1, 11)
  path = np.asarray(latent.interpolate(a, b, 11, "slerp"))
  np.testing.assert_allclose(np.linalg.norm(path, axis=-1), r, rtol=1e-5)
  np.testing.assert_allclose(_angle(path, np.asarray(a)[None]), t * omega, atol=1e-3)
  steps = np.linalg.norm(np.diff(path, axis=0), axis=-1)  # equal arcs -> equal chords
  np.testing.assert_allclose(steps, steps[0], rtol=1e-4)
  mid = np.asarray(latent.lerp(a, b, 0.5))
  np.testing.assert_allclose(np.linalg.norm(mid), r * np.cos(omega / 2), rtol=1e-5)


@pytest.mark.parametrize(
  "b_of_a", [lambda a: 2.0 * a, lambda a: a + 1e-7, lambda a: -a], ids=["parallel", "nearly", "antiparallel"]
)
def test_slerp_falls_back_to_lerp_finitely_with_finite_gradients(b_of_a):
  a = _rand(4, (D,))
  b = b_of_a(a)
  for t in (0.0, 0.3, 1.0):
    out = latent.slerp(a, b, t)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, latent.lerp(a, b, t), atol=1e-4)
  grad = jax.grad(lambda a: jnp.sum(latent.slerp(a, b_of_a(a), 0.3) ** 2))(a)
  assert np.all(np.isfinite(grad))


def test_slerp_jits_vmaps_and_matches_the_closed_form():
  a, b = _rand(5, (3, D)), _rand(6, (3, D))
  t = jnp.array([0.1, 0.5, 0.9])
  out = jax.jit(jax.vmap(latent.slerp))(a, b, t)
  an, bn = np.asarray(a, np.float64), np.asarray(b, np.float64)
  om = _angle(an, bn)[:, None]
  tt = np.asarray(t, np.float64)[:, None]
  expect = (np.sin((1 - tt) * om) * an + np.sin(tt * om) * bn) / np.sin(om)
  np.testing.assert_allclose(out, expect, rtol=1e-4, atol=1e-5)


def test_interpolate_batches_rows_and_rejects_unknown_method():
  a, b = _rand(7, (4, D)), _rand(8, (4, D))
  grid = latent.interpolate(a, b, 6)
  assert grid.shape == (4, 6, D)
  np.testing.assert_allclose(grid[2], latent.interpolate(a[2], b[2], 6), atol=1e-6)
  np.testing.assert_allclose(grid[:, 0], a, atol=1e-5)
  np.testing.assert_allclose(grid[:, -1], b, atol=1e-5)
  with pytest.raises(ValueError, match="valid choices: slerp, lerp"):
    latent.interpolate(a, b, 3, "cubic")


def test_walks_open_and_closed():
  pts = _rand(9, (3, D))
  open_ = latent.walk(pts, 4)
  assert open_.shape == (2 * 4 + 1, D)
  np.testing.assert_allclose(open_[::4], pts, atol=1e-5)  # frame i F is point i
  closed = latent.walk(pts, 4, closed=True, method="lerp")
  assert closed.shape == (3 * 4, D)
  np.testing.assert_allclose(closed[::4], pts, atol=1e-5)
  # The loop's last frame is one step before p0: the GIF wraps around without a repeated frame.
  np.testing.assert_allclose(closed[-1], latent.lerp(pts[2], pts[0], 0.75), atol=1e-5)


def test_interpolation_grid_corners_and_bilinear_centre():
  corners = _rand(10, (4, D))
  sheet = latent.interpolation_grid(corners, 5, 7)
  assert sheet.shape == (5, 7, D)
  for (i, j), c in zip([(0, 0), (0, -1), (-1, 0), (-1, -1)], corners):
    np.testing.assert_allclose(sheet[i, j], c, atol=1e-5)
  flat = latent.interpolation_grid(corners, 3, 3, "lerp")
  np.testing.assert_allclose(flat[1, 1], corners.mean(0), atol=1e-5)


# --- Concepts and arithmetic ----------------------------------------------------------------------


def test_select_top_by_label_and_score_and_concept_mean():
  scores = jnp.array([0.5, 0.9, 0.1, 0.7, 0.3, 0.8])
  labels = jnp.array([7, 7, 7, 1, 7, 7])
  idx, valid = latent.select_top(scores, labels == 7, k=3)
  assert idx.tolist() == [1, 5, 0] and valid.all()
  idx, _ = latent.select_top(scores, labels == 7, k=2, highest=False)
  assert idx.tolist() == [2, 4]
  idx, _ = latent.select_top(jnp.zeros(6), labels == 7, k=3)  # ties: lower index first
  assert idx.tolist() == [0, 1, 2]
  idx, valid = latent.select_top(scores, labels == 1, k=3)
  assert valid.tolist() == [True, False, False]
  z = _rand(11, (6, D))
  np.testing.assert_allclose(latent.concept_vector(z, np.array([1, 5, 0])), (z[1] + z[5] + z[0]) / 3, atol=1e-6)
  with pytest.raises(ValueError, match="only 1 of 3"):
    latent.concept_vector(z, idx, valid)


@pytest.mark.parametrize(
  "expr,terms",
  [
    ("a - b + c", [(1.0, "a"), (-1.0, "b"), (1.0, "c")]),
    ("-thick7+2*thin1 - 0.5 x_2", [(-1.0, "thick7"), (2.0, "thin1"), (-0.5, "x_2")]),
    ("  woman ", [(1.0, "woman")]),
  ],
)
def test_parse_expression(expr, terms):
  assert latent.parse_expression(expr) == terms


@pytest.mark.parametrize("expr", ["", "a b", "a -", "a + * b", "a + 7", "a $ b"])
def test_parse_expression_rejects(expr):
  with pytest.raises(ValueError):
    latent.parse_expression(expr)


def test_evaluate_expression_and_variations():
  c = {n: _rand(i, (D,)) for i, n in enumerate("abc")}
  np.testing.assert_allclose(latent.evaluate_expression("a - b + c", c), c["a"] - c["b"] + c["c"], atol=1e-6)
  np.testing.assert_allclose(latent.evaluate_expression("0.5 a - 2*c", c), 0.5 * c["a"] - 2 * c["c"], atol=1e-6)
  with pytest.raises(ValueError, match="unknown concept.*d"):
    latent.evaluate_expression("a - d", c)
  v = np.asarray(latent.variations(c["a"], jax.random.key(0), 8))
  assert v.shape == (8, D)
  np.testing.assert_array_equal(v[0], c["a"])
  noise = v[1:] - np.asarray(c["a"])[None]
  assert np.all(np.abs(noise) <= 0.25 + 1e-6) and np.abs(noise).max() > 0.2 and len(np.unique(v[:, 0])) == 8


# --- Neighbours and smoothness --------------------------------------------------------------------


def test_nearest_neighbours_match_brute_force_and_find_copies():
  rng = np.random.default_rng(0)
  bank = rng.uniform(-1, 1, (50, 6, 6, 1)).astype(np.float32)
  queries = rng.uniform(-1, 1, (13, 6, 6, 1)).astype(np.float32)
  queries[4] = bank[17]  # a memorised sample
  d, i = latent.nearest_neighbours(queries, bank, k=2, batch_size=5)  # 13 = 2 full batches + padding
  brute = np.linalg.norm(queries.reshape(13, 1, -1) - bank.reshape(1, 50, -1), axis=-1)
  np.testing.assert_array_equal(i, np.argsort(brute, axis=1)[:, :2])
  np.testing.assert_allclose(d, np.sort(brute, axis=1)[:, :2], rtol=1e-4, atol=2e-3)
  assert i[4, 0] == 17 and d[4, 0] < 2e-3


def test_jump_ratio_separates_smooth_change_from_a_lookup_table():
  t = np.linspace(0, 1, 9, dtype=np.float32)[:, None, None, None]
  a, b = np.zeros((1, 4, 4, 1), np.float32), np.ones((1, 4, 4, 1), np.float32)
  smooth = (1 - t) * a + t * b  # [9, 4, 4, 1]
  table = np.where(t < 0.5, a, b)
  still = np.repeat(a, 9, axis=0)
  changes = latent.frame_changes(jnp.stack([smooth, table, still]))
  assert changes.shape == (3, 8)
  np.testing.assert_allclose(changes[0], 1 / 8, rtol=1e-5)
  np.testing.assert_allclose(latent.jump_ratio(changes), [1.0, 8.0, 1.0], rtol=1e-5)


# --- Attributes -----------------------------------------------------------------------------------


def draw_stroke(width, angle_deg=0.0, length=18.0, size=28, offset=(0.0, 0.0), ss=8):
  """float32 [size, size, 1] in [-1, 1]: a round-capped segment of ``width`` px, ``angle_deg`` from the
  vertical (positive leans right, like "/"), centred (plus ``offset`` (dy, dx)); 8x8 supersampled."""
  c = (np.arange(size * ss) + 0.5) / ss - 0.5  # pixel-centre coordinates of the sub-samples
  y, x = np.meshgrid(c, c, indexing="ij")
  th = np.radians(angle_deg)
  dy, dx = -np.cos(th), np.sin(th)  # unit direction: up (rows decrease) and to the right
  py, px = y - (size - 1) / 2 - offset[0], x - (size - 1) / 2 - offset[1]
  s = np.clip(py * dy + px * dx, -length / 2, length / 2)
  inside = np.hypot(py - s * dy, px - s * dx) <= width / 2
  p = inside.reshape(size, ss, size, ss).mean((1, 3))
  return (2 * p - 1).astype(np.float32)[..., None]


def test_thickness_is_ink_mass_linear_in_width():
  widths = np.array([1.0, 2.0, 3.0, 4.0])
  imgs = jnp.asarray(np.stack([draw_stroke(w, 10) for w in widths]))
  thick = np.asarray(attributes.thickness(imgs))
  # Area of a round-capped stroke: L w + pi w^2 / 4, over 28 * 28 pixels.
  np.testing.assert_allclose(thick, (18 * widths + np.pi * widths**2 / 4) / 784, rtol=0.03)
  assert float(attributes.thickness(-jnp.ones((1, 28, 28, 1)))[0]) == 0.0


@pytest.mark.parametrize("angle", [0.0, 20.0, -30.0, 45.0])
def test_stroke_width_reads_the_drawn_width_at_any_length(angle):
  widths = np.array([2.5, 3.0, 4.0, 5.0])
  for length in (10.0, 18.0):
    got = np.asarray(attributes.stroke_width(jnp.asarray(np.stack([draw_stroke(w, angle, length) for w in widths]))))
    np.testing.assert_allclose(got, widths, rtol=0.2)
    assert np.all(np.diff(got) > 0)
  assert float(attributes.stroke_width(-jnp.ones((1, 28, 28, 1)))[0]) == 0.0


@pytest.mark.parametrize("angle", [-35.0, -10.0, 0.0, 15.0, 40.0])
def test_slant_is_tan_of_the_angle_from_vertical(angle):
  imgs = jnp.asarray(np.stack([draw_stroke(1.5, angle, 20.0), draw_stroke(1.5, angle, 20.0, offset=(2.0, -3.0))]))
  got = np.asarray(attributes.slant(imgs))
  np.testing.assert_allclose(got, np.tan(np.radians(angle)), atol=0.03)  # thin-stroke limit, any position
  np.testing.assert_allclose(attributes.slant(imgs[:, :, ::-1]), -got, atol=1e-5)  # mirror flips the lean
  np.testing.assert_allclose(attributes.slant_degrees(imgs), angle, atol=1.5)


def test_moments_of_a_single_pixel_and_shape_check():
  img = -np.ones((1, 28, 28, 1), np.float32)
  img[0, 5, 9, 0] = 1.0
  centroid, cov = attributes.moments(jnp.asarray(img))
  np.testing.assert_allclose(centroid, [[5.0, 9.0]], atol=1e-5)
  np.testing.assert_allclose(cov, 0.0, atol=1e-5)
  assert float(attributes.slant(jnp.asarray(img))[0]) == 0.0  # mu02 = 0: no slant rather than NaN
  with pytest.raises(ValueError, match=r"\[B, H, W, 1\]"):
    attributes.thickness(jnp.zeros((2, 28, 28, 3)))


# --- CLI ------------------------------------------------------------------------------------------


def test_concept_names_and_selection():
  assert latent_figures.parse_concept("thick7") == ("thick", 7)
  assert latent_figures.parse_concept("3") == (None, 3)
  assert latent_figures.parse_concept("upright") == ("upright", None)
  for bad in ("fat7", "77", "thick_7", ""):
    with pytest.raises(ValueError, match="bad concept name"):
      latent_figures.parse_concept(bad)
  scores = {
    "thickness": np.array([0.1, 0.5, 0.3, 0.9, 0.2]),
    "slant": np.zeros(5),
    "abs_slant": np.zeros(5),
    "label": np.array([7, 7, 7, 7, 1]),
    "confidence": np.array([0.95, 0.99, 0.97, 0.5, 0.99]),
  }
  assert latent_figures.concept_indices("thick7", scores, k=2).tolist() == [1, 2]  # 3 is not confident
  assert latent_figures.concept_indices("thin7", scores, k=2).tolist() == [0, 2]
  assert latent_figures.concept_indices("7", scores, k=1).tolist() == [1]
  assert latent_figures.concept_indices("thick", scores, k=1).tolist() == [3]
  with pytest.raises(ValueError, match="only 1 of 5"):
    latent_figures.concept_indices("1", scores, k=2)
  with pytest.raises(ValueError, match="needs a digit classifier"):
    latent_figures.concept_indices("thin1", {k: v for k, v in scores.items() if k not in ("label", "confidence")})


@pytest.fixture(scope="module")
def untrained_run(tmp_path_factory):
  """A workdir with a step-0 checkpoint of the smoke DCGAN (untrained: the CLI's plumbing, not its pictures)."""
  from jgan import checkpoint as ckpt_lib
  from tests.helpers import load_config, setup

  workdir = tmp_path_factory.mktemp("latent_run")
  config, _, state = setup(load_config("smoke"), (28, 28, 1), jax.random.key(0))
  config.checkpoint.async_save = False
  ckpt = ckpt_lib.Checkpointer(ckpt_lib.checkpoint_dir(str(workdir)), config.checkpoint, config=config)
  ckpt.save(0, state, {})
  ckpt.wait()
  ckpt.close()
  return str(workdir)


def _fake_classifier(path, required):
  """Pseudo-random digits (a hash of the pixels) with probability ~1; features: the flat image."""
  del path, required
  w = jax.random.normal(jax.random.key(1), (28 * 28,))

  def logits(x):
    digit = (jnp.floor(jnp.abs(x.reshape(x.shape[0], -1) @ w) * 1e3) % 10).astype(jnp.int32)
    return 50.0 * jax.nn.one_hot(digit, 10)

  return (lambda x: x.reshape(x.shape[0], -1)), logits


def test_cli_errors_are_one_line(untrained_run, tmp_path, capsys):
  cases = [
    (["--workdir", untrained_run, "--op", "morph"], "unknown op 'morph'; valid choices: interpolate, walk"),
    (["--workdir", str(tmp_path / "nope"), "--op", "walk"], "does not exist"),
    (["--workdir", str(tmp_path), "--op", "walk"], "no checkpoint"),
    (["--workdir", untrained_run, "--op", "walk", "--method", "cubic"], "unknown --method 'cubic'"),
    (["--op", "walk"], "required: --workdir"),
    (
      [
        "--workdir",
        untrained_run,
        "--op",
        "arithmetic",
        "--expr",
        "thick7 - thin7",
        "--classifier",
        str(tmp_path / "noclf"),
      ],
      "no trained domain classifier",
    ),
    (["--workdir", untrained_run, "--op", "arithmetic", "--expr", "thick - fat"], "bad concept name 'fat'"),
    (["--workdir", untrained_run, "--op", "walk", "--label", "3"], "--label=3 needs a class-conditional generator"),
  ]
  for argv, msg in cases:
    assert latent_cli.main(argv) == 2, argv
    err = capsys.readouterr().err.strip().splitlines()
    assert err and msg in err[-1] and err[-1].startswith("error: "), (argv, err)


def test_launch_dispatches_latent():
  import subprocess
  import sys

  from tests.helpers import ROOT

  r = subprocess.run(
    [sys.executable, "launch.py", "latent", "--workdir", ".", "--op", "morph"],
    cwd=ROOT,
    capture_output=True,
    check=False,
    text=True,
    timeout=300,
  )
  assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: argument --op: unknown op 'morph'")


@pytest.mark.slow
def test_cli_ops_write_figures_and_redrawable_z(untrained_run, tmp_path, monkeypatch, capsys):
  monkeypatch.setattr(latent_figures, "_logits_fn", _fake_classifier)
  out = str(tmp_path / "out")
  common = ["--workdir", untrained_run, "--out", out, "--scale", "1"]
  assert latent_cli.main(common + ["--op", "interpolate", "--n", "2", "--frames", "3"]) == 0
  assert latent_cli.main(common + ["--op", "walk", "--n", "2", "--points", "2", "--frames", "2"]) == 0
  assert (
    latent_cli.main(
      common + ["--op", "arithmetic", "--pool", "300", "--expr", "thick3 - thin3 + thin5", "--min-confidence", "0.5"]
    )
    == 0
  )
  assert latent_cli.main(common + ["--op", "neighbours", "--n", "3"]) == 0
  assert "median pixel NN distance: samples" in capsys.readouterr().err
  for f in ("interpolate.png", "interpolate_sheet.png", "walk.gif", "walk.png", "arithmetic.png", "neighbours.png"):
    assert os.path.getsize(os.path.join(out, f)) > 0, f
  z = np.load(os.path.join(out, "interpolate.npz"))["z"]
  assert z.shape == (2, 3, 16)
  from PIL import Image

  gif = Image.open(os.path.join(out, "walk.gif"))
  assert gif.n_frames == 4  # 2 points x 2 frames per leg, closed
  walk = np.load(os.path.join(out, "walk.npz"))
  assert walk["z"].shape == (2, 4, 16)
  np.testing.assert_allclose(walk["z"][:, 0], walk["points"][:, 0], atol=1e-6)
  arith = np.load(os.path.join(out, "arithmetic.npz"))
  assert arith["z"].shape == (8, 16) and arith["indices"].shape == (3, 3)
  # Redrawing from the saved z's: the result row is G(concepts' combination) (+ noise after row 0).
  c = dict(zip(arith["names"].tolist(), arith["concepts"]))
  np.testing.assert_allclose(arith["z"][0], c["thick3"] - c["thin3"] + c["thin5"], atol=1e-5)
  np.testing.assert_allclose(c["thin5"], arith["pool"][arith["indices"][2]].mean(0), atol=1e-6)
  nb = np.load(os.path.join(out, "neighbours.npz"))
  assert nb["z"].shape == (512, 16) and nb["pixel_index"].shape == nb["feature_index"].shape == (512, 1)


def test_conditional_latent_figures_hold_one_class(tmp_path):
  """A conditional run's g draws every sample from the --label class: equal to G(z, label) called directly."""
  from jgan import checkpoint as ckpt_lib
  from jgan import state as state_lib
  from tests.helpers import load_config, setup

  c = load_config("smoke")
  c.model.conditional = True
  config, _, state = setup(c, (28, 28, 1), jax.random.key(0))
  config.checkpoint.async_save = False
  ckpt = ckpt_lib.Checkpointer(ckpt_lib.checkpoint_dir(str(tmp_path)), config.checkpoint, config=config)
  ckpt.save(0, state, {})
  ckpt.wait()
  ckpt.close()
  z = np.asarray(jax.random.normal(jax.random.key(5), (6, config.model.latent_dim)), np.float32)
  for label in (None, 7):
    g, _ = latent_figures.load_generator_fn(str(tmp_path), label=label, batch_size=4)
    want = state_lib.generate(state, jnp.asarray(z), jnp.full((6,), label or 0, jnp.int32))
    np.testing.assert_allclose(g(z), np.asarray(want), atol=1e-5)
  with pytest.raises(ValueError, match="--label=10 is not a class of this generator; valid: 0..9"):
    latent_figures.load_generator_fn(str(tmp_path), label=10)
