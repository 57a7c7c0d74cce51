"""The read-only queries' settings (`effscale studies`, `effscale trials`), declared once (see
`effscale._settings`). A query never creates a database. No Optuna here: the CLI reads this module
to build ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass

from effscale._settings import check_settings, setting, text, whole
from effscale.storage.url import storage_setting

SORTS = ("number", "value", "flops")


@dataclass(frozen=True)
class StudiesOptions:
    """The searches and comparisons in one database."""

    storage: str | None = storage_setting()

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass(frozen=True)
class TrialsOptions:
    """One search's trials, sorted and limited."""

    storage: str | None = storage_setting()
    study: str = setting(None, required=True, check=text(max_length=512, what="a study name"), metavar="NAME",
                         help="the search whose trials to list")
    sort: str = setting("value", choices=SORTS, help="value: best top-1 first (default); number; flops: cheapest first")
    limit: int | None = setting(None, kind=int, check=whole(0, above=True, example=50), metavar="N",
                                help="at most this many trials (default: all)")

    def __post_init__(self) -> None:
        check_settings(self)
