"""Checksums of a checkpoint: a SHA-256 per state array (its dtype, shape and bytes) and per JSON item.

:class:`jgan.checkpoint.Checkpointer` stores them with every save (the ``checksums`` item) and verifies
what it reads back, so a flipped bit or an array file replaced by another step's is caught even where
the storage format would decode it silently (OCDBT's zstd chunks carry no checksum of their own). A
failed check names the array and the file that holds its bytes.
"""

from __future__ import annotations

import hashlib
import json
import os

import jax
import numpy as np


class ChecksumError(RuntimeError):
  """An array or JSON item read back differs from the checksum stored with it."""


def _host(x) -> np.ndarray | None:
  """A state leaf as a host array (a typed PRNG key as its key data); None for a non-replicated array
  that this process cannot read whole."""
  if isinstance(x, jax.Array):
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      x = jax.random.key_data(x)
    if not x.is_fully_addressable:
      if not x.is_fully_replicated:
        return None
      x = x.addressable_shards[0].data
  return np.asarray(x)


def _digest(a: np.ndarray) -> str:
  h = hashlib.sha256(f"{a.dtype.str}{tuple(a.shape)}".encode())
  h.update(np.ascontiguousarray(a).tobytes())
  return h.hexdigest()


def state_checksums(state) -> dict[str, str]:
  """``{leaf path (jax.tree_util.keystr): sha256 of its dtype, shape and bytes}`` of a state pytree."""
  flat = jax.tree_util.tree_flatten_with_path(state)[0]
  hosts = jax.device_get([_host(x) for _, x in flat])
  return {jax.tree_util.keystr(p): _digest(a) for (p, _), a in zip(flat, hosts) if a is not None}


def json_checksum(obj) -> str:
  """sha256 of ``obj`` as canonical JSON (sorted keys, no spaces): equal before saving and after reading."""
  return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def orbax_name(path) -> str:
  """Orbax's name of a leaf (``g.params.layers.0.kernel``): its path's keys joined by dots."""
  parts = []
  for k in path:
    for attr in ("name", "key", "idx"):
      if hasattr(k, attr):
        parts.append(str(getattr(k, attr)))
        break
  return ".".join(parts)


def files_holding(item_dir: str, name: str) -> list[str]:
  """The files of an OCDBT item directory that hold leaf ``name``'s chunks (best effort; [] if unknown)."""
  try:
    import tensorstore as ts

    base = ts.KvStore.open(f"file://{item_dir}/").result()
    manifest = ts.ocdbt.dump(base).result()
    root = manifest["versions"][-1]["root"].get("location")
    files, stack, prefix = set(), ([root] if root else []), name.encode() + b"/"

    def file_of(location: str) -> str:
      kind, sub, rel, *_ = location.split(":")
      return os.path.join(item_dir, sub + rel)

    while stack:
      location = stack.pop()
      node = ts.ocdbt.dump(base, location).result()
      for e in node.get("entries", []):
        for v in e.values():
          if isinstance(v, str) and v.startswith("btreenode:"):
            stack.append(v)
        key = e.get("key", b"")
        if isinstance(key, bytes) and key.startswith(prefix) and not key.endswith((b"/.zarray", b"/.zattrs")):
          ref = e.get("indirect_value")  # a chunk in a data file, else inline in this node's file
          files.add(file_of(ref) if isinstance(ref, str) else file_of(location))
    return sorted(files)
  except Exception:  # noqa: BLE001 (another storage format, or tensorstore's dump changed)
    return []


def verify_json(checkpoint_path: str, meta: dict, names: tuple[str, ...]) -> None:
  """Raises ChecksumError if a JSON item ``names`` of ``meta`` (as read from checkpoint directory
  ``checkpoint_path``) differs from its stored checksum (``meta["checksums"]``; None: nothing to check)."""
  sums = meta.get("checksums")
  if sums is None:
    return  # written before checksums existed
  for name in names:
    if name in sums and meta.get(name) is not None and json_checksum(meta[name]) != sums[name]:
      raise ChecksumError(
        f"item {name!r} read back differs from its sha256 checksum; the file is "
        f"{os.path.join(checkpoint_path, name, 'metadata')}"
      )


def verify_state(checkpoint_path: str, state, sums: dict[str, str]) -> None:
  """Raises ChecksumError naming the first array of ``state`` (and the file holding its bytes) whose
  checksum differs from ``sums`` (``{leaf path: sha256}``, as :func:`state_checksums` wrote them)."""
  got = state_checksums(state)
  flat = {jax.tree_util.keystr(p): p for p, _ in jax.tree_util.tree_flatten_with_path(state)[0]}
  missing = sorted(set(sums) - set(got))
  if missing:
    raise ChecksumError(
      f"the checksums list arrays the state does not have ({', '.join(missing[:3])}); the file is "
      f"{os.path.join(checkpoint_path, 'checksums', 'metadata')}"
    )
  for key, digest in got.items():
    if key in sums and sums[key] != digest:
      item_dir = os.path.join(checkpoint_path, "state")
      files = files_holding(item_dir, orbax_name(flat[key])) or [item_dir]
      raise ChecksumError(
        f"array {key} read back differs from its sha256 checksum (stored {sums[key][:12]}..., read "
        f"{digest[:12]}...); its bytes are in {', '.join(files)}"
      )
