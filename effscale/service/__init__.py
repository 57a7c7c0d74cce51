"""The effscale web service: REST API, dashboard, search launcher (``effscale serve``).

Names resolve on first use (PEP 562): ``effscale serve`` checks its options before FastAPI,
Optuna and torch are imported.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"create_app": "effscale.service.app", "serve": "effscale.service.server"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'effscale.service' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
