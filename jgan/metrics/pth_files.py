"""Reading PyTorch ``state_dict`` files (``.pth``) without PyTorch: pytorch-fid's Inception weights.

:func:`read_state_dict` understands both of PyTorch's formats (the zip archive of ``torch.save`` since
1.6, and the legacy pickle stream) for float tensors, and returns ``{name: numpy array}``. Only the
pickle opcodes a state_dict needs are accepted (``_StateDictUnpickler``), so a file cannot run code.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

# Reading PyTorch state_dict files without PyTorch. torch.save pickles each tensor as a call
# `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`, and each storage as a
# "persistent id" ('storage', <dtype>Storage, key, location, numel) naming raw little-endian bytes: the
# zip entry `<archive>/data/<key>` (format of torch >= 1.6), or records after the pickle (the legacy
# format, which older files such as the FID weights may use). The unpickler resolves only these few
# names, so a file cannot run code.
_STORAGE_DTYPES = {
  "FloatStorage": np.float32,
  "DoubleStorage": np.float64,
  "HalfStorage": np.float16,
  "LongStorage": np.int64,
  "IntStorage": np.int32,
  "ShortStorage": np.int16,
  "CharStorage": np.int8,
  "ByteStorage": np.uint8,
  "BoolStorage": np.bool_,
}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of a legacy-format file


class _Storage(NamedTuple):
  key: str
  dtype: np.dtype
  numel: int


class _Tensor(NamedTuple):
  storage: _Storage
  offset: int
  size: tuple
  stride: tuple


def _rebuild_tensor_v2(storage, offset, size, stride, *unused):
  return _Tensor(storage, int(offset), tuple(size), tuple(stride))


class _StateDictUnpickler(pickle.Unpickler):
  _GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): lambda data, *unused: data,
  }

  def find_class(self, module, name):
    if module == "torch" and name in _STORAGE_DTYPES:
      return np.dtype(_STORAGE_DTYPES[name])
    if (module, name) in self._GLOBALS:
      return self._GLOBALS[module, name]
    raise pickle.UnpicklingError(f"unsupported object {module}.{name} in a state_dict file")

  def persistent_load(self, pid):
    kind = pid[0].decode() if isinstance(pid[0], bytes) else pid[0]
    if kind != "storage" or not isinstance(pid[1], np.dtype) or (len(pid) > 5 and pid[5] is not None):
      raise pickle.UnpicklingError(f"unsupported storage record {pid!r}")
    return _Storage(str(pid[2]), pid[1], int(pid[4]))


def _materialise(tree, read_bytes: Callable[[_Storage], bytes]) -> dict[str, np.ndarray]:
  if not isinstance(tree, dict) or not all(isinstance(v, _Tensor) for v in tree.values()):
    raise ValueError("the pickle is not a flat state_dict of tensors")
  flat, out = {}, {}
  for name, t in tree.items():
    s = t.storage
    if s.key not in flat:
      flat[s.key] = np.frombuffer(read_bytes(s), dtype=s.dtype.newbyteorder("<"), count=s.numel)
    base = flat[s.key][t.offset :]
    strides = tuple(st * base.itemsize for st in t.stride)
    view = np.lib.stride_tricks.as_strided(base, t.size, strides) if t.size else base[0]  # () is 0-d
    out[name] = np.array(view, dtype=s.dtype)
  return out


def read_state_dict(path: str) -> dict[str, np.ndarray]:
  """A PyTorch ``state_dict`` file as ``{key: numpy array}`` (dtypes and shapes as saved), no torch needed.

  Reads ``torch.save`` files in the zip format (PyTorch >= 1.6) and the legacy format, and ``.npz``
  archives with the same keys. Raises ValueError for anything else (including pickles that reference
  other Python objects than tensors: nothing in the file is executed).
  """
  if path.endswith(".npz"):
    with np.load(path) as z:
      return {k: z[k] for k in z.files}
  try:
    if zipfile.is_zipfile(path):
      with zipfile.ZipFile(path) as zf:
        pkl = next(n for n in zf.namelist() if n.endswith("data.pkl"))
        prefix = pkl[: -len("data.pkl")]
        tree = _StateDictUnpickler(io.BytesIO(zf.read(pkl))).load()
        return _materialise(tree, lambda s: zf.read(f"{prefix}data/{s.key}"))
    with open(path, "rb") as f:
      if pickle.load(f) != LEGACY_MAGIC:
        raise ValueError("no PyTorch magic number")
      pickle.load(f)  # protocol version
      pickle.load(f)  # system info (byte order, type sizes)
      tree = _StateDictUnpickler(f).load()
      raw = {}
      for key in pickle.load(f):  # storages follow in this order: int64 element count, then the bytes
        numel = int(np.frombuffer(f.read(8), "<i8")[0])
        dtype = next(t.storage.dtype for t in tree.values() if t.storage.key == key)
        raw[key] = f.read(numel * dtype.itemsize)
      return _materialise(tree, lambda s: raw[s.key])
  except (pickle.UnpicklingError, ValueError, KeyError, EOFError, StopIteration, AttributeError) as e:
    raise ValueError(f"{path!r} is not a readable PyTorch state_dict file ({type(e).__name__}: {e})") from e
