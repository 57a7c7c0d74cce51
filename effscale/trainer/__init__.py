"""Proxy training: in-memory datasets (`load_data`) and the fast, deterministic `train_proxy`."""

from __future__ import annotations

from effscale.trainer.data import SOURCES, ProxyData, decode_count, default_cache_dir, load_data
from effscale.trainer.proxy import (
    OPTIMIZERS,
    Budget,
    ProxyResult,
    TrainConfig,
    train_proxy,
)

__all__ = [
    "OPTIMIZERS",
    "SOURCES",
    "Budget",
    "ProxyData",
    "ProxyResult",
    "TrainConfig",
    "decode_count",
    "default_cache_dir",
    "load_data",
    "train_proxy",
]
