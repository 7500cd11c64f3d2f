"""The one registry helper: ``name -> component`` with each component's parameters and their defaults.

Every pluggable part of jgan (objectives, penalties, models, optimisers, learning-rate schedules,
update rules, metrics, ...) lives in a :class:`Registry`. It is a read-only mapping (``name in R``,
``R[name]``, ``sorted(R)``: what tests parametrise over) plus:

* ``R.register(name, value, defaults=None)``: adds a component from user code (no edit of jgan); the
  defaults are the component's parameters (e.g. a model's own config fields);
* ``R.check(name)``: ValueError naming the bad name and the valid choices;
* ``R.defaults(name)``: the parameters with their defaults, given at registration or, for a factory,
  read from its keyword parameters (the published defaults live in the factory's signature);
* ``R.check_params(name, params)`` / ``R.build(name, **params)``: unknown parameter names are refused
  with the valid ones listed, then the factory is called.

Messages name the registry's ``kind`` ("unknown objective 'x'; valid choices: ...") so every
registry reports bad input the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any


def signature_defaults(fn: Callable[..., Any], *, keyword_only: bool = False) -> dict[str, Any]:
  """``{parameter: default}`` of ``fn``'s parameters that have a default (optionally keyword-only ones)."""
  return {k: p.default for k, p in _parameters(fn, keyword_only).items() if p.default is not inspect.Parameter.empty}


def _parameters(fn: Callable[..., Any], keyword_only: bool) -> dict[str, inspect.Parameter]:
  """``fn``'s named parameters (``*args`` / ``**kwargs`` left out), optionally only keyword-only ones."""
  out = {}
  for name, p in inspect.signature(fn).parameters.items():
    if p.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
      continue
    if keyword_only and p.kind is not inspect.Parameter.KEYWORD_ONLY:
      continue
    out[name] = p
  return out


def check_call_params(
  kind: str, name: str, fn: Callable[..., Any], params: Mapping[str, Any], *, keyword_only: bool = False
) -> None:
  """Raises ValueError if ``fn`` takes none of some names in ``params`` (a ``**kwargs`` takes any).

  The message names ``kind`` and ``name`` and lists the valid parameters, e.g. ``objective 'hinge' got
  unknown parameter(s) ['margn']; valid parameters: ['margin']``.
  """
  if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(fn).parameters.values()):
    return
  _refuse_unknown(kind, name, _parameters(fn, keyword_only), params)


def _refuse_unknown(kind: str, name: str, valid, params: Mapping[str, Any]) -> None:
  unknown = sorted(set(params) - set(valid))
  if unknown:
    raise ValueError(f"{kind} {name!r} got unknown parameter(s) {unknown}; valid parameters: {sorted(valid) or 'none'}")


class Registry[T](Mapping):
  """A named set of components of one ``kind`` (see the module docstring).

  Args:
    kind: what the components are, for messages ("objective", "model", ...).
    entries: the built-in components, ``{name: component}`` (insertion order is kept).
    defaults: ``{name: {param: default}}`` for built-ins whose parameters are not their signature's.
    sort_choices: list the valid names sorted (True) or in registration order (False) in messages.
    keyword_only: read signature defaults from keyword-only parameters only (penalties take
      positional inputs before their weights).
  """

  def __init__(
    self,
    kind: str,
    entries: dict[str, T] | None = None,
    *,
    defaults: dict[str, dict] | None = None,
    sort_choices: bool = True,
    keyword_only: bool = False,
  ):
    self.kind = kind
    self._entries: dict[str, T] = {}
    self._defaults: dict[str, dict[str, Any]] = {}
    self._sort = sort_choices
    self._keyword_only = keyword_only
    for name, value in (entries or {}).items():
      self.register(name, value, (defaults or {}).get(name))

  # Mapping interface.
  def __getitem__(self, name: str) -> T:
    return self._entries[name]

  def __iter__(self) -> Iterator[str]:
    return iter(self._entries)

  def __len__(self) -> int:
    return len(self._entries)

  def __repr__(self) -> str:
    return f"Registry({self.kind!r}, {list(self._entries)})"

  def choices(self) -> str:
    """The valid names as one comma-separated string (sorted unless ``sort_choices=False``)."""
    names = sorted(self._entries) if self._sort else list(self._entries)
    return ", ".join(names)

  def register(self, name: str, value: T, defaults: dict[str, Any] | None = None, *, overwrite: bool = False) -> T:
    """Adds component ``value`` under ``name``; returns ``value`` (so it also works as a decorator's end).

    ``defaults`` are its parameters with default values (``None``: read from ``value``'s signature if it
    is callable). Raises ValueError if ``name`` is taken (pass ``overwrite=True`` to replace it) or is not
    a non-empty string.
    """
    if not isinstance(name, str) or not name:
      raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")
    if name in self._entries and not overwrite:
      raise ValueError(f"{self.kind} {name!r} is already registered; pass overwrite=True to replace it")
    self._entries[name] = value
    if defaults is not None:
      self._defaults[name] = dict(defaults)
    else:
      self._defaults.pop(name, None)
    return value

  def unregister(self, name: str) -> None:
    """Removes component ``name`` (tests that register components clean up with it)."""
    self.check(name)
    del self._entries[name]
    self._defaults.pop(name, None)

  def check(self, name: str, field: str = "") -> None:
    """Raises ValueError naming ``name`` and the valid choices if it is not registered.

    With ``field`` (the config key that holds the name, e.g. ``"optim.g.name"``) the message reads
    ``unknown optim.g.name='x'; valid choices: ...``.
    """
    if name not in self._entries:
      what = f"{field}={name!r}" if field else f"{self.kind} {name!r}"
      raise ValueError(f"unknown {what}; valid choices: {self.choices()}")

  def defaults(self, name: str) -> dict[str, Any]:
    """``{parameter: default}`` of component ``name`` (a fresh dict; see the module docstring)."""
    self.check(name)
    if name in self._defaults:
      return dict(self._defaults[name])
    value = self._entries[name]
    return signature_defaults(value, keyword_only=self._keyword_only) if callable(value) else {}

  def check_params(self, name: str, params: Mapping[str, Any]) -> None:
    """Raises ValueError if ``params`` holds names that component ``name`` does not take.

    Registered defaults name every parameter; otherwise the factory's signature does (parameters
    without a default count as valid names too; a ``**kwargs`` takes any name).
    """
    self.check(name)
    value: Any = self._entries[name]
    if name in self._defaults:
      _refuse_unknown(self.kind, name, self._defaults[name], params)
    elif callable(value):
      check_call_params(self.kind, name, value, params, keyword_only=self._keyword_only)

  def build(self, name: str, **params) -> Any:
    """``R[name](**params)`` after :meth:`check` and :meth:`check_params`."""
    self.check_params(name, params)
    factory: Any = self._entries[name]
    return factory(**params)
