"""Augmentation of the discriminator's inputs: one registry, one interface.

Every augmentation is built by a factory ``AUGMENTS[name](**params) -> Augment`` whose keyword arguments
are its parameters with the published defaults (config section ``augment``: ``augment.name`` plus the
entry's parameters, like ``penalty.*``). An :class:`Augment` holds pure functions:

* ``init_state() -> state``: a pytree of float32 / int32 arrays (``{}`` if stateless; ADA's ``p`` and its
  accumulators), carried in the train state and so in the checkpoint (a resumed run is bit-exact).
* ``apply(x, key, state) -> x_aug``: ``x`` float32 ``[B, H, W, C]`` in about ``[-1, 1]``; same shape and
  dtype out, differentiable with respect to ``x``, every sample with its own random draws.
* ``update_state(state, d_real) -> (state, metrics)``: called once per D update with that update's raw D
  scores on the real batch ``[B]``; metrics are float32 scalars (ADA: ``ada_p``, ``ada_rt``).

All three are jit- and ``lax.scan``-safe (no Python control flow on array values).

Entries: ``none`` (identity), ``diffaugment`` (Zhao et al. 2020, ``jgan.augment.diffaugment``), ``ada``
(Karras et al. 2020, ``jgan.augment.ada`` and ``jgan.augment.ada_pipeline``).

How the train step uses them (the caller's contract):

* D's loss sees ``D(apply(real, k_r, s))`` and ``D(apply(fake, k_f, s))`` with independent keys
  ``k_r``, ``k_f``; G's loss sees ``D(apply(fake, k, s))`` (gradients flow through ``apply`` into G: the
  point of *differentiable* augmentation). Augmentation applies to D's inputs only, never to G's output
  elsewhere (samples, evaluation).
* **Penalties see the augmented inputs**: R1 / R2 / the gradient penalty are computed on the same
  augmented real / fake batches D is trained on (as in StyleGAN2-ADA, where R1 is taken on
  ``augment_pipe(real)``), so D is regularised at the points it is fitted to; the input gradients are with
  respect to the augmented images.
* ``update_state`` gets D's raw scores on the augmented real batch of that D update (ADA's r_t is measured
  on what D sees).
"""

from __future__ import annotations

from collections.abc import Callable

from jgan.augment import ada, diffaugment  # the modules (their factories share their names)
from jgan.augment.base import Array, Augment, stateless
from jgan.registry import Registry


def none() -> Augment:
  """The identity: ``apply(x, key, state) = x``, no state, no metrics."""
  return stateless(lambda x, key: x)


AUGMENTS: Registry[Callable[..., Augment]] = Registry(
  "augment", {"none": none, "diffaugment": diffaugment.diffaugment, "ada": ada.ada}, sort_choices=False
)
register = AUGMENTS.register  # register(name, factory): a user augmentation, config section augment.*
augment_params = AUGMENTS.defaults  # augment_params(name) -> {parameter: published default}
check_augment_name = AUGMENTS.check


def make_augment(name: str, **params) -> Augment:
  """``AUGMENTS[name](**params)``: unknown names / parameters and bad values raise a ValueError listing the
  valid choices, before anything is traced."""
  return AUGMENTS.build(name, **params)


__all__ = ["AUGMENTS", "Array", "Augment", "augment_params", "check_augment_name", "make_augment", "register"]
