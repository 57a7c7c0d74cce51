"""Proxy training: the recipe (`ProxyRecipe`), in-memory datasets (`load_data`) and the fast,
deterministic `train_proxy`.

Only the recipe is imported eagerly: it has no torch, so ``effscale --help`` and the option
checks can read it cheaply. The other names resolve on first use (PEP 562) and bring torch then.
"""

from __future__ import annotations

import importlib
from typing import Any

from effscale.trainer.recipe import OPTIMIZERS, Budget, ProxyRecipe

_LAZY = {
    "SOURCES": "effscale.trainer.data",
    "ProxyData": "effscale.trainer.data",
    "decode_count": "effscale.trainer.data",
    "default_cache_dir": "effscale.trainer.data",
    "load_data": "effscale.trainer.data",
    "ProxyResult": "effscale.trainer.proxy",
    "train_proxy": "effscale.trainer.proxy",
}

__all__ = [
    "OPTIMIZERS",
    "SOURCES",
    "Budget",
    "ProxyData",
    "ProxyRecipe",
    "ProxyResult",
    "decode_count",
    "default_cache_dir",
    "load_data",
    "train_proxy",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # resolve once; later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
