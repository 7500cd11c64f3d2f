"""The random numbers of a run, split by purpose from the root key ``jax.random.key(seed)``.

``run_keys(seed)`` splits the root key once into one key per purpose (:class:`RunKeys`), so no two
purposes can draw the same numbers:

* ``init``: the models' initial weights (G and D get keys split from it);
* ``train``: the train state's step key; step ``t`` draws from ``fold_in(train, t)``, so a resumed run
  draws exactly what the uninterrupted one drew;
* ``samples``: the fixed noise of the sample grids written during training;
* ``eval``: the noise of evaluations (metrics during training, ``jgan eval``, sweep scores), the same
  at every call, so successive evaluations differ only through the generator.

(Before, fixed ``fold_in`` tags such as ``0x5EED`` shared the step counter's key space: the init key
was step 24,301's key.) The data order is drawn by numpy and Grain from the seed, apart from these.
"""

from __future__ import annotations

from typing import NamedTuple

import jax


class RunKeys(NamedTuple):
  """One typed PRNG key per purpose (see the module docstring)."""

  init: jax.Array
  train: jax.Array
  samples: jax.Array
  eval: jax.Array


def run_keys(seed: int) -> RunKeys:
  """The purpose keys of a run with ``seed`` (an int >= 0): ``split(key(seed), 4)``, in field order."""
  return RunKeys(*jax.random.split(jax.random.key(seed), len(RunKeys._fields)))
