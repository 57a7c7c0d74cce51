"""Every command's flags, generated from its settings dataclasses (`effscale._settings`).

A command names the dataclasses that configure it; each `setting` field becomes one flag (or a
positional argument) with the field's help, choices and metavar, and a handler builds the
dataclass back from what was given, so the dataclass's own check refuses a bad value in one line.
An absent flag leaves the field's default, except where the field names a CLI default
(``--storage``: ``$EFFSCALE_STORAGE``, see `effscale.storage.url`).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

T = TypeVar("T")
RECIPE_GROUP = "proxy training"  # where `ProxyRecipe`'s flags go, in every command that trains


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (argparse prints the whole usage block first), and
    a value that starts with a minus and a digit is a value, not a flag: ``--phi -2,-1,0.5,1``
    (argparse itself takes only a plain negative number, ``-2``, for one)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\.?\d[\d.,:\-]*$")

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


@dataclass(frozen=True)
class Command:
    """One subcommand: its handler, its one-line help and the settings dataclasses behind its flags
    (``settings`` imports them when the parser is built: ``effscale`` alone needs none)."""

    name: str
    run: Callable[[argparse.Namespace], int]
    help: str
    settings: Callable[[], tuple[type, ...]] = tuple
    json: bool = True  # offers --json (serve prints no document, so it offers none)


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


_PARSE_KIND: dict[type, Callable[[str], Any]] = {int: _whole, float: _finite_float, str: str}
_METAVAR = {int: "N", float: "X", str: "TEXT"}


def add_command(sub: Any, command: Command) -> argparse.ArgumentParser:
    """The subparser of ``command``: --json where it prints one, then its settings' flags."""
    p = sub.add_parser(command.name, help=command.help, description=command.help)
    if command.json:
        p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.set_defaults(handler=command.run, json=False)
    from effscale.trainer.recipe import ProxyRecipe

    groups: dict[str, Any] = {}
    for cls in command.settings():
        add_settings(p, cls, groups=groups, group=RECIPE_GROUP if cls is ProxyRecipe else None)
    return p


def add_settings(parser: argparse.ArgumentParser, cls: type, *, groups: dict[str, Any], group: str | None = None) -> None:
    """One argparse option per `setting` field of ``cls`` (in ``group`` unless the field names its
    own); an absent flag leaves the dataclass default, or the field's CLI default."""
    from effscale._settings import flag, settings_of

    for f, meta in settings_of(cls):
        name = meta.group or group
        if name is not None and name not in groups:
            groups[name] = parser.add_argument_group(name)
        target = parser if name is None else groups[name]
        help_text = meta.help.replace("%", "%%")
        if meta.positional:
            target.add_argument(f.name, help=help_text, **({} if meta.required else {"nargs": "?"}))
            continue
        default = meta.cli_default() if meta.cli_default is not None else None
        default = argparse.SUPPRESS if default is None else default
        flags = (flag(f.name), *meta.aliases)
        if meta.kind is bool:
            target.add_argument(*flags, dest=f.name, action="store_true", default=default, help=help_text)
        else:
            target.add_argument(
                *flags, dest=f.name, type=_PARSE_KIND[meta.kind], choices=meta.choices, default=default,
                metavar=meta.metavar or (None if meta.choices else _METAVAR[meta.kind]), required=meta.required,
                help=help_text,
            )


def given(args: argparse.Namespace, *classes: type) -> dict[str, Any]:
    """The settings of ``classes`` the command line gave (or their CLI defaults), by field name."""
    names = {f.name for cls in classes for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names}


def options(args: argparse.Namespace, cls: type[T]) -> T:
    """``cls`` built from the command line. A value its checks refuse is refused as argparse refuses
    a malformed one, before the command does anything: one line on stderr and exit 2."""
    from effscale.errors import UsageError

    try:
        return cls(**given(args, cls))
    except UsageError as exc:
        sys.stderr.write(f"effscale {args.command}: error: {exc}\n")
        raise SystemExit(2) from None
