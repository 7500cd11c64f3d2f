"""FID Inception-v3: the .pth reader, the weight loader (key names, BatchNorm folding), pooling quirks and
the forward pass at 299 px.

The real weights cannot be downloaded here, so the tests write files in PyTorch's formats themselves
(without torch): random weights under the key names and shapes of pytorch-fid's network, listed below
from torchvision's Inception3 source independently of jgan's module. Where torch is installed, it
checks that it reads these files too, and a torch implementation of pytorch-fid's forward pass is the
reference for jgan's features.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jgan.metrics import inception, pth_files

# --- Files in torch.save's formats, written without torch ------------------------------------------


class _Global:
  """A name that the pickler writes as a GLOBAL opcode (torch's classes and functions)."""

  def __init__(self, module, name):
    self.module, self.name = module, name

  def __call__(self, *args):  # save_reduce insists on a callable
    raise NotImplementedError


class _StorageRef:
  def __init__(self, key, array):
    self.key, self.array = key, array


class _TensorRef:
  def __init__(self, storage, offset, size, stride):
    self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

  def __reduce__(self):
    return (
      _Global("torch._utils", "_rebuild_tensor_v2"),
      (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict()),
    )


_STORAGE_NAMES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.int64): "LongStorage"}


class _TorchPickler(pickle._Pickler):  # the pure-Python pickler lets `save` write raw GLOBALs
  def __init__(self, f, legacy=False):
    super().__init__(f, protocol=2)
    self.legacy = legacy

  def persistent_id(self, obj):
    if isinstance(obj, _StorageRef):
      pid = ("storage", _Global("torch", _STORAGE_NAMES[obj.array.dtype]), obj.key, "cpu", obj.array.size)
      return pid + (None,) if self.legacy else pid  # the legacy format adds view metadata
    return None

  def save(self, obj, save_persistent_id=True):
    if isinstance(obj, _Global):
      self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
      return
    super().save(obj, save_persistent_id)


def _refs(state_dict):
  """One storage per tensor; plus, if "shared" is given, a view into another tensor's storage."""
  storages, tree = {}, collections.OrderedDict()
  for name, a in state_dict.items():
    a = np.array(a, order="C")  # (ascontiguousarray would turn a 0-d array 1-d)
    s = storages[str(len(storages))] = _StorageRef(str(len(storages)), a.reshape(-1))
    tree[name] = _TensorRef(s, 0, a.shape, tuple(st // a.itemsize for st in a.strides))
  return storages, tree


def write_torch_zip(path, state_dict, extra_views=()):
  """torch.save's zip format (PyTorch >= 1.6). ``extra_views``: (name, source, offset, size, stride)."""
  storages, tree = _refs(state_dict)
  by_name = {n: t.storage for n, t in tree.items()}
  for name, src, offset, size, stride in extra_views:
    tree[name] = _TensorRef(by_name[src], offset, size, stride)
  buf = io.BytesIO()
  _TorchPickler(buf).dump(tree)
  with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
    zf.writestr("archive/data.pkl", buf.getvalue())
    zf.writestr("archive/byteorder", "little")
    for key, s in storages.items():
      zf.writestr(f"archive/data/{key}", s.array.astype(s.array.dtype.newbyteorder("<")).tobytes())
    zf.writestr("archive/version", "3\n")


def write_torch_legacy(path, state_dict):
  """torch.save's legacy format: magic, protocol, system info, the pickle, storage keys, raw storages."""
  storages, tree = _refs(state_dict)
  with open(path, "wb") as f:
    for header in (
      pth_files.LEGACY_MAGIC,
      1001,
      {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}},
    ):
      pickle.dump(header, f, protocol=2)
    _TorchPickler(f, legacy=True).dump(tree)
    pickle.dump(list(storages), f, protocol=2)
    for s in storages.values():
      f.write(np.int64(s.array.size).tobytes() + s.array.tobytes())


# --- pytorch-fid's layer list, from torchvision's Inception3 (aux_logits=False) ---------------------


def fid_conv_specs():
  """``{name: (cout, cin, kh, kw, stride, pad_h, pad_w)}`` for the 94 BasicConv2d layers."""
  s = {
    "Conv2d_1a_3x3": (32, 3, 3, 3, 2, 0, 0),
    "Conv2d_2a_3x3": (32, 32, 3, 3, 1, 0, 0),
    "Conv2d_2b_3x3": (64, 32, 3, 3, 1, 1, 1),
    "Conv2d_3b_1x1": (80, 64, 1, 1, 1, 0, 0),
    "Conv2d_4a_3x3": (192, 80, 3, 3, 1, 0, 0),
  }
  c1 = lambda co, ci: (co, ci, 1, 1, 1, 0, 0)
  for n, cin, pf in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
    s.update(
      {
        f"{n}.branch1x1": c1(64, cin),
        f"{n}.branch5x5_1": c1(48, cin),
        f"{n}.branch5x5_2": (64, 48, 5, 5, 1, 2, 2),
        f"{n}.branch3x3dbl_1": c1(64, cin),
        f"{n}.branch3x3dbl_2": (96, 64, 3, 3, 1, 1, 1),
        f"{n}.branch3x3dbl_3": (96, 96, 3, 3, 1, 1, 1),
        f"{n}.branch_pool": c1(pf, cin),
      }
    )
  s.update(
    {
      "Mixed_6a.branch3x3": (384, 288, 3, 3, 2, 0, 0),
      "Mixed_6a.branch3x3dbl_1": c1(64, 288),
      "Mixed_6a.branch3x3dbl_2": (96, 64, 3, 3, 1, 1, 1),
      "Mixed_6a.branch3x3dbl_3": (96, 96, 3, 3, 2, 0, 0),
    }
  )
  for n, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
    w, h = lambda co, ci: (co, ci, 1, 7, 1, 0, 3), lambda co, ci: (co, ci, 7, 1, 1, 3, 0)
    s.update(
      {
        f"{n}.branch1x1": c1(192, 768),
        f"{n}.branch7x7_1": c1(c7, 768),
        f"{n}.branch7x7_2": w(c7, c7),
        f"{n}.branch7x7_3": h(192, c7),
        f"{n}.branch7x7dbl_1": c1(c7, 768),
        f"{n}.branch7x7dbl_2": h(c7, c7),
        f"{n}.branch7x7dbl_3": w(c7, c7),
        f"{n}.branch7x7dbl_4": h(c7, c7),
        f"{n}.branch7x7dbl_5": w(192, c7),
        f"{n}.branch_pool": c1(192, 768),
      }
    )
  s.update(
    {
      "Mixed_7a.branch3x3_1": c1(192, 768),
      "Mixed_7a.branch3x3_2": (320, 192, 3, 3, 2, 0, 0),
      "Mixed_7a.branch7x7x3_1": c1(192, 768),
      "Mixed_7a.branch7x7x3_2": (192, 192, 1, 7, 1, 0, 3),
      "Mixed_7a.branch7x7x3_3": (192, 192, 7, 1, 1, 3, 0),
      "Mixed_7a.branch7x7x3_4": (192, 192, 3, 3, 2, 0, 0),
    }
  )
  for n, cin in (("Mixed_7b", 1280), ("Mixed_7c", 2048)):
    s.update(
      {
        f"{n}.branch1x1": c1(320, cin),
        f"{n}.branch3x3_1": c1(384, cin),
        f"{n}.branch3x3_2a": (384, 384, 1, 3, 1, 0, 1),
        f"{n}.branch3x3_2b": (384, 384, 3, 1, 1, 1, 0),
        f"{n}.branch3x3dbl_1": c1(448, cin),
        f"{n}.branch3x3dbl_2": (384, 448, 3, 3, 1, 1, 1),
        f"{n}.branch3x3dbl_3a": (384, 384, 1, 3, 1, 0, 1),
        f"{n}.branch3x3dbl_3b": (384, 384, 3, 1, 1, 1, 0),
        f"{n}.branch_pool": c1(192, cin),
      }
    )
  return s


def random_fid_state_dict(seed=0):
  """Random weights under pytorch-fid's keys (with num_batches_tracked, as torchvision saves them)."""
  rng = np.random.default_rng(seed)
  sd = {}
  for name, (co, ci, kh, kw, *_) in fid_conv_specs().items():
    sd[f"{name}.conv.weight"] = rng.normal(0, np.sqrt(2 / (ci * kh * kw)), (co, ci, kh, kw)).astype(np.float32)
    sd[f"{name}.bn.weight"] = rng.uniform(0.5, 1.5, co).astype(np.float32)
    sd[f"{name}.bn.bias"] = rng.normal(0, 0.1, co).astype(np.float32)
    sd[f"{name}.bn.running_mean"] = rng.normal(0, 0.1, co).astype(np.float32)
    sd[f"{name}.bn.running_var"] = rng.uniform(0.5, 1.5, co).astype(np.float32)
    sd[f"{name}.bn.num_batches_tracked"] = np.asarray(0, np.int64)
  sd["fc.weight"] = rng.normal(0, 0.02, (1008, 2048)).astype(np.float32)
  sd["fc.bias"] = rng.normal(0, 1.0, 1008).astype(np.float32)
  return sd


@pytest.fixture(scope="module")
def fid_file(tmp_path_factory):
  sd = random_fid_state_dict()
  path = tmp_path_factory.mktemp("inception") / "pt_inception_random.pth"
  write_torch_zip(path, sd)
  return str(path), sd


@pytest.fixture(scope="module")
def loaded(fid_file):
  model, digest = inception.load_inception(fid_file[0])
  return model, digest


# --- Tests --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", [write_torch_zip, write_torch_legacy])
def test_read_state_dict_round_trip(tmp_path, writer):
  rng = np.random.default_rng(1)
  sd = {
    "a.weight": rng.normal(size=(4, 3, 2, 2)).astype(np.float32),
    "a.bias": np.arange(4, dtype=np.float32),
    "bn.num_batches_tracked": np.asarray(7, np.int64),
  }
  path = tmp_path / "sd.pth"
  writer(path, sd)
  out = pth_files.read_state_dict(str(path))
  assert list(out) == list(sd)
  for k in sd:
    assert out[k].dtype == sd[k].dtype and out[k].shape == sd[k].shape
    np.testing.assert_array_equal(out[k], sd[k])


def test_read_state_dict_views_and_npz(tmp_path):
  w = np.arange(24, dtype=np.float32).reshape(4, 6)
  path = tmp_path / "views.pth"
  # A transposed view and an offset slice of w's storage, as torch saves views (no copy).
  write_torch_zip(path, {"w": w}, extra_views=[("wt", "w", 0, (6, 4), (1, 6)), ("row2", "w", 12, (6,), (1,))])
  out = pth_files.read_state_dict(str(path))
  np.testing.assert_array_equal(out["wt"], w.T)
  np.testing.assert_array_equal(out["row2"], w[2])
  np.savez(tmp_path / "sd.npz", **out)
  np.testing.assert_array_equal(pth_files.read_state_dict(str(tmp_path / "sd.npz"))["wt"], w.T)


def test_read_state_dict_refuses_code_and_junk(tmp_path):
  evil = tmp_path / "evil.pth"
  with zipfile.ZipFile(evil, "w") as zf:
    zf.writestr("archive/data.pkl", pickle.dumps(os.system, protocol=2))  # GLOBAL posix.system
  with pytest.raises(ValueError, match="unsupported object"):
    pth_files.read_state_dict(str(evil))
  junk = tmp_path / "junk.pth"
  junk.write_bytes(b"not a checkpoint at all")
  with pytest.raises(ValueError, match="not a readable PyTorch state_dict"):
    pth_files.read_state_dict(str(junk))


def test_torch_reads_our_files_and_we_read_torchs(tmp_path):
  torch = pytest.importorskip("torch")
  sd = {
    "x.weight": np.random.default_rng(2).normal(size=(3, 5)).astype(np.float32),
    "x.num_batches_tracked": np.asarray(3, np.int64),
  }
  for writer, name in ((write_torch_zip, "zip.pth"), (write_torch_legacy, "legacy.pth")):
    writer(tmp_path / name, sd)
    theirs = torch.load(tmp_path / name, weights_only=True)
    for k in sd:
      np.testing.assert_array_equal(theirs[k].numpy(), sd[k])
  tensors = {k: torch.from_numpy(v) for k, v in sd.items()}
  torch.save(tensors, tmp_path / "t_zip.pth")
  torch.save(tensors, tmp_path / "t_legacy.pth", _use_new_zipfile_serialization=False)
  for name in ("t_zip.pth", "t_legacy.pth"):
    out = pth_files.read_state_dict(str(tmp_path / name))
    for k in sd:
      np.testing.assert_array_equal(out[k], sd[k])


def test_loader_maps_every_key(fid_file, loaded):
  model, digest = loaded
  specs = fid_conv_specs()
  assert len(specs) == 94 and inception.conv_layer_names(model) == sorted(specs)
  for name, (co, ci, kh, kw, *_) in specs.items():
    layer = model
    for part in name.split("."):
      layer = getattr(layer, part)
    assert layer.kernel.shape == (kh, kw, ci, co)
  assert len(digest) == 64
  sd = fid_file[1]
  np.testing.assert_array_equal(np.asarray(model.fc.kernel[...]), sd["fc.weight"].T)
  np.testing.assert_array_equal(np.asarray(model.fc.bias[...]), sd["fc.bias"])


def test_loader_rejects_missing_unexpected_and_misshapen_keys():
  sd = random_fid_state_dict()
  model = inception.InceptionV3(rngs=nnx.Rngs(0))
  bad = dict(sd)
  del bad["Mixed_6b.branch7x7_2.bn.running_var"]
  bad["AuxLogits.fc.weight"] = np.zeros((1000, 768), np.float32)
  bad["fc.bias"] = np.zeros(1000, np.float32)
  with pytest.raises(
    ValueError,
    match=r"1 missing keys \['Mixed_6b.branch7x7_2.bn.running_var'\], "
    r"1 unexpected keys \['AuxLogits.fc.weight'\], 1 shape mismatches",
  ):
    inception.load_weights(model, bad)


@pytest.mark.parametrize("name", ["Conv2d_1a_3x3", "Mixed_6b.branch7x7_2", "Mixed_7b.branch3x3_2b"])
def test_folded_conv_bn_matches_numpy(fid_file, loaded, name):
  """One layer (stride 2; a 1x7 kernel; a 3x1 kernel) against conv -> BatchNorm -> ReLU in float64 numpy."""
  model, _ = loaded
  sd = fid_file[1]
  co, ci, kh, kw, stride, ph, pw = fid_conv_specs()[name]
  x = np.random.default_rng(3).normal(size=(2, 9, 11, ci)).astype(np.float32)
  layer = model
  for part in name.split("."):
    layer = getattr(layer, part)
  got = np.asarray(layer(jnp.asarray(x)))
  w = sd[f"{name}.conv.weight"].astype(np.float64)  # [co, ci, kh, kw]
  xp = np.pad(x.astype(np.float64), ((0, 0), (ph, ph), (pw, pw), (0, 0)))
  oh, ow = (xp.shape[1] - kh) // stride + 1, (xp.shape[2] - kw) // stride + 1
  y = np.zeros((2, oh, ow, co))
  for i in range(kh):
    for j in range(kw):
      patch = xp[:, i : i + stride * oh : stride, j : j + stride * ow : stride, :]  # [2, oh, ow, ci]
      y += patch @ w[:, :, i, j].T
  bn = {p: sd[f"{name}.bn.{p}"].astype(np.float64) for p in ("weight", "bias", "running_mean", "running_var")}
  y = (y - bn["running_mean"]) / np.sqrt(bn["running_var"] + 1e-3) * bn["weight"] + bn["bias"]
  np.testing.assert_allclose(got, np.maximum(y, 0.0), rtol=1e-4, atol=1e-4)


def test_pooling_quirks():
  x = jnp.asarray(np.random.default_rng(4).normal(size=(1, 4, 5, 2)).astype(np.float32))
  avg = np.asarray(inception.avg_pool_exclude_pad(x))
  xn = np.asarray(x)
  # Corner: mean of the 2x2 real pixels (not 4 / 9 of it); edge: mean of 2x3; inside: mean of 3x3.
  np.testing.assert_allclose(avg[0, 0, 0], xn[0, :2, :2].mean(axis=(0, 1)), rtol=1e-5)
  np.testing.assert_allclose(avg[0, 0, 2], xn[0, :2, 1:4].mean(axis=(0, 1)), rtol=1e-5)
  np.testing.assert_allclose(avg[0, 1, 2], xn[0, 0:3, 1:4].mean(axis=(0, 1)), rtol=1e-5)
  neg = -jnp.abs(x) - 1.0  # all negative: zero padding would win a max; -inf padding does not
  mx = np.asarray(inception.max_pool(neg, 1, padding=1))
  np.testing.assert_allclose(mx[0, 0, 0], np.asarray(neg)[0, :2, :2].max(axis=(0, 1)))
  assert inception.max_pool(x, 2).shape == (1, 1, 2, 2)


def test_missing_weights_message(tmp_path, monkeypatch):
  from jgan.metrics import inception_weights

  monkeypatch.delenv(inception_weights.WEIGHTS_ENV, raising=False)
  with pytest.raises(FileNotFoundError, match="JGAN_INCEPTION_WEIGHTS.*evals.inception_weights"):
    inception_weights.weights_path(str(tmp_path / "nothing.pth"))
  monkeypatch.setenv(inception_weights.WEIGHTS_ENV, str(tmp_path / "env.pth"))
  with pytest.raises(FileNotFoundError, match="env.pth"):
    inception_weights.weights_path("")


@pytest.mark.slow
def test_forward_299_features_and_unbiased_probs(fid_file, loaded):
  """The whole network on 2 grayscale 28 px images (resized to 299): [2, 2048] features, IS probabilities."""
  model, _ = loaded
  x = jnp.asarray(np.random.default_rng(5).uniform(-1, 1, (2, 28, 28, 1)).astype(np.float32))
  pool, probs = inception.make_apply(model)(x)
  assert pool.shape == (2, 2048) and probs.shape == (2, 1008)
  assert bool(jnp.all(jnp.isfinite(pool))) and float(jnp.min(pool)) >= 0.0 and float(jnp.std(pool)) > 0
  ref = jax.nn.softmax(pool @ jnp.asarray(fid_file[1]["fc.weight"]).T, axis=-1)  # no bias: IS convention
  np.testing.assert_allclose(np.asarray(probs), np.asarray(ref), rtol=1e-5, atol=1e-7)
  # Grayscale is the same image in 3 channels (as PIL's convert("RGB") in pytorch-fid).
  np.testing.assert_allclose(
    np.asarray(inception.resize_to_input(x)),
    np.asarray(inception.resize_to_input(jnp.repeat(x, 3, axis=-1))),
    atol=1e-6,
  )


def _torch_fid_forward(torch, sd, x):
  """pytorch-fid's FIDInceptionV3 forward (resize, blocks with its pooling patches) in torch functional form."""
  F = torch.nn.functional
  specs = fid_conv_specs()
  t = {k: torch.from_numpy(np.asarray(v)) for k, v in sd.items()}

  def conv(name, h):
    _, _, _, _, s, ph, pw = specs[name]
    h = F.conv2d(h, t[f"{name}.conv.weight"], stride=s, padding=(ph, pw))
    h = F.batch_norm(
      h,
      t[f"{name}.bn.running_mean"],
      t[f"{name}.bn.running_var"],
      t[f"{name}.bn.weight"],
      t[f"{name}.bn.bias"],
      training=False,
      eps=1e-3,
    )
    return F.relu(h)

  def chain(n, names, h):
    for b in names:
      h = conv(f"{n}.{b}", h)
    return h

  avg = lambda h: F.avg_pool2d(h, 3, 1, 1, count_include_pad=False)
  h = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
  for n in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"):
    h = conv(n, h)
  h = F.max_pool2d(h, 3, 2)
  h = F.max_pool2d(conv("Conv2d_4a_3x3", conv("Conv2d_3b_1x1", h)), 3, 2)
  for n in ("Mixed_5b", "Mixed_5c", "Mixed_5d"):
    h = torch.cat(
      [
        conv(f"{n}.branch1x1", h),
        chain(n, ["branch5x5_1", "branch5x5_2"], h),
        chain(n, ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"], h),
        conv(f"{n}.branch_pool", avg(h)),
      ],
      1,
    )
  h = torch.cat(
    [
      conv("Mixed_6a.branch3x3", h),
      chain("Mixed_6a", ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"], h),
      F.max_pool2d(h, 3, 2),
    ],
    1,
  )
  for n in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
    h = torch.cat(
      [
        conv(f"{n}.branch1x1", h),
        chain(n, ["branch7x7_1", "branch7x7_2", "branch7x7_3"], h),
        chain(n, [f"branch7x7dbl_{i}" for i in range(1, 6)], h),
        conv(f"{n}.branch_pool", avg(h)),
      ],
      1,
    )
  h = torch.cat(
    [
      chain("Mixed_7a", ["branch3x3_1", "branch3x3_2"], h),
      chain("Mixed_7a", [f"branch7x7x3_{i}" for i in range(1, 5)], h),
      F.max_pool2d(h, 3, 2),
    ],
    1,
  )
  for n, pool in (("Mixed_7b", avg), ("Mixed_7c", lambda v: F.max_pool2d(v, 3, 1, 1))):
    b3 = conv(f"{n}.branch3x3_1", h)
    bd = chain(n, ["branch3x3dbl_1", "branch3x3dbl_2"], h)
    h = torch.cat(
      [
        conv(f"{n}.branch1x1", h),
        conv(f"{n}.branch3x3_2a", b3),
        conv(f"{n}.branch3x3_2b", b3),
        conv(f"{n}.branch3x3dbl_3a", bd),
        conv(f"{n}.branch3x3dbl_3b", bd),
        conv(f"{n}.branch_pool", pool(h)),
      ],
      1,
    )
  return h.mean(dim=(2, 3))


@pytest.mark.slow
def test_features_match_torch_reference(fid_file, loaded):
  torch = pytest.importorskip("torch")
  model, _ = loaded
  x = np.random.default_rng(6).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
  with torch.no_grad():
    ref = _torch_fid_forward(torch, fid_file[1], torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
  got = np.asarray(model.features(jnp.asarray(x)))
  np.testing.assert_allclose(got, ref, rtol=2e-3, atol=2e-3 * float(np.abs(ref).max()))


def test_clean_resize_follows_pil_bicubic_on_float_channels():
  """clean-fid's resizer: per channel, float32 PIL bicubic (antialiased), clipped; constant images stay."""
  from PIL import Image

  from jgan.metrics import resize

  rng = np.random.default_rng(3)
  u8 = rng.integers(0, 256, (2, 32, 32, 3)).astype(np.float32)
  out = resize.clean_resize(u8 / 127.5 - 1.0)
  assert out.shape == (2, 299, 299, 3) and out.dtype == np.float32 and out.min() >= -1 and out.max() <= 1
  # Independent of the module: PIL's own call as clean-fid writes it (make_resizer("PIL", False, "bicubic")).
  ref = np.asarray(Image.fromarray(u8[1, :, :, 2], mode="F").resize((299, 299), resample=Image.BICUBIC))
  np.testing.assert_allclose(out[1, :, :, 2], np.clip(ref, 0, 255) / 127.5 - 1.0, atol=1e-6)
  flat = resize.clean_resize(np.full((1, 40, 28, 1), 0.2, np.float32))
  np.testing.assert_allclose(flat, np.round(1.2 * 127.5) / 127.5 - 1.0, atol=1e-5)
  # Down-sampling 512 -> 299 antialiases (PIL widens the kernel); a bilinear resize without it aliases.
  stripes = np.tile(np.array([1.0, -1.0], np.float32), 256)[None, None, :, None].repeat(512, axis=1)
  assert np.abs(resize.clean_resize(stripes)).max() < 0.2
  with pytest.raises(ValueError, match="valid choices: legacy_pytorch, clean"):
    resize.check_fid_mode("tf")


@pytest.mark.slow
def test_features_do_not_depend_on_the_batch_size(loaded):
  """The same 250 images through the FID network one at a time and as one batch of 250: the features
  agree to float32 rounding (XLA may pick other convolution algorithms per batch size)."""
  model, _ = loaded
  run = inception.make_apply(model)
  x = jnp.asarray(np.random.default_rng(7).integers(0, 256, (250, 28, 28, 1)) / 127.5 - 1.0, jnp.float32)
  whole = np.asarray(run(x)[0])
  single = np.concatenate([np.asarray(run(x[i : i + 1])[0]) for i in range(len(x))])
  scale = float(np.abs(whole).max())
  np.testing.assert_allclose(single, whole, rtol=1e-5, atol=1e-5 * scale)
