"""Configuration fields that explain themselves: :func:`option` declares a field of a
config section with its help text, unit and choices, which the command-line parser
(``train.engine.config.add_config_arguments``) and the sections' checks read."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any


def option(
    default: Any,
    help: str,
    *,
    unit: str | None = None,
    choices: Sequence[str] | None = None,
    positive: bool = False,
) -> Any:
    """A dataclass field with ``help`` (what it does), ``unit`` and ``choices`` in its
    metadata; ``positive``: :func:`check_options` requires a value > 0."""
    choices = tuple(choices) if choices else None
    meta = {"help": help, "unit": unit, "choices": choices, "positive": positive}
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable defaults are not options; use a tuple")
    return dataclasses.field(default=default, metadata=meta)


def check_options(section: Any) -> None:
    """Raise ``ValueError`` naming the field when a value of ``section`` (a dataclass of
    :func:`option` fields) is not among its choices or not positive where it must be.
    Tuple fields check each element."""
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        choices = f.metadata.get("choices")
        if choices:
            values = value if isinstance(value, tuple) else (value,)
            if not values or any(v not in choices for v in values):
                kind = "a non-empty subset" if isinstance(value, tuple) else "one"
                raise ValueError(f"{f.name} must be {kind} of {choices}, got {value!r}")
        if f.metadata.get("positive") and not value > 0:
            raise ValueError(f"{f.name} must be > 0, got {value}")
