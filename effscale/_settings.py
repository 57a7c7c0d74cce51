"""Declare a setting once: its default, its check, its flag and its help.

effscale's settings dataclasses declare each field with `setting(...)`, one dataclass per command
next to what it configures: `ProxyRecipe` and `TrainOptions` (trainer), `CostOptions` (models),
`SearchOptions`, `FamilyOptions`, `ConfirmOptions`, `CompareOptions`, `StudiesOptions` and
`TrialsOptions` (search), `ServeOptions` (service). From that one declaration:

* the dataclass checks itself (`check_settings`, from ``__post_init__``) with messages that name
  the command-line flag, so the CLI, the Python API and the REST API refuse the same values in the
  same words;
* the CLI derives every command's flags (`effscale.cli.flags`) and the REST API its request schema
  (`effscale.service.schemas`); neither restates a default, a range or a help text.

``None`` always means "the default that depends on something else" (the baseline, the data): a
check never sees it. This module imports nothing heavy: ``effscale --help`` reads it before torch.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterator

from effscale.errors import UsageError

Check = Callable[[Any, str], Any]  # (value, flag) -> the value, normalised; or raise UsageError

_KEY = "effscale.setting"


@dataclasses.dataclass(frozen=True)
class Setting:
    """How one field of a settings dataclass is offered and checked."""

    help: str
    kind: type = str  # the scalar type the CLI parses and the API schema declares: int, float, str, bool
    check: Check | None = None
    choices: tuple[str, ...] | None = None
    api: bool = True  # accepted in POST /api/searches (storage, paths and addresses are the server's)
    positional: bool = False  # a CLI positional argument rather than a --flag
    required: bool = False
    metavar: str | None = None
    group: str | None = None  # the CLI's help section
    api_kind: Any = None  # the API schema's type when it differs from ``kind`` (e.g. a grid: text or a list)
    aliases: tuple[str, ...] = ()  # more CLI flags for the field (deprecated spellings that still work)
    cli_default: Callable[[], Any] | None = None  # the CLI's default when the flag is absent (None: the field's)


def setting(
    default: Any = None,
    *,
    help: str,
    kind: type = str,
    check: Check | None = None,
    choices: tuple[str, ...] | None = None,
    api: bool = True,
    positional: bool = False,
    required: bool = False,
    metavar: str | None = None,
    group: str | None = None,
    api_kind: Any = None,
    aliases: tuple[str, ...] = (),
    cli_default: Callable[[], Any] | None = None,
) -> Any:
    """A dataclass field carrying its `Setting` (use as ``name: int = setting(3, help=...)``)."""
    meta = Setting(help, kind, check, choices, api, positional, required, metavar, group, api_kind, aliases, cli_default)
    return dataclasses.field(default=default, metadata={_KEY: meta})


def flag(name: str) -> str:
    """The command-line flag of field ``name``: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def settings_of(cls: type) -> Iterator[tuple[dataclasses.Field, Setting]]:
    """The fields of ``cls`` declared with `setting`, in declaration order."""
    for f in dataclasses.fields(cls):
        meta = f.metadata.get(_KEY)
        if meta is not None:
            yield f, meta


def check_value(name: str, meta: Setting, value: Any) -> Any:
    """Check one value of field ``name``; return it normalised (None passes: it means default)."""
    if value is None:
        if meta.required:
            raise UsageError(f"{flag(name)} is required: {meta.help}")
        return None
    if meta.choices is not None and value not in meta.choices:
        raise UsageError(f"{flag(name)} {value!r} is not one of {', '.join(meta.choices)}; pass one of them")
    return meta.check(value, flag(name)) if meta.check is not None else value


def check_settings(obj: Any) -> None:
    """Check every declared field of the frozen dataclass ``obj`` in place (from ``__post_init__``)."""
    for f, meta in settings_of(type(obj)):
        object.__setattr__(obj, f.name, check_value(f.name, meta, getattr(obj, f.name)))


# ---------------------------------------------------------------------------------------------
# checks


def whole(minimum: int | None = None, *, above: bool = False, example: int | None = None) -> Check:
    """An integer (not a bool, not a fractional float), at least ``minimum`` (above it when ``above``)."""

    def check(value: Any, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not value.is_integer()
        ):
            raise UsageError(f"{name} {value!r} is not a whole number; pass e.g. {example if example is not None else 1}")
        value = int(value)
        if minimum is not None and (value <= minimum if above else value < minimum):
            hint = f", e.g. {example}" if example is not None else ""
            raise UsageError(f"{name} {value} must be {'>' if above else '>='} {minimum}{hint}")
        return value

    return check


def number(
    minimum: float | None = None,
    *,
    above: bool = False,
    below: float | None = None,
    example: float | None = None,
) -> Check:
    """A finite number >= ``minimum`` (> when ``above``), and < ``below`` when given."""

    def check(value: Any, name: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UsageError(f"{name} {value!r} is not a finite number; pass e.g. {example}")
        value = float(value)
        hint = f", e.g. {example}" if example is not None else ""
        if minimum is not None and (value <= minimum if above else value < minimum):
            raise UsageError(f"{name} {value:g} must be {'>' if above else '>='} {minimum:g}{hint}")
        if below is not None and value >= below:
            raise UsageError(f"{name} {value:g} must be < {below:g}{hint}")
        return value

    return check


def text(*, max_length: int = 1000, pattern: str | None = None, what: str = "a value") -> Check:
    """A non-empty single-line string (optionally matching ``pattern``)."""
    import re

    def check(value: Any, name: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f"{name} {value!r} is empty; pass {what}")
        value = value.strip()
        if len(value) > max_length or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise UsageError(f"{name} {value[:40]!r} is not {what} (at most {max_length} printable characters)")
        if pattern is not None and not re.fullmatch(pattern, value):
            raise UsageError(f"{name} {value!r} is not {what}")
        return value

    return check


def path(*, what: str = "a file path") -> Check:
    """A file to write: given as text or an ``os.PathLike`` (kept as text), not a directory, and in
    a directory that exists or can be made (no part of it an existing file)."""
    import os

    plain = text(max_length=4096, what=what)

    def check(value: Any, name: str) -> str:
        value = plain(os.fspath(value) if isinstance(value, os.PathLike) else value, name)
        writable_file(value, name)
        return value

    return check


def writable_file(value: str, name: str) -> None:
    """Refuse, before any work, a path that could never be written: a directory, or one below a file."""
    from pathlib import Path

    target = Path(value).expanduser()
    if target.is_dir():
        raise UsageError(f"{name} {value} is a directory; pass a file path, e.g. {target / 'family.json'}")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"{name} {value}: {parent} is a file, not a directory; pass a path in a directory")
            break


def split_by_owner(values: dict[str, Any], *classes: type) -> list[dict[str, Any]]:
    """Split flat ``values`` into one dict per settings class; an unknown name is a `TypeError`
    (the Python API's usual answer to an unexpected keyword)."""
    owners = [{f.name for f in dataclasses.fields(cls)} for cls in classes]
    parts: list[dict[str, Any]] = [{} for _ in classes]
    for name, value in values.items():
        for names, part in zip(owners, parts):
            if name in names:
                part[name] = value
                break
        else:
            known = sorted(set().union(*owners))
            raise TypeError(f"unknown setting {name!r}; known: {', '.join(known)}")
    return parts
