"""Grain's shuffle order, computed from the seed and the position alone, in numpy or inside a jitted function.

``grain.MapDataset.source(src).shuffle(seed).repeat()`` serves, at stream position ``i`` of a source of
``n`` examples, the example ``index_shuffle(i % n, max_index=n - 1, seed=(seed + i // n) % 2**32,
rounds=4)`` of epoch ``i // n`` (grain/_src/python/dataset/transformations/shuffle.py). Grain computes
that in C++ (grain/_src/python/experimental/index_shuffle/index_shuffle.cc): a 4-round Simon block
cipher on blocks of ``B = max(16, even(ceil(log2(max_index))))`` bits whose round keys are the first four
words of ``std::seed_seq{seed}.generate``, applied again and again until the value is ``<= max_index``
(cycle walking, which makes it a permutation of ``0..max_index``).

:func:`shuffle` is the same arithmetic written for an array module ``xp`` (``numpy`` or ``jax.numpy``),
vectorised over positions, on uint32 words: so the on-device data path (:mod:`jgan.data.on_device`)
computes the batch order inside the jitted step, with no host work and no transfer, and it is the
order of jgan's host pipeline bit for bit (``tests/test_data_on_device.py`` compares whole epochs with
Grain's own ``index_shuffle``). Blocks of up to 32 bits (``n <= 2**31``) are supported, far more
examples than fit in any device's memory.
"""

from __future__ import annotations

import numpy as np

ROUNDS = 4  # Grain's MapDataset.shuffle uses 4 rounds
MIN_BLOCK_BITS = 16
MAX_EXAMPLES = 1 << 31  # blocks of at most 32 bits: two uint32 half-words of at most 16 bits


def block_bits(n: int) -> int:
  """The Simon block size ``B`` (bits) Grain uses for a source of ``n >= 2`` examples (``max_index = n - 1``).

  ``ceil(log2(max_index))`` for integers is ``(max_index - 1).bit_length()``; rounded up to even and to
  at least 16, as in index_shuffle.cc.
  """
  if not 2 <= n <= MAX_EXAMPLES:
    raise ValueError(f"the on-device shuffle supports 2..{MAX_EXAMPLES} examples, got {n}")
  bits = (n - 2).bit_length()
  return max(bits + bits % 2, MIN_BLOCK_BITS)


def seed_seq_keys(seed, xp=np):
  """The 4 round keys of ``std::seed_seq{seed}.generate(k, k + 4)`` (C++ [rand.util.seedseq]).

  ``seed``: uint32 array of any shape (one seed per element); returns a list of 4 uint32 arrays of that
  shape. All arithmetic wraps modulo 2**32, as the standard prescribes.
  """
  u = lambda v: xp.asarray(v, dtype=xp.uint32)
  seed = u(seed)
  n, s, t = 4, 1, 1  # 4 keys from 1 seed word; t = (n - 1) // 2 for n < 7
  p, q, m = (n - t) // 2, (n - t) // 2 + t, max(s + 1, n)
  b = [seed * u(0) + u(0x8B8B8B8B) for _ in range(n)]
  mix = lambda x: x ^ (x >> u(27))
  for k in range(m):
    r1 = u(1664525) * mix(b[k % n] ^ b[(k + p) % n] ^ b[(k - 1) % n])
    # k == 0 adds s (the number of seed words), 1 <= k <= s adds k % n + v[k - 1], later k adds k % n.
    r2 = r1 + (u(s) if k == 0 else u(k % n) + seed if k <= s else u(k % n))
    b[(k + p) % n] = b[(k + p) % n] + r1
    b[(k + q) % n] = b[(k + q) % n] + r2
    b[k % n] = r2
  for k in range(m, m + n):
    r3 = u(1566083941) * mix(b[k % n] + b[(k + p) % n] + b[(k - 1) % n])
    r4 = r3 - u(k % n)
    b[(k + p) % n] = b[(k + p) % n] ^ r3
    b[(k + q) % n] = b[(k + q) % n] ^ r4
    b[k % n] = r4
  return b


def _rotl(x, r: int, w: int, mask, xp):
  return ((x << xp.uint32(r)) & mask) | (x >> xp.uint32(w - r))


def _simon(value, keys, w: int, xp):
  """Simon with word size ``w`` (block ``2w`` bits), Grain's round structure: value uint32 -> uint32."""
  mask = xp.uint32((1 << w) - 1)
  left, right = (value >> xp.uint32(w)) & mask, value & mask
  f = lambda x: (_rotl(x, 1, w, mask, xp) & _rotl(x, 8, w, mask, xp)) ^ _rotl(x, 2, w, mask, xp)
  for i in range(0, ROUNDS, 2):  # SIMON_Rx2(right, left, k[i], k[i + 1])
    left = left ^ f(right) ^ (keys[i] & mask)
    right = right ^ f(left) ^ (keys[i + 1] & mask)
  return ((left << xp.uint32(w)) | right) if w < 32 else left  # w <= 16 here


def shuffle(index, n: int, seed, xp=np):
  """``index_shuffle(index, max_index=n - 1, seed, rounds=4)`` elementwise (Grain's C++ function).

  Args:
    index: integer array, values in ``[0, n)`` (positions within an epoch).
    n: the number of examples (static; ``2 <= n <= 2**31``).
    seed: uint32 array broadcastable to ``index`` (Grain's per-epoch seed, ``(seed + epoch) % 2**32``).
    xp: ``numpy`` or ``jax.numpy``; with ``jax.numpy`` the cycle walk is a ``lax.while_loop`` that runs
      until every element is in range (a few to ~30 iterations: the block holds up to 4x ``n`` values,
      and 16-bit blocks of small sets far more).

  Returns:
    int32 array of ``index``'s shape: the examples of those positions, in ``[0, n)``.
  """
  if xp is np:
    with np.errstate(over="ignore"):  # uint32 products wrap by design
      return _shuffle(index, n, seed, np)
  return _shuffle(index, n, seed, xp)


def _shuffle(index, n: int, seed, xp):
  w = block_bits(n) // 2
  index = xp.asarray(index).astype(xp.uint32)
  seed = xp.broadcast_to(xp.asarray(seed, dtype=xp.uint32), index.shape)
  keys = seed_seq_keys(seed, xp)
  top = xp.uint32(n - 1)
  if xp is np:
    out = _simon(index, keys, w, np)
    while (bad := out > top).any():
      out[bad] = _simon(out[bad], [k[bad] for k in keys], w, np)
    return out.astype(np.int32)
  import jax

  def walk(v):
    return xp.where(v > top, _simon(v, keys, w, xp), v)

  out = jax.lax.while_loop(lambda v: xp.any(v > top), walk, _simon(index, keys, w, xp))
  return out.astype(xp.int32)


def positions(start_epoch, start_within, offsets, n: int, seed: int, xp=np):
  """The examples at stream positions ``start + offsets`` of ``shuffle(seed).repeat()`` over ``n`` examples.

  ``start = start_epoch * n + start_within`` is split so that nothing overflows int32 however long a run
  is; ``offsets`` int array ``[...]`` in ``[0, 2**31 - n)``. Returns int32 ``[...]`` in ``[0, n)``.
  """
  within = xp.asarray(start_within, dtype=xp.int32) + xp.asarray(offsets, dtype=xp.int32)
  epoch = xp.asarray(start_epoch, dtype=xp.uint32) + (within // n).astype(xp.uint32)
  return shuffle(within % n, n, epoch + xp.uint32(seed), xp)
