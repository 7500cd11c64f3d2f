"""``docs/config.md``, rendered from the config schema (:mod:`jgan.config_schema`).

:func:`render` is the page: every key of :data:`~jgan.config_schema.FIELDS` by section, then every
registered component's own fields (models, objectives, penalties, augmentations, optimisers) with their
types, defaults, valid ranges or choices and docs. ``jgan config docs > docs/config.md`` writes it;
``tests/test_config_schema.py`` fails when the page in the repository differs from it.
"""

from __future__ import annotations

from jgan import config_schema as schema
from jgan.config_checks import Field, describe

INTRO = """\
# Config reference

Generated from the schema, `jgan/config_schema.py`, by `jgan config docs > docs/config.md` (a test fails
when this page is stale). The same table gives `jgan.config.defaults()`, the checks of
`jgan.config.resolve` (run before anything compiles: a bad value is one `error:` line, exit status 2) and
`jgan config show`, which prints an experiment's resolved config with each key's type, default, valid
values and doc:

```bash
jgan config show configs/dcgan_mnist5k.py --config.train.steps=100
jgan config show configs/smoke.py:wgan_gp --changed    # only what differs from the defaults
```

Types: a `float` key also takes an integer; `bool` is not an `int`; numbers must be finite. Overrides on
the command line are `--config.KEY=VALUE`. The sections `model`, `objective`, `penalty`, `augment`,
`optim.g` and `optim.d` are open: besides the keys below they hold the chosen component's own fields
([Component fields](#component-fields)), filled in with their defaults. A component is chosen before the
other overrides are applied, so its fields can be set in the same command:

```bash
jgan train --config configs/smoke.py --workdir runs/r1 --config.penalty.name=r1 --config.penalty.gamma=5 \\
    --config.model.d_norm=none
```
"""


def _cell(text: str) -> str:
  return text.replace("|", "\\|") if text else ""


def _code(text: str) -> str:
  return f"`{text}`" if text else ""


def _row(f: Field, key: str) -> str:
  default = repr(f.default) if isinstance(f.default, str) else str(f.default)
  cells = (_code(key), f.type.__name__, _code(default), _cell(describe(f)), _cell(f.doc))
  return "| " + " | ".join(cells) + " |"


def _fixed_tables() -> list[str]:
  lines: list[str] = []
  section = None
  for f in schema.FIELDS:
    top = f.key.split(".")[0] if "." in f.key else "(top level)"
    if top != section:
      section = top
      lines += ["", f"## {section}", "", "| key | type | default | valid | doc |", "|---|---|---|---|---|"]
    lines.append(_row(f, f.key))
  return lines


def _component_tables() -> list[str]:
  lines = ["", "## Component fields", ""]
  lines.append(
    "Each registered component's own fields, keyed as in the config (`model.g_width`, `penalty.gamma`, ...). "
    "A component registered by user code gets its fields' types from their defaults and no range."
  )
  seen_kinds = set()
  for section, s in schema.SECTIONS.items():
    if s.kind in seen_kinds:  # optim.d: the same optimisers as optim.g
      continue
    seen_kinds.add(s.kind)
    where = "optim.g / optim.d" if s.kind == "optimizer" else section
    lines += ["", f"### {where}", "", "| component | key | type | default | valid | doc |", "|---|---|---|---|---|---|"]
    registry = s.registry()
    for name in registry:
      own = schema.component_fields(section, name)
      if not own:
        lines.append(f"| `{name}` | (no fields) | | | | |")
      for f in own:
        lines.append(f"| `{name}` " + _row(f, f.key))
  return lines


def render() -> str:
  """The text of ``docs/config.md`` (module docstring)."""
  return INTRO + "\n".join(_fixed_tables() + _component_tables()) + "\n"
