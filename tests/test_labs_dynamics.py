"""Tests of the game-dynamics lab: closed forms vs autodiff, orbit/spiral behaviour, Mescheder et al.'s
Dirac-GAN findings, and the report CLI."""

from __future__ import annotations

import csv
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan import objectives as objectives_lib
from jgan.cli import dynamics as dynamics_cli
from jgan.labs import dynamics
from jgan.labs.dynamics import report as dynamics_report

LRS = (0.01, 0.05, 0.1, 0.3, 0.5, 0.7, 1.0, 1.2, 1.5)
START = np.array([1.0, 1.0], np.float32)
D0 = math.sqrt(2.0)


def _final_distances(game, spec, steps=1000, lr=0.1):
  zs = dynamics.trajectory(game, dynamics.make_update_rule(spec, lr), START, steps)
  return np.asarray(dynamics.distance_to_equilibrium(game, zs))


# (1) Spectral radius of the step operator on the bilinear game: autodiff == closed form.


@pytest.mark.parametrize(
  "spec", ["simultaneous", "alternating", "extragradient", "optimistic", "consensus", "consensus:gamma=3.0"]
)
def test_bilinear_spectral_radius_matches_closed_form(spec):
  jacobians = dynamics.step_jacobians(dynamics.bilinear(), spec, LRS)  # one compilation, lr vmapped
  for lr, jac in zip(LRS, jacobians):
    measured = dynamics.spectral_radius(jac)
    assert measured == pytest.approx(dynamics.bilinear_spectral_radius(spec, lr), abs=1e-6), (spec, lr)


def test_step_spectral_radius_of_one_rule():
  rule = dynamics.make_update_rule("extragradient", 0.7)
  assert dynamics.step_spectral_radius(dynamics.bilinear(), rule) == pytest.approx(
    math.sqrt(1 - 0.49 + 0.7**4), abs=1e-6
  )


def test_every_closed_form_is_tested():
  assert set(dynamics.BILINEAR_SPECTRAL_RADIUS) == {
    "simultaneous",
    "alternating",
    "extragradient",
    "optimistic",
    "consensus",
  }


def test_bilinear_step_matrices_are_the_derived_ones():
  """The 2x2 matrices of docs/dynamics.md, entry by entry (the derivations, not just their radii)."""
  game, lr = dynamics.bilinear(), 0.3
  expected = {
    "simultaneous": [[1, -lr], [lr, 1]],
    "alternating": [[1, -lr], [lr, 1 - lr**2]],
    "extragradient": [[1 - lr**2, -lr], [lr, 1 - lr**2]],
    "consensus": [[1 - lr, -lr], [lr, 1 - lr]],
  }
  for spec, m in expected.items():
    np.testing.assert_allclose(dynamics.step_jacobian(game, dynamics.make_update_rule(spec, lr)), m, atol=1e-6)
  # Optimistic GD acts on (z_t, v(z_{t-1})): [[I - 2 lr J, lr I], [J, 0]] with v(z) = J z, J = [[0, 1], [-1, 0]].
  j = np.array([[0, 1], [-1, 0]])
  m = np.block([[np.eye(2) - 2 * lr * j, lr * np.eye(2)], [j, np.zeros((2, 2))]])
  np.testing.assert_allclose(dynamics.step_jacobian(game, dynamics.make_update_rule("optimistic", lr)), m, atol=1e-6)
  assert dynamics.alternating(lr).name == "alternating"


def test_alternating_beyond_lr_2_has_real_eigenvalues():
  lrs = (2.5, 3.0)
  for lr, jac in zip(lrs, dynamics.step_jacobians(dynamics.bilinear(), "alternating", lrs)):
    measured = dynamics.spectral_radius(jac)
    assert measured == pytest.approx(dynamics.bilinear_spectral_radius("alternating", lr), rel=1e-6)
    assert measured > 1


# (2) Qualitative behaviour on V(x, y) = x y: 1,000 steps at lr 0.1 from (1, 1).


def test_bilinear_simultaneous_spirals_out_at_the_predicted_rate():
  dist = _final_distances(dynamics.bilinear(), "simultaneous")
  assert dist[-1] > 100 * D0  # 204.7: the step is a scaled rotation, |z_T| = sqrt(1 + lr^2)^T |z_0|
  assert dist[-1] == pytest.approx(D0 * math.sqrt(1.01) ** 1000, rel=1e-3)
  assert np.all(np.diff(dist) > 0)


def test_bilinear_alternating_stays_on_an_orbit():
  dist = _final_distances(dynamics.bilinear(), "alternating")
  # det = 1 but the matrix is not normal: the orbit is an ellipse through the start, |z| in [1.345, 1.414].
  assert np.all(dist > D0 / 1.1) and np.all(dist < D0 * 1.1)


@pytest.mark.parametrize("spec,bound", [("extragradient", 1e-2), ("optimistic", 1e-2), ("consensus", 1e-10)])
def test_bilinear_fixes_converge(spec, bound):
  dist = _final_distances(dynamics.bilinear(), spec)
  assert dist[-1] < bound  # 9.8e-3, 8.9e-3, 0 (float32 underflow)
  rho = dynamics.bilinear_spectral_radius(spec, 0.1)
  if spec != "consensus":  # the decay follows the spectral radius: |z_T| ~ rho^T |z_0|
    assert dist[-1] / (D0 * rho**1000) == pytest.approx(1.0, rel=0.05)


def test_optax_sgd_is_plain_gradient_play():
  game = dynamics.bilinear()
  for optax_spec, spec in (("sgd", "simultaneous"), ("alt_sgd", "alternating")):
    a = dynamics.trajectory(game, dynamics.make_update_rule(optax_spec, 0.1), START, 200)
    b = dynamics.trajectory(game, dynamics.make_update_rule(spec, 0.1), START, 200)
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_optax_rules_run_and_adaptive_ones_have_no_linear_operator():
  game = dynamics.bilinear()
  for spec in ("adam", "alt_adam:b1=0.5", "rmsprop", "sgd:momentum=0.9"):
    rule = dynamics.make_update_rule(spec, 0.1)
    zs = dynamics.trajectory(game, rule, START, 50)
    assert zs.shape == (51, 2) and bool(jnp.all(jnp.isfinite(zs)))
  assert math.isnan(dynamics.step_spectral_radius(game, dynamics.make_update_rule("adam", 0.1)))
  # Heavy-ball momentum is a fixed linear map on (z, momentum): 4x4, and it destabilises the bilinear game.
  jac = dynamics.step_jacobian(game, dynamics.make_update_rule("sgd:momentum=0.9", 0.1))
  assert jac.shape == (4, 4) and dynamics.spectral_radius(jac) > 1


@pytest.mark.parametrize("spec", ["nope", "alt_nope", "consensus:bad=1", "adam:b9=1"])
def test_bad_method_specs_name_the_value(spec):
  with pytest.raises(ValueError, match="valid"):
    dynamics.make_update_rule(spec, 0.1)
  with pytest.raises(ValueError, match="expected key=value"):
    dynamics.make_update_rule("simultaneous:lr", 0.1)


def test_unknown_method_lists_choices():
  with pytest.raises(ValueError, match=r"unknown method 'nope'; valid choices: simultaneous, alternating"):
    dynamics.parse_method("nope")
  with pytest.raises(ValueError, match="unknown game 'go'; valid choices: bilinear, dirac"):
    dynamics.make_game("go")


# (3) The Dirac-GAN (Mescheder, Geiger & Nowozin 2018).


def test_dirac_linearisation_is_a_rotation():
  """Mescheder et al.'s Lemma 2.2: the vector field's Jacobian at (0, 0) is [[0, -f'(0)], [f'(0), 0]]."""
  game, lr = dynamics.make_game("dirac"), 0.1  # non-saturating, f'(0) = 1/2
  jac = dynamics.step_jacobian(game, dynamics.simultaneous(lr))
  np.testing.assert_allclose(jac, [[1, lr / 2], [-lr / 2, 1]], atol=1e-7)
  assert dynamics.spectral_radius(jac) == pytest.approx(math.sqrt(1 + lr**2 / 4), abs=1e-6)


def test_dirac_unregularised_does_not_converge():
  ns = dynamics.make_game("dirac", objective="non_saturating")
  sim = _final_distances(ns, "simultaneous")
  assert sim[500:].min() > 0.4  # a limit cycle of radius ~0.445 (it stays there for 200,000 steps)
  alt = _final_distances(ns, "alternating")
  assert alt[-1] > 0.2  # |lambda| = 1 exactly: at best sublinear decay (~0.27 here, 0.02 after 200k steps)
  assert dynamics.step_spectral_radius(ns, dynamics.alternating(0.1)) == pytest.approx(1.0, abs=1e-6)
  mm = dynamics.make_game("dirac", objective="minimax")
  assert _final_distances(mm, "simultaneous")[-1] > D0  # spirals out: 2.76
  assert _final_distances(mm, "alternating")[500:].min() > 0.9 * D0  # circles


@pytest.mark.parametrize("params", [{"r1": 1.0}, {"r2": 1.0}, {"instance_noise": 1.0, "noise_points": 16}])
@pytest.mark.parametrize("spec", ["simultaneous", "alternating"])
def test_dirac_regularised_converges(params, spec):
  game = dynamics.make_game("dirac", objective="non_saturating", **params)
  dist = _final_distances(game, spec)
  assert dist[-1] < 1e-6  # R1/R2: ~1e-17 or 0; instance noise sigma=1: ~6e-8 (float32 noise floor)


@pytest.mark.parametrize(
  "params,gamma",
  [
    ({"r1": 0.5}, 0.5),
    ({"r2": 2.0}, 2.0),
    ({"instance_noise": 1.0, "noise_points": 16}, 0.5),
    ({"instance_noise": 2.0}, 2.0),
  ],
)
def test_dirac_regularised_linearisation(params, gamma):
  """Jacobian of v at (0, 0): [[0, -1/2], [1/2, gamma]], with gamma = sigma^2 / 2 for instance noise."""
  lr = 0.1
  step = np.eye(2) - lr * np.array([[0, -0.5], [0.5, gamma]])
  measured = dynamics.step_jacobian(dynamics.make_game("dirac", **params), dynamics.simultaneous(lr))
  np.testing.assert_allclose(measured, step, atol=1e-6)


def test_dirac_r1_is_the_closed_form():
  plain, reg = dynamics.make_game("dirac"), dynamics.make_game("dirac", r1=2.0, r2=0.5)
  theta, psi = jnp.array([0.7]), jnp.array([-1.3])
  extra = reg.losses(theta, psi)[1] - plain.losses(theta, psi)[1]
  assert float(extra) == pytest.approx((2.0 / 2 + 0.5 / 2) * 1.3**2, rel=1e-5)  # gamma/2 psi^2 each
  assert float(reg.losses(theta, psi)[0]) == float(plain.losses(theta, psi)[0])  # G's loss untouched
  from jgan import penalties

  real, d_fn = jnp.zeros((1, 1)), lambda x: psi[0] * x[..., 0]
  assert float(penalties.r1(d_fn, real, real, None, gamma=2.0)) == pytest.approx(1.3**2, rel=1e-5)


def test_dirac_wgan_with_clipping_does_not_converge():
  game = dynamics.make_game("dirac", objective="wasserstein", clip=1.0)
  for spec in ("simultaneous", "alternating", "alternating:y_steps=5"):
    dist = _final_distances(game, spec)
    assert dist[500:].min() > 0.4, spec  # oscillates with |psi| pinned near c: 1.0, 0.97, 0.44


def test_every_logit_objective_has_its_equilibrium_at_zero():
  names = dynamics.logit_objectives()
  assert {"minimax", "non_saturating"} <= set(names)
  games = [dynamics.make_game("dirac", objective=n) for n in names]
  # One compilation for all objectives (compiling is what costs time here).
  fields = jax.jit(lambda z: [jnp.concatenate(dynamics.vector_field(g, z, z)) for g in games])(jnp.zeros((1,)))
  for name, v in zip(names, fields):
    assert float(jnp.max(jnp.abs(v))) < 1e-6, name


def test_dirac_rejects_non_logit_objectives():
  energy = [n for n in objectives_lib.OBJECTIVES if n not in dynamics.logit_objectives()]
  for name in energy[:1]:
    with pytest.raises(ValueError, match="valid choices"):
      dynamics.make_game("dirac", objective=name)
  with pytest.raises(ValueError, match="unknown objective 'nope'"):
    dynamics.make_game("dirac", objective="nope")


def test_flow_on_grid_is_minus_the_vector_field():
  xs = jnp.array([-1.0, 0.0, 2.0])
  u, w = dynamics.flow_on_grid(dynamics.bilinear(), xs, xs[:2])
  assert u.shape == (2, 3)
  x, y = np.meshgrid(np.asarray(xs), np.asarray(xs[:2]))
  np.testing.assert_allclose(u, -y)  # -v = (-y, x) for V = x y
  np.testing.assert_allclose(w, x)


# (4) The report CLI.


def test_cli_writes_its_three_files(tmp_path, capsys):
  workdir = str(tmp_path / "bil")
  rc = dynamics_cli.main(
    [
      "--game",
      "bilinear",
      "--methods",
      "simultaneous,extragradient",
      "--steps",
      "20",
      "--workdir",
      workdir,
      "--dpi",
      "40",
    ]
  )
  assert rc == 0
  for name in ("dynamics.png", "dynamics.md", "dynamics.csv"):
    assert os.path.getsize(os.path.join(workdir, name)) > 0
  with open(os.path.join(workdir, "dynamics.csv")) as f:
    rows = list(csv.DictReader(f))
  assert [r["method"] for r in rows] == ["simultaneous", "extragradient"]
  assert float(rows[0]["spectral_radius"]) == pytest.approx(math.sqrt(1.01), abs=1e-6)
  assert "| bilinear | extragradient |" in capsys.readouterr().out


def test_cli_dirac_variants(tmp_path):
  argv = ["--game", "dirac", "--methods", "simultaneous", "--steps", "10", "--workdir", str(tmp_path)]
  parse = dynamics_cli.build_parser().parse_args
  games = dynamics_report.game_variants(parse(argv + ["--r1", "0,1", "--clip", "none,0.5"]))
  assert [g.name for g in games] == [
    "dirac(non_saturating)",
    "dirac(non_saturating, clip=0.5)",
    "dirac(non_saturating, r1=1)",
    "dirac(non_saturating, r1=1, clip=0.5)",
  ]
  games = dynamics_report.game_variants(parse(argv + ["--variants", "none;instance_noise=0.5,objective=minimax"]))
  assert [g.name for g in games] == ["dirac(non_saturating)", "dirac(minimax, noise=0.5)"]


@pytest.mark.parametrize(
  "argv,message",
  [
    (["--methods", "simultaneous,bogus"], "unknown method 'bogus'; valid choices: simultaneous, alternating"),
    (["--game", "chess"], "unknown game 'chess'; valid choices: bilinear, dirac"),
    (["--game", "dirac", "--objective", "nope"], "non-logit objective 'nope'; valid choices: "),
    (["--game", "bilinear", "--r1", "1"], "apply to --game dirac only"),
  ],
)
def test_cli_rejects_bad_names_before_compiling(tmp_path, monkeypatch, capsys, argv, message):
  def no_compiling(*args, **kwargs):
    raise AssertionError("compiled before validating")

  monkeypatch.setattr(dynamics, "trajectory", no_compiling)
  assert dynamics_cli.main(argv + ["--workdir", str(tmp_path / "x")]) == 2
  text = capsys.readouterr().err
  assert text.startswith("error: ") and message in text and text.count("\n") == 1
  assert not os.path.exists(tmp_path / "x")


def test_distance_to_equilibrium_keeps_tiny_distances():
  """float32 iterates 1e-20 from the equilibrium: the distance is not 0 (squares underflow in float32;
  the true values in docs/dynamics.md were 9.4e-21 and 1.2e-19), against a float64 reference."""
  game = dynamics.make_game("bilinear")
  zs = np.array(
    [[1e-20, 2e-20], [9.4e-21, 0.0], [3.0, 4.0], [0.0, 0.0], [1e-37, 1e-37]], np.float32
  )  # down to float32's smallest normals
  got = np.asarray(dynamics.distance_to_equilibrium(game, zs))
  ref = np.linalg.norm(zs.astype(np.float64) - np.asarray(game.equilibrium_vector(), np.float64), axis=-1)
  np.testing.assert_allclose(got, ref, rtol=1e-6)
  assert got[0] > 0 and got[3] == 0
