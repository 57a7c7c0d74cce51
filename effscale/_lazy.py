"""Names a package re-exports, resolved on first use (PEP 562).

effscale's packages re-export their public names from modules that import torch, Optuna, Ray or
FastAPI; resolving them lazily keeps ``effscale --help`` and the option checks free of those
imports. One helper, so that every package resolves and caches its names the same way.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``exports`` maps each name to the module
    that defines it. A name is imported on first use and then stored in the package itself, so
    later lookups are plain attribute reads."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
