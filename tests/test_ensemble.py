"""Seed-parallel ensembles (jgan.ensemble) against their independent single runs.

The reference for member i is :func:`jgan.train.train_and_evaluate` on the same config with
``seed = base seed + i``, trained in its own workdir: the ensemble must reproduce it (issue
"Seed-parallel ablations": within 1e-5 on every state leaf after 200 steps; with ``map`` members,
the CPU default, it is bit-identical). Resume, single-member restore, NaN freezing and vmapped
hyperparameters are checked the same way.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan import config as config_lib
from jgan import ensemble, resume, train
from jgan.labs import mode_collapse


def ring8(steps=200, seed=0, devices=1):
  """The ring8 protocol, short. Single runs use one device (the tests see 8 CPU devices, conftest.py):
  an ensemble keeps each member's batch on one device, a single run would split it over all 8."""
  c = mode_collapse.config("ring8")
  c.parallel.num_devices = devices
  c.train.steps, c.train.steps_per_call, c.train.log_every = steps, 50, 50
  c.checkpoint.every_steps = 100
  c.train.progress = False
  c.seed = seed
  return c


def leaves(state) -> list[np.ndarray]:
  """The state's leaves as float64 / int arrays (typed keys as their key data)."""
  f = lambda x: jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x
  return [np.asarray(x) for x in jax.tree.leaves(jax.tree.map(f, state))]


def max_diff(a, b) -> float:
  la, lb = leaves(a), leaves(b)
  assert len(la) == len(lb)
  return max(float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)), initial=0.0)) for x, y in zip(la, lb))


def identical(a, b) -> bool:
  return all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b)))


def read_metrics(path) -> list[dict]:
  """metrics.jsonl rows without the wall-clock field."""
  return [{k: v for k, v in json.loads(line).items() if k != "steps_per_sec"} for line in open(path)]


@pytest.fixture(scope="module")
def ens8(tmp_path_factory):
  c = ring8(devices=0)  # the 8 members over the 8 devices, one each
  c.train.num_seeds = 8
  d = str(tmp_path_factory.mktemp("ens8"))
  return ensemble.train_ensemble(c, d), d


@pytest.mark.slow
def test_every_member_equals_its_single_run(ens8, tmp_path):
  result, _ = ens8
  assert result.alive.all() and [m.name for m in result.members] == [f"seed={s}" for s in range(8)]
  for i in range(8):
    single = train.train_and_evaluate(ring8(seed=i), str(tmp_path / f"single{i}"))
    member = ensemble.member_state(result.state, i)
    assert max_diff(member, single) <= 1e-5, f"member {i}"
    assert identical(member, single), f"member {i} (map on CPU: bit-identical)"


def test_two_ensemble_runs_are_bit_identical_and_members_restore_as_runs(ens8, tmp_path):
  result, d = ens8
  c = ring8(devices=0)
  c.train.num_seeds = 8
  again = ensemble.train_ensemble(c, str(tmp_path / "again"))
  assert identical(result.state, again.state)
  # A member's directory is an ordinary run: its checkpoint loads as one, with the member's own seed.
  state, cfg = resume.load_state(os.path.join(d, "seed=3"))
  assert cfg.seed == 3 and cfg.train.num_seeds == 1
  assert identical(state, ensemble.member_state(result.state, 3))
  rows = read_metrics(os.path.join(d, "seed=3", "metrics.jsonl"))
  assert [r["step"] for r in rows] == [50, 100, 150, 200]
  assert rows == read_metrics(tmp_path / "again" / "seed=3" / "metrics.jsonl")


def test_resume_reproduces_the_uninterrupted_ensemble(ens8, tmp_path):
  result, d = ens8
  c = ring8(steps=100, devices=0)
  c.train.num_seeds = 8
  w = str(tmp_path / "resumed")
  ensemble.train_ensemble(c, w)  # stops at 100 with checkpoints there
  c.train.steps = 200
  resumed = ensemble.train_ensemble(c, w)
  assert identical(resumed.state, result.state)
  assert read_metrics(os.path.join(w, "seed=5", "metrics.jsonl")) == read_metrics(
    os.path.join(d, "seed=5", "metrics.jsonl")
  )


def test_a_member_continues_as_a_single_run(ens8, tmp_path):
  """``jgan train`` on a member's directory resumes it as an ordinary run: 200 more steps there equal
  the single run of 400 steps."""
  _, d = ens8
  import shutil

  w = str(tmp_path / "member")
  shutil.copytree(os.path.join(d, "seed=2"), w)
  cont = train.train_and_evaluate(ring8(steps=400, seed=2), w)
  ref = train.train_and_evaluate(ring8(steps=400, seed=2), str(tmp_path / "ref"))
  assert identical(cont, ref)


def test_vmapped_hyperparameters_equal_single_runs_and_nan_freezes_one_member(tmp_path, capsys):
  """Member 0 diverges (G's learning rate 1e30), member 1 trains with D's rate 3e-4: member 0 is frozen
  and reported, member 1 equals its single run with that rate."""
  c = ring8(steps=100)
  members = [{"seed": 0, "optim.g.lr": 1e30}, {"seed": 1, "optim.g.lr": 1e-3, "optim.d.lr": 3e-4}]
  # optim.d.lr differs too: member 0 keeps the config's 1e-4.
  members[0]["optim.d.lr"] = 1e-4
  r = ensemble.train_ensemble(c, str(tmp_path / "e"), members=members)
  assert r.alive.tolist() == [False, True]
  err = capsys.readouterr().err
  assert "member optim.d.lr=0.0001,optim.g.lr=1e+30,seed=0" in err and "frozen at step" in err
  frozen = json.load(open(tmp_path / "e" / "optim.d.lr=0.0001,optim.g.lr=1e+30,seed=0" / "frozen.json"))
  assert frozen["step"] == 0  # its first call (steps 1..50) went non-finite: the initial state is kept
  assert all(np.all(np.isfinite(x)) for x in leaves(ensemble.member_state(r.state, 0)) if x.dtype.kind == "f")
  s = ring8(steps=100, seed=1)
  s.optim.d.lr = 3e-4
  single = train.train_and_evaluate(s, str(tmp_path / "single"))
  assert identical(ensemble.member_state(r.state, 1), single)


def test_vmap_members_agree_with_the_single_step():
  """``parallel.ensemble = vmap`` batches the members' products: one step agrees with the single step
  to float32 rounding (not bit for bit; GAN dynamics can amplify that over many steps)."""
  import functools

  from jgan import components, rng
  from jgan import config as config_lib
  from jgan import data as data_lib
  from jgan import state as state_lib
  from jgan import step as step_lib

  c = config_lib.resolve(ring8())
  ms = ensemble.make_members(c, [{"seed": 0}, {"seed": 1}])
  build = lambda: [components.build(m.config, (2,)) for m in ms]
  parts = build()
  its = [data_lib.make_iterator(m.config.data, 64, seed=m.config.seed) for m in ms]
  batches = [train.stack_batch(next(it), 1, 1) for it in its]
  st = ensemble.stack_states(
    [state_lib.create_state(p, rng.run_keys(m.config.seed).train) for p, m in zip(build(), ms)]
  )
  step = ensemble.make_ensemble_step(c, parts[0], 1, mode="vmap")
  out, _, ok = step(st, jax.tree.map(lambda *x: np.stack(x), *batches), {}, jnp.array([True, True]))
  assert np.asarray(ok).all()
  for i, (p, m) in enumerate(zip(parts, ms)):
    fn = jax.jit(functools.partial(step_lib.train_step, components=p))
    single, _ = fn(state_lib.create_state(p, rng.run_keys(m.config.seed).train), batches[i])
    assert max_diff(ensemble.member_state(out, i), single) < 1e-6  # measured: 7e-9


def test_bad_ensembles_fail_before_compiling(tmp_path):
  c = ring8()
  with pytest.raises(ValueError, match=r"differ only in seed and .*model.pack differs"):
    ensemble.make_members(c, [{"seed": 0}, {"seed": 1, "model.pack": 2}])
  c.parallel.ensemble = "pmap"
  with pytest.raises(ValueError, match=r"unknown parallel.ensemble='pmap'; valid choices: auto, vmap, map"):
    ensemble.make_members(c)
  c = ring8()
  c.train.num_seeds = 4
  with pytest.raises(ValueError, match=r"train.num_seeds=4 trains an ensemble"):
    train.train_and_evaluate(c, str(tmp_path / "x"))
  c.train.num_seeds = 0
  with pytest.raises(ValueError, match=r"train.num_seeds"):
    ensemble.make_members(c)


def test_rpgan_with_lecam_members_equal_their_single_runs(tmp_path):
  """RpGAN (each step reads n_critic + 1 real batches from the member's iterator: G's own batch) with LeCam's
  anchors in the objective state: each member of a 2-seed ensemble is its single run, bit for bit (lax.map
  members on CPU, as test_every_member_equals_its_single_run shows for the default objective)."""

  def config(seed=0, devices=1):
    c = ring8(steps=50, seed=seed, devices=devices)
    config_lib.set_component(c, "objective", "rpgan")
    c.lecam.weight = 0.1
    return c

  c = config(devices=0)
  c.train.num_seeds = 2
  result = ensemble.train_ensemble(c, str(tmp_path / "ensemble"))
  for i in range(2):
    single = train.train_and_evaluate(config(seed=i), str(tmp_path / f"single{i}"))
    member = ensemble.member_state(result.state, i)
    assert float(member.obj_state.alpha_real) != 0.0 and identical(member, single), f"member {i}"
