"""The on-device data path and the batch-level host pipeline give today's batches, bit for bit.

References, independent of the code under test:

* Grain's own C++ ``index_shuffle`` (the permutation :mod:`jgan.data.index_shuffle` re-implements);
* today's host pipeline, built here from its parts as it was (``make_image_dataset``: a Grain map per
  example through ``preprocess_image``, Grain's batching), against which both the on-device batches
  (:mod:`jgan.data.on_device`) and the batch-level host pipeline (:mod:`jgan.data.pipeline`) are compared
  for 50 batches, across epoch boundaries, after a resume mid-epoch, per process share;
* a whole training run with the host pipeline (``data.on_device=off``) against the same run on device;
* the batches and the run again on a dataset prepared from a user's own images (``jgan data prepare PATH``,
  :mod:`jgan.data.folder_datasets`).
"""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest
from grain._src.python.experimental.index_shuffle.python import index_shuffle_module as grain_shuffle

from jgan import config as config_lib
from jgan import data as data_lib
from jgan import resume, train
from jgan.data import index_shuffle, on_device
from tests.helpers import load_config

CALLS = 50


def _todays_batches(data_cfg, per_call: int, seed: int, shard_index: int = 0, shard_count: int = 1):
  """The host pipeline as it was: one map per example (preprocess_image), Grain's batch."""
  ds = data_lib.make_image_dataset(data_cfg, seed, None, shard_index, shard_count)
  return iter(ds.batch(per_call, drop_remainder=True).to_iter_dataset())


def _device_batches(data_cfg, lead, seed, process_count=1, with_labels=True):
  """``(cursor, jitted batch function, arrays)`` of the on-device path for calls of ``lead`` examples."""
  arrays, n = on_device.load(data_cfg, data_lib.training_source(data_cfg))
  fn = functools.partial(
    on_device.batch,
    offs=on_device.offsets(lead, process_count),
    n=n,
    seed=seed,
    stacked=data_lib.image_spec(data_cfg).stacked,
    with_labels=with_labels,
  )
  return on_device.make_iterator(data_cfg, lead, n), jax.jit(fn), jax.device_put(arrays)


def _equal(host: dict, dev: dict, lead) -> None:
  x = np.asarray(dev["x"])
  want = host["x"].reshape(x.shape)
  assert x.dtype == want.dtype == np.float32 and x.tobytes() == want.tobytes()  # bit for bit
  assert np.array_equal(np.asarray(dev["label"]), host["label"].reshape(lead))


@pytest.mark.parametrize("n", [2, 3, 17, 4500, 65_537, 128_000])
def test_index_shuffle_is_grains_permutation(n):
  """Whole epochs (a sample of positions for the largest) for several seeds, numpy and jitted."""
  idx = np.arange(n) if n <= 70_000 else np.random.default_rng(0).integers(0, n, 2000)
  for seed in (0, 3, 2**32 - 1):
    want = [grain_shuffle.index_shuffle(int(i), max_index=n - 1, seed=seed, rounds=4) for i in idx]
    assert index_shuffle.shuffle(idx, n, seed).tolist() == want
    jitted = jax.jit(lambda i: index_shuffle.shuffle(i, n, seed, jax.numpy))(idx)
    assert np.asarray(jitted).tolist() == want


@pytest.fixture(scope="module")
def prepared_images(tmp_path_factory) -> str:
  """The data directory of ``cells``: 150 RGB images of three sizes in 3 class folders, prepared at 32 px by
  ``jgan data prepare PATH`` (the library call), as a user's own images are."""
  from PIL import Image

  from jgan.data import folder_datasets

  root = tmp_path_factory.mktemp("cells")
  rng = np.random.default_rng(0)
  for i in range(150):
    folder = root / "images" / f"class{i % 3}"
    folder.mkdir(parents=True, exist_ok=True)
    h, w = [(40, 48), (32, 32), (64, 50)][i % 3]
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
  data_dir = str(root / "tfds")
  req = folder_datasets.Request(str(root / "images"), "cells", 32, labels="subfolders", data_dir=data_dir)
  folder_datasets.prepare(req, progress=False)
  return data_dir


@pytest.mark.parametrize(
  "name,size,n_critic,steps_per_call,extra",
  [
    ("mnist5k", 28, 1, 1, {}),
    ("mnist5k", 32, 2, 1, {}),  # zero-padded digits, two critic batches per call
    ("mnist5k", 28, 1, 2, {"num_examples": 300}),  # a subset: many epochs in 50 calls; fused steps
    ("stacked_mnist5k", 32, 1, 1, {}),
    ("cells", 32, 1, 1, {}),  # a user's own images (jgan data prepare PATH): 150 examples, many epochs
    ("cells", 32, 2, 1, {"num_examples": 100}),
  ],
)
def test_first_50_batches_equal_todays_host_batches_also_after_a_mid_epoch_resume(
  name, size, n_critic, steps_per_call, extra, request
):
  c = load_config("dcgan_mnist5k")
  c.data.name, c.data.image_size = name, size
  c.data.update(extra)
  if name == "cells":
    c.data.data_dir = request.getfixturevalue("prepared_images")
    assert on_device.use_on_device(c.data, lambda: data_lib.training_source(c.data))  # auto: it fits
  seed, b = 7, 64
  lead = ((steps_per_call,) if steps_per_call > 1 else ()) + (n_critic, b)
  per_call = int(np.prod(lead))
  host = _todays_batches(c.data, per_call, seed)
  cursor, fn, arrays = _device_batches(c.data, lead, seed)
  batched = data_lib.make_iterator(c.data, per_call, seed=seed)  # the batch-level host pipeline
  for _ in range(CALLS):
    h = next(host)
    _equal(h, fn(arrays, *next(cursor)), lead)
    hb = next(batched)
    assert hb["x"].tobytes() == h["x"].tobytes() and np.array_equal(hb["label"], h["label"])
  # Resume mid-epoch (37 calls of 64 are 2368 of mnist5k's 4500) from the host pipeline's saved state.
  host = _todays_batches(c.data, per_call, seed)
  for _ in range(37):
    next(host)
  state = host.get_state()
  cursor, fn, arrays = _device_batches(c.data, lead, seed)
  cursor.set_state(state)
  for _ in range(CALLS):
    _equal(next(host), fn(arrays, *next(cursor)), lead)
  assert cursor.get_state() == host.get_state() == {"next_index": 37 + CALLS}


def test_each_process_gets_its_share_of_the_global_batch():
  """Two processes: process p's host batches (Grain's ds[p::2]) are rows p*B/2.. of the on-device batch."""
  c = load_config("dcgan_mnist5k")
  lead, seed = (2, 32), 5
  hosts = [_todays_batches(c.data, 2 * 16, seed, p, 2) for p in range(2)]
  cursor, fn, arrays = _device_batches(c.data, lead, seed, process_count=2)
  for _ in range(10):
    parts = [next(h) for h in hosts]
    glob = {k: np.concatenate([p[k].reshape((2, 16) + p[k].shape[1:]) for p in parts], axis=1) for k in ("x", "label")}
    _equal(glob, fn(arrays, *next(cursor)), lead)


def test_worker_count_0_and_2_give_the_same_batches_and_resume():
  c = load_config("dcgan_mnist5k")
  got = {}
  for workers in (0, 2):
    c.data.worker_count = workers
    it = data_lib.make_iterator(c.data, 64, seed=3)
    got[workers] = [next(it) for _ in range(CALLS)]
    if workers:
      state = it.get_state()
      again = data_lib.make_iterator(c.data, 64, seed=3)
      again.set_state(state)
      assert next(again)["x"].tobytes() == next(it)["x"].tobytes()
      again.close()
      it.close()
  for a, b in zip(got[0], got[2]):
    assert a["x"].tobytes() == b["x"].tobytes() and np.array_equal(a["label"], b["label"])


def _leaves(workdir):
  state, _ = resume.load_state(str(workdir))
  return [
    np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x)
    for x in jax.tree.leaves(state)
  ]


@pytest.mark.parametrize("dataset,objective", [("mnist5k", ""), ("cells", ""), ("mnist5k", "rpgan")])
def test_a_run_on_device_equals_the_host_pipeline_run_on_a_two_device_mesh(dataset, objective, tmp_path, request):
  """The smoke DCGAN, batch sharded over 2 devices, conditional (labels too): every state leaf equal. Also on
  a user's own images (``cells``, prepared from a folder with class sub-folders), and with RpGAN, whose step
  reads n_critic + 1 real batches (G's own, with its labels)."""
  runs = {}
  for mode in ("off", "on"):
    c = load_config("smoke")
    if objective:
      config_lib.set_component(c, "objective", objective)
    c.parallel.num_devices = 2
    c.model.conditional = True
    c.data.on_device = mode
    if dataset == "cells":
      c.data.name, c.data.image_size = "cells", 32
      c.data.data_dir = request.getfixturevalue("prepared_images")
    train.train_and_evaluate(c, str(tmp_path / mode))
    runs[mode] = _leaves(tmp_path / mode)
  assert len(runs["on"]) == len(runs["off"]) > 10
  for a, b in zip(runs["on"], runs["off"]):
    assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.mark.parametrize(
  "name,settings,match",
  [
    ("mnist5k", {"on_device": "maybe"}, r"unknown data\.on_device='maybe'; valid choices: auto, on, off"),
    ("mnist5k", {"on_device": "on", "device_limit_mb": 0}, r"exceeds data\.device_limit_mb=0.*valid choices: auto"),
    ("mnist5k", {"device_limit_mb": -1}, r"data\.device_limit_mb=-1 must be >= 0"),
    ("ring8", {"on_device": "on"}, r"data\.name='ring8' is sampled"),
  ],
)
def test_bad_on_device_settings_fail_in_one_line(name, settings, match):
  c = load_config("smoke")
  c.data.name = name
  c.data.update(settings)
  if name == "ring8":
    config_lib.set_component(c, "model", "mlp")  # a 2-D mixture's model: the data path is what refuses
  with pytest.raises(ValueError, match=match) as e:  # the schema's checks (resolve), then the path's own
    c = config_lib.resolve(c)
    on_device.use_on_device(c.data, lambda: data_lib.training_source(c.data))
  assert "\n" not in str(e.value)


def test_auto_keeps_oversized_datasets_on_the_host():
  c = load_config("smoke")
  source = lambda: data_lib.training_source(c.data)
  assert on_device.use_on_device(c.data, source)
  c.data.device_limit_mb = 1  # mnist5k's 4500 digits are 3.4 MiB
  assert not on_device.use_on_device(c.data, source)
  c.data.device_limit_mb, c.data.on_device = 2048, "off"
  assert not on_device.use_on_device(c.data, source)
