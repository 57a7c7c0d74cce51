"""Which database a command or an API call uses: the one place ``$EFFSCALE_STORAGE`` is read.

A storage URL is the one given, else ``$EFFSCALE_STORAGE`` (so that a PostgreSQL password stays
in the environment, out of ``ps`` and shell history), else ``sqlite:///effscale.db``. Every
command's ``--storage`` and every Python API call that takes ``storage`` resolve it here, with
`resolve_storage`. No SQLAlchemy here: ``effscale --help`` reads this module.
"""

from __future__ import annotations

import os
from typing import Any

from effscale._settings import setting, text

STORAGE_ENV = "EFFSCALE_STORAGE"
DEFAULT_STORAGE_URL = "sqlite:///effscale.db"


def environment_storage() -> str | None:
    """``$EFFSCALE_STORAGE`` when it is set and not blank, else None."""
    value = os.environ.get(STORAGE_ENV, "")
    return value if value.strip() else None


def resolve_storage(url: str | None = None) -> str:
    """The storage URL to open: ``url``, else ``$EFFSCALE_STORAGE``, else ``sqlite:///effscale.db``."""
    return url or environment_storage() or DEFAULT_STORAGE_URL


def storage_setting(*, what: str = "SQLAlchemy URL", **options: Any) -> Any:
    """The ``storage`` field of a settings dataclass: a URL, never taken through the REST API (the
    server has its own), whose CLI default is ``$EFFSCALE_STORAGE`` when set (see `resolve_storage`)."""
    return setting(None, api=False, check=text(what="a SQLAlchemy URL"), metavar="URL", cli_default=environment_storage,
                   help=f"{what} (default: ${STORAGE_ENV}, else {DEFAULT_STORAGE_URL})", **options)
