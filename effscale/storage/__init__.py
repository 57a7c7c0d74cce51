"""Storage: Optuna's RDB storage plus effscale's own tables, in one database named by a URL."""

from __future__ import annotations

from effscale.storage.engine import (
    DEFAULT_STORAGE_URL,
    SUPPORTED_SCHEMES,
    StorageError,
    dispose_engines,
    engine_options,
    normalize_url,
    open_storage,
    redact_url,
    require_existing,
    sqlite_file_missing,
    validate_url,
)
from effscale.storage.store import (
    STATUSES,
    TERMINAL_STATUSES,
    ProjectStore,
    SearchRecord,
)
from effscale.storage.tables import SCHEMA_VERSION

__all__ = [
    "DEFAULT_STORAGE_URL",
    "SCHEMA_VERSION",
    "STATUSES",
    "SUPPORTED_SCHEMES",
    "TERMINAL_STATUSES",
    "ProjectStore",
    "SearchRecord",
    "StorageError",
    "dispose_engines",
    "engine_options",
    "normalize_url",
    "open_storage",
    "redact_url",
    "require_existing",
    "sqlite_file_missing",
    "validate_url",
]
