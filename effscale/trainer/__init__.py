"""Proxy training: the recipe (`ProxyRecipe`), in-memory datasets (`load_data`) and the fast,
deterministic `train_proxy`.

Only the recipe is imported eagerly: it has no torch, so ``effscale --help`` and the option
checks can read it cheaply. The other names resolve on first use (PEP 562) and bring torch then.
"""

from __future__ import annotations

from effscale._lazy import lazy_exports
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

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
