"""Measured cost: parameters and FLOPs of the network actually built, counted by fvcore.

FLOPs convention (the only place it is defined): fvcore ``FlopCountAnalysis(...).total()`` for the
model in eval mode, batch 1, a square 3-channel input. One fused multiply-add counts as one flop
(so "FLOPs" here are the paper's multiply-adds), and BatchNorm, pooling and the rest are counted
as fvcore counts them; element-wise activations fvcore does not count.

Measurements are cached by architecture signature: many (d, w, r) settings build the same network
after rounding (for B0 every depth in (1.0, 1.25] builds the same 23 blocks), and a search grid
hits the same few networks again and again.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import warnings
from dataclasses import asdict, dataclass

import torch
from torch import nn

from effscale.errors import UsageError
from effscale.models.registry import Baseline, get_baseline

FLOPS_CONVENTION = "fvcore total, eval mode, batch 1, 3xRxR input; 1 multiply-add = 1 flop"

_CACHE: dict[tuple, "Cost"] = {}
_CACHE_LOCK = threading.Lock()
_STATS = {"hits": 0, "misses": 0}


@dataclass(frozen=True)
class Cost:
    params: int
    flops: int
    resolution: int
    arch_id: str  # equal ids: the same network at the same resolution
    flops_convention: str = FLOPS_CONVENTION

    def as_dict(self) -> dict:
        return asdict(self)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, resolution: int) -> int:
    """fvcore FLOPs of ``model`` at ``resolution`` under `FLOPS_CONVENTION`; fvcore stays quiet."""
    from fvcore.nn import FlopCountAnalysis

    was_training = model.training
    model.eval()
    fv_logger = logging.getLogger("fvcore")
    level = fv_logger.level
    fv_logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            analysis = FlopCountAnalysis(model, torch.zeros(1, 3, resolution, resolution))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
            return int(analysis.total())
    finally:
        fv_logger.setLevel(level)
        model.train(was_training)


def arch_id(signature: tuple, resolution: int) -> str:
    return hashlib.sha1(repr((signature, resolution)).encode()).hexdigest()[:12]


def _check_resolution(resolution: int, minimum: int = 1) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, int):
        raise UsageError(f"resolution={resolution!r} must be a whole number of pixels")
    if resolution < minimum:
        raise UsageError(f"resolution={resolution} is too small; pass at least {minimum} (the network's total stride)")
    return resolution


def measure_cost(
    model_or_baseline: nn.Module | Baseline | str,
    resolution: int,
    *,
    depth: float = 1.0,
    width: float = 1.0,
    num_classes: int = 1000,
    use_cache: bool = True,
) -> Cost:
    """Params and FLOPs of a built model, or of ``baseline`` scaled by (depth, width).

    For a baseline, the result is cached by its architecture signature, so settings that round
    to the same network are measured once and share ``arch_id``.
    """
    if isinstance(model_or_baseline, nn.Module):
        resolution = _check_resolution(resolution)
        model = model_or_baseline
        layout = tuple((n, tuple(p.shape)) for n, p in model.named_parameters())
        return Cost(count_params(model), count_flops(model, resolution), resolution, arch_id(layout, resolution))

    baseline = get_baseline(model_or_baseline)
    resolution = _check_resolution(resolution, baseline.min_resolution)
    if num_classes < 1:
        raise UsageError(f"num_classes={num_classes} must be >= 1")
    signature = baseline.signature(depth, width)
    key = (signature, resolution, num_classes)
    if use_cache:
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
            if cached is not None:
                _STATS["hits"] += 1
                return cached
    model = baseline.build(depth, width, num_classes)
    cost = Cost(count_params(model), count_flops(model, resolution), resolution, arch_id(signature, resolution))
    if use_cache:
        with _CACHE_LOCK:
            _STATS["misses"] += 1
            _CACHE[key] = cost
    return cost


def cost_cache_info() -> dict[str, int]:
    with _CACHE_LOCK:
        return {**_STATS, "size": len(_CACHE)}


def clear_cost_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()
        _STATS.update(hits=0, misses=0)
