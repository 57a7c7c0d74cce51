"""Measured cost: parameters and FLOPs of the network actually built, counted by fvcore.

FLOPs convention (the only place it is defined): fvcore ``FlopCountAnalysis(...).total()`` for the
model in eval mode, batch 1, a square 3-channel input. One fused multiply-add counts as one flop
(so "FLOPs" here are the paper's multiply-adds), and BatchNorm, pooling and the rest are counted
as fvcore counts them; element-wise activations fvcore does not count.

Measurements are cached by architecture signature: many (d, w, r) settings build the same network
after rounding (for B0 every depth in (1.0, 1.25] builds the same 23 blocks), and a search grid
hits the same few networks again and again.

Resolution is the other axis a grid sweeps, and a trace costs ~0.1-1 s. For baselines built from
the block library, every flop fvcore counts is (per module) a whole multiple of that module's
spatial area (convolutions: output area; BatchNorm and pooling: input area) or a constant
(linear layers, SE's 1x1 convs on pooled features). So each architecture is traced once; at another
resolution its per-module counts are rescaled by the exact areas a shape-only forward on the
``meta`` device reports. `tests/test_cost.py` checks this equals a direct fvcore trace.
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
from effscale.models.registry import Baseline, SpecBaseline, get_baseline
from effscale.models.scaling import check_resolution

FLOPS_CONVENTION = "fvcore total, eval mode, batch 1, 3xRxR input; 1 multiply-add = 1 flop"

_CACHE: dict[tuple, "Cost"] = {}
_AREA_TERMS: dict[tuple, "_AreaTerms | None"] = {}
_RESCALE_BY_AREA = True  # benchmarks/bench_cost_cache.py switches it off to show what it saves
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


def _spatial_areas(model: nn.Module, resolution: int) -> dict[str, tuple[int | None, int | None]]:
    """Per module: (input area, output area) in pixels for a square input, None where not 4-D."""
    areas: dict[str, tuple[int | None, int | None]] = {}

    def area(t: object) -> int | None:
        return int(t.shape[-2] * t.shape[-1]) if isinstance(t, torch.Tensor) and t.ndim == 4 else None

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple, output: object) -> None:
            areas[name] = (area(inputs[0]) if inputs else None, area(output))

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, resolution, resolution, device=next(model.parameters()).device))
    finally:
        for h in handles:
            h.remove()
    return areas


@dataclass(frozen=True)
class _AreaTerms:
    """fvcore's count of one architecture as ``constant + sum(k * area)`` over its modules."""

    constant: int
    terms: tuple[tuple[str, int, int], ...]  # (module, 0 = input area / 1 = output area, flops per pixel)
    shape_model: nn.Module  # the same network on the meta device: shapes only, no memory, no maths

    def flops(self, resolution: int) -> int:
        areas = _spatial_areas(self.shape_model, resolution)
        return self.constant + sum(k * areas[name][side] for name, side, k in self.terms)  # type: ignore[misc]


def _area_terms(model: nn.Module, shape_model: nn.Module, resolution: int) -> tuple[int, "_AreaTerms | None"]:
    """Trace ``model`` once with fvcore; return its total and, if exact, its per-area terms."""
    from fvcore.nn import FlopCountAnalysis

    model.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        analysis = FlopCountAnalysis(model, torch.zeros(1, 3, resolution, resolution))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
        total = int(analysis.total())
        by_module = analysis.by_module()
    areas = _spatial_areas(model, resolution)
    # A module whose area does not move with the input (SE's and the classifier's pooled
    # features) is a constant; one that is merely 1x1 at this resolution (ResNet's last stage
    # at 32 px) is not. A shape-only pass at a larger size tells the two apart.
    moved = _spatial_areas(shape_model, 2 * resolution + 1)
    constant, terms = 0, []
    for name, module in model.named_modules():
        own = by_module.get(name, 0) - sum(by_module.get(f"{name}.{c}" if name else c, 0) for c, _ in module.named_children())
        if own == 0:
            continue
        side = 1 if isinstance(module, nn.Conv2d) else 0
        pixels = areas.get(name, (None, None))[side]
        if pixels is None or pixels == moved.get(name, (None, None))[side]:
            constant += own
        elif own % pixels == 0:
            terms.append((name, side, own // pixels))
        else:
            return total, None  # not a whole multiple: keep tracing this architecture
    result = _AreaTerms(constant, tuple(terms), shape_model)
    return total, (result if result.flops(resolution) == total else None)


def arch_id(signature: tuple, resolution: int) -> str:
    return hashlib.sha1(repr((signature, resolution)).encode()).hexdigest()[:12]


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
        resolution = check_resolution(resolution)
        model = model_or_baseline
        layout = tuple((n, tuple(p.shape)) for n, p in model.named_parameters())
        return Cost(count_params(model), count_flops(model, resolution), resolution, arch_id(layout, resolution))

    baseline = get_baseline(model_or_baseline)
    resolution = check_resolution(resolution, baseline.min_resolution)
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
    if isinstance(baseline, SpecBaseline) and use_cache and _RESCALE_BY_AREA:
        flops, params = _flops_by_area(baseline, signature, depth, width, num_classes, resolution)
    else:
        model = baseline.build(depth, width, num_classes)
        flops, params = count_flops(model, resolution), count_params(model)
    cost = Cost(params, flops, resolution, arch_id(signature, resolution))
    if use_cache:
        with _CACHE_LOCK:
            _STATS["misses"] += 1
            _CACHE[key] = cost
    return cost


def _flops_by_area(
    baseline: SpecBaseline, signature: tuple, depth: float, width: float, num_classes: int, resolution: int
) -> tuple[int, int]:
    key = (signature, num_classes)
    with _CACHE_LOCK:
        known = key in _AREA_TERMS
        terms = _AREA_TERMS.get(key)
    if terms is not None:
        return terms.flops(resolution), count_params(terms.shape_model)
    model = baseline.build(depth, width, num_classes)
    if known:  # this architecture is not area-linear: trace at every resolution
        return count_flops(model, resolution), count_params(model)
    with torch.device("meta"):
        shape_model = baseline.build(depth, width, num_classes).eval()
    # The per-pixel terms do not depend on the size they were read at, so trace small (twice the
    # total stride): the trace then costs almost no arithmetic, whatever resolution was asked.
    traced_at = min(resolution, 2 * baseline.min_resolution)
    total, terms = _area_terms(model, shape_model, traced_at)
    with _CACHE_LOCK:
        _AREA_TERMS[key] = terms
    if terms is None:
        return (total if traced_at == resolution else count_flops(model, resolution)), count_params(model)
    return terms.flops(resolution), count_params(model)


def cost_cache_info() -> dict[str, int]:
    with _CACHE_LOCK:
        return {**_STATS, "size": len(_CACHE)}


def clear_cost_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()
        _AREA_TERMS.clear()
        _STATS.update(hits=0, misses=0)
