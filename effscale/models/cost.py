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
(linear layers, SE's 1x1 convs on pooled features). So each architecture is traced at two small
sizes: the first gives each module's count per pixel, the second checks, module by module, that
the count really scales with the area (self-attention over H*W tokens does not). At any other
resolution the counts are rescaled by the exact areas a shape-only forward on the ``meta`` device
reports. An architecture that fails the check, or a user network that cannot run on ``meta``, is
traced at every resolution instead. `tests/test_cost.py` checks both paths equal a direct trace.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
from torch import nn

from effscale.errors import UsageError
from effscale.models.registry import Baseline, SpecBaseline, get_baseline
from effscale.models.scaling import check_resolution

FLOPS_CONVENTION = "fvcore total, eval mode, batch 1, 3xRxR input; 1 multiply-add = 1 flop"

# Per module name: (input area, output area) in pixels, None where that tensor is not 4-D.
_Areas = dict[str, tuple[int | None, int | None]]

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


@dataclass(frozen=True)
class _Trace:
    """One fvcore trace: the total and the count per module (each module includes its children)."""

    total: int
    by_module: dict[str, int]


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode (the FLOPs convention; BatchNorm accepts 1x1 maps), then as it was."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _fvcore_trace(model: nn.Module, resolution: int) -> _Trace:
    """The one place fvcore runs: eval mode, batch 1, a 3xRxR input, quiet; training mode restored.

    fvcore logs every operator it skips (SiLU, sigmoid, mul...) and the JIT tracer warns about
    Python control flow; neither says anything about our FLOPs, so both are silenced here.
    """
    from fvcore.nn import FlopCountAnalysis

    fv_logger = logging.getLogger("fvcore")
    level = fv_logger.level
    fv_logger.setLevel(logging.CRITICAL)
    try:
        with _eval_mode(model), warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            analysis = FlopCountAnalysis(model, torch.zeros(1, 3, resolution, resolution))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
            # total() runs the trace; by_module() reads the same cached result.
            return _Trace(int(analysis.total()), dict(analysis.by_module()))
    finally:
        fv_logger.setLevel(level)


def count_flops(model: nn.Module, resolution: int) -> int:
    """fvcore FLOPs of ``model`` at ``resolution`` under `FLOPS_CONVENTION`; fvcore stays quiet."""
    return _fvcore_trace(model, resolution).total


def _spatial_areas(model: nn.Module, resolution: int) -> _Areas:
    """Per module: (input area, output area) in pixels for a square input, None where not 4-D."""
    areas: _Areas = {}

    def area(t: object) -> int | None:
        return int(t.shape[-2] * t.shape[-1]) if isinstance(t, torch.Tensor) and t.ndim == 4 else None

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple, output: object) -> None:
            areas[name] = (area(inputs[0]) if inputs else None, area(output))

        return record

    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()]
    try:
        with _eval_mode(model), torch.no_grad():
            model(torch.zeros(1, 3, resolution, resolution, device=device))
    finally:
        for h in handles:
            h.remove()
    return areas


def _own_flops(model: nn.Module, by_module: dict[str, int]) -> dict[str, int]:
    """The flops each module does itself (its count less its children's); modules with none left out."""
    own = {}
    for name, module in model.named_modules():
        children = sum(by_module.get(f"{name}.{c}" if name else c, 0) for c, _ in module.named_children())
        flops = by_module.get(name, 0) - children
        if flops:
            own[name] = flops
    return own


@dataclass(frozen=True)
class _AreaTerms:
    """fvcore's count of one architecture, module by module: a constant or ``k * area``."""

    # (module, side, k): side None = a constant k; 0 / 1 = k flops per pixel of input / output area
    terms: tuple[tuple[str, int | None, int], ...]
    shape_model: nn.Module  # the same network on the meta device: shapes only, no memory, no maths

    def module_flops(self, areas: _Areas) -> dict[str, int]:
        """Each module's count at the resolution ``areas`` (from `_spatial_areas`) were read at."""
        return {
            name: k if side is None else k * areas[name][side]  # type: ignore[misc]
            for name, side, k in self.terms
        }

    def flops(self, resolution: int) -> int:
        return sum(self.module_flops(_spatial_areas(self.shape_model, resolution)).values())


def _read_area_terms(
    model: nn.Module, shape_model: nn.Module, own: dict[str, int], resolution: int, moved: _Areas
) -> _AreaTerms | None:
    """Split each module's flops at ``resolution`` into a constant or a per-pixel term.

    ``moved`` holds the areas at a larger size. None if some module's count is not a whole
    multiple of its area (not area-linear).
    """
    modules = dict(model.named_modules())
    areas = _spatial_areas(model, resolution)
    # A module whose area does not move with the input (SE's and the classifier's pooled
    # features) is a constant; one that is merely 1x1 at this resolution (ResNet's last stage
    # at 32 px) is not. The areas at a larger size tell the two apart.
    terms: list[tuple[str, int | None, int]] = []
    for name, flops in own.items():
        # The block library's convolutions count per output pixel, BatchNorm and pooling per input
        # pixel; a user module that counts otherwise fails the check at the second resolution.
        side = 1 if isinstance(modules[name], nn.Conv2d) else 0
        pixels = areas.get(name, (None, None))[side]
        if pixels is None or pixels == moved.get(name, (None, None))[side]:
            terms.append((name, None, flops))
        elif flops % pixels == 0:
            terms.append((name, side, flops // pixels))
        else:
            return None
    return _AreaTerms(tuple(terms), shape_model)


def _fit_area_terms(
    model: nn.Module, shape_model: nn.Module, resolution: int
) -> tuple[_AreaTerms | None, dict[int, int]]:
    """Read per-area terms from a trace at ``resolution``; keep them only if a second trace agrees.

    One trace can only say that each module's count *is* a multiple of its area there, not that
    it *scales* with the area: self-attention over the H*W positions costs ~(H*W)^2, a multiple of
    H*W at every size. So the terms must also predict, module by module, a real trace at a second
    size where every feature map differs. That size is ``2 * resolution + 1``, the one the
    constant/area split already looks at: trace time is per-operator overhead, not arithmetic
    (B0: 0.21 s at 64 px, 0.23 s at 129), and an odd size exercises the ceil of every strided
    layer, where an even one would hide it. Also returns the totals traced, by resolution.
    """
    checked_at = 2 * resolution + 1
    checked_areas = _spatial_areas(shape_model, checked_at)
    first = _fvcore_trace(model, resolution)
    traced = {resolution: first.total}
    terms = _read_area_terms(model, shape_model, _own_flops(model, first.by_module), resolution, checked_areas)
    if terms is None:
        return None, traced
    second = _fvcore_trace(model, checked_at)
    traced[checked_at] = second.total
    agrees = terms.module_flops(checked_areas) == _own_flops(model, second.by_module)
    return (terms if agrees else None), traced


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
    if use_cache and _RESCALE_BY_AREA:
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
    baseline: Baseline, signature: tuple, depth: float, width: float, num_classes: int, resolution: int
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
    # The per-pixel terms do not depend on the size they were read at, so trace small (twice the
    # total stride): the trace then costs almost no arithmetic, whatever resolution was asked.
    fitted_at = min(resolution, 2 * baseline.min_resolution)
    terms, traced = _try_area_terms(baseline, model, depth, width, num_classes, fitted_at)
    with _CACHE_LOCK:
        _AREA_TERMS[key] = terms
    if terms is not None:
        return terms.flops(resolution), count_params(model)
    flops = traced[resolution] if resolution in traced else count_flops(model, resolution)
    return flops, count_params(model)


def _try_area_terms(
    baseline: Baseline, model: nn.Module, depth: float, width: float, num_classes: int, fitted_at: int
) -> tuple[_AreaTerms | None, dict[int, int]]:
    """`_fit_area_terms` for any baseline; None (trace every resolution) where a user's cannot.

    A user network may not build or run on the meta device, or may run only at some sizes (a
    Linear after a Flatten): rescaling is an optimisation, so it then falls back to direct traces,
    which were always exact. The block library runs at every size from its total stride up, so
    an error from a spec baseline is a bug and is raised.
    """
    try:
        with torch.device("meta"):
            shape_model = baseline.build(depth, width, num_classes).eval()
        return _fit_area_terms(model, shape_model, fitted_at)
    except Exception:
        if isinstance(baseline, SpecBaseline):
            raise
        return None, {}


def cost_cache_info() -> dict[str, int]:
    with _CACHE_LOCK:
        return {**_STATS, "size": len(_CACHE)}


def clear_cost_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()
        _AREA_TERMS.clear()
        _STATS.update(hits=0, misses=0)
