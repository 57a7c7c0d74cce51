"""Storage: Optuna's RDB storage plus effscale's own tables, in one database named by a URL.

Which URL (the one given, ``$EFFSCALE_STORAGE``, the default) is `resolve_storage`'s to say
(`effscale.storage.url`). Names resolve on first use (PEP 562): reading the URL's default, as
``effscale --help`` does, loads no SQLAlchemy.
"""

from __future__ import annotations

from effscale._lazy import lazy_exports
from effscale.storage.url import DEFAULT_STORAGE_URL, STORAGE_ENV, environment_storage, resolve_storage

_EXPORTS = {
    "SUPPORTED_SCHEMES": "effscale.storage.engine",
    "StorageError": "effscale.storage.engine",
    "dispose_engines": "effscale.storage.engine",
    "engine_options": "effscale.storage.engine",
    "normalize_url": "effscale.storage.engine",
    "open_storage": "effscale.storage.optuna_storage",
    "redact_url": "effscale.storage.engine",
    "require_existing": "effscale.storage.engine",
    "sqlite_file_missing": "effscale.storage.engine",
    "validate_url": "effscale.storage.engine",
    "STATUSES": "effscale.storage.store",
    "TERMINAL_STATUSES": "effscale.storage.store",
    "ProjectStore": "effscale.storage.store",
    "SearchRecord": "effscale.storage.store",
    "SCHEMA_VERSION": "effscale.storage.tables",
}

__all__ = sorted([*_EXPORTS, "DEFAULT_STORAGE_URL", "STORAGE_ENV", "environment_storage", "resolve_storage"])

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
