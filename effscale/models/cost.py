"""Measured cost: parameters and FLOPs of the network actually built, counted by fvcore.

FLOPs convention (the only place it is defined): fvcore ``FlopCountAnalysis(...).total()`` for the
model in eval mode, batch 1, a square 3-channel input. One fused multiply-add counts as one flop
(so "FLOPs" here are the paper's multiply-adds), and BatchNorm, pooling and the rest are counted
as fvcore counts them; element-wise activations fvcore does not count.

Measurements are cached by architecture signature: many (d, w, r) settings build the same network
after rounding (for B0 every depth in (1.0, 1.25] builds the same 23 blocks), and a search grid
hits the same few networks again and again.

Resolution is the other axis a grid sweeps, and a trace is slow next to a lookup. Every flop
fvcore counts in the block library is, per module, a whole multiple of that module's spatial area
(convolutions: output area; BatchNorm and pooling: input area) or a constant (linear layers,
SE's 1x1 convs on pooled features), so FLOPs are one measure (`FLOPS`) on `effscale.models.probe`:
a spec baseline's count is composed from a two-blocks-per-stage probe traced at twice the total
stride (and once per geometry at 2x+1 that, to check the split); any other baseline's whole network
is fitted the same way; an architecture that fails the check, or a user network that cannot run
on ``meta``, is traced at every resolution. `tests/test_cost.py` checks every path equals a
direct trace; ``benchmarks/bench_cost_cache.py`` and ``benchmarks/bench_plan.py`` measure what
each layer saves.

Results persist across processes (`effscale.models.diskcache`), keyed by the architecture
signature, the resolution, the class count and the versions and model code they depend on, so a
second plan of the same grid traces nothing.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass

import torch
from torch import nn

from effscale.errors import UsageError
from effscale.models import probe
from effscale.models.diskcache import DiskCache
from effscale.models.registry import Baseline, SpecBaseline, get_baseline
from effscale.models.scaling import check_resolution

FLOPS_CONVENTION = "fvcore total, eval mode, batch 1, 3xRxR input; 1 multiply-add = 1 flop"


def flops_convention(num_classes: int | None) -> str:
    """`FLOPS_CONVENTION` naming the classifier head the figures include (it changes FLOPs and params)."""
    if num_classes is None:
        return FLOPS_CONVENTION
    counted, flop = FLOPS_CONVENTION.split("; ")
    return f"{counted}, {num_classes}-class head; {flop}"


_CACHE: dict[tuple, "Cost"] = {}
# Switches benchmarks flip to show what each optimisation saves (bench_cost_cache.py, bench_plan.py).
_RESCALE_BY_AREA = True
_COMPOSE_BLOCKS = True
_DISK_CACHE = True
_ONE_THREAD = True
_STATS = {"hits": 0, "misses": 0, "disk_hits": 0, "traces": 0}
_COST_DISK = DiskCache("cost", code=("models",))


@dataclass(frozen=True)
class Cost:
    params: int
    flops: int
    resolution: int
    arch_id: str  # equal ids: the same network at the same resolution
    num_classes: int | None = 1000  # the classifier head measured; None: a given module's own
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


def _fvcore_trace(model: nn.Module, resolution: int, analysis: type | None = None) -> _Trace:
    """The one place fvcore runs: eval mode, batch 1, a 3xRxR input, quiet; training mode restored.
    ``analysis`` is fvcore's ``FlopCountAnalysis`` unless another of its analyses is given (they
    share the interface: ``ActivationCountAnalysis`` counts what each module outputs).

    fvcore logs every operator it skips (SiLU, sigmoid, mul...) and the JIT tracer warns about
    Python control flow; neither says anything about our FLOPs, so both are silenced here. It runs
    on one intra-op thread: a batch-1 trace at 64 px is hundreds of tiny operators that a second
    thread cannot speed up, and on a shared machine every one of them then waits for a busy core.
    """
    from fvcore.nn import FlopCountAnalysis

    with probe.LOCK:
        _STATS["traces"] += 1
    fv_logger = logging.getLogger("fvcore")
    level = fv_logger.level
    fv_logger.setLevel(logging.CRITICAL)
    one_thread = probe.threads(1) if _ONE_THREAD else nullcontext()
    try:
        with probe.eval_mode(model), one_thread, warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            counted = (analysis or FlopCountAnalysis)(model, torch.zeros(1, 3, resolution, resolution))
            counted.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
            # total() runs the trace; by_module() reads the same cached result.
            return _Trace(int(counted.total()), dict(counted.by_module()))
    finally:
        fv_logger.setLevel(level)


def count_flops(model: nn.Module, resolution: int) -> int:
    """fvcore FLOPs of ``model`` at ``resolution`` under `FLOPS_CONVENTION`; fvcore stays quiet."""
    return _fvcore_trace(model, resolution).total


def _flops_readings(model: nn.Module, trace: _Trace) -> probe.Readings:
    """The probe's readings of one trace: the flops each module does itself, and its parameters."""
    own = probe.own_counts(model, trace.by_module)
    return {("flops", name, 0): flops for name, flops in own.items()} | probe.own_params(model)


FLOPS = probe.Measure("flops", lambda model, resolution: _flops_readings(model, _fvcore_trace(model, resolution)))


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
    """Params and FLOPs of a built model, or of ``baseline`` scaled by (depth, width) with a
    ``num_classes`` head (1000 by default: the paper's ImageNet figures).

    For a baseline, the result is cached by its architecture signature, so settings that round
    to the same network are measured once and share ``arch_id``; a spec baseline's results also
    persist on disk (`DiskCache`). ``use_cache=False`` builds the network and traces it directly.
    """
    if isinstance(model_or_baseline, nn.Module):
        resolution = check_resolution(resolution)
        model = model_or_baseline
        layout = tuple((n, tuple(p.shape)) for n, p in model.named_parameters())
        return Cost(count_params(model), count_flops(model, resolution), resolution, arch_id(layout, resolution), None)

    baseline = get_baseline(model_or_baseline)
    resolution = check_resolution(resolution, baseline.min_resolution)
    if num_classes < 1:
        raise UsageError(f"num_classes={num_classes} must be >= 1")
    signature = baseline.signature(depth, width)

    def cost(params: int, flops: int) -> Cost:
        return Cost(params, flops, resolution, arch_id(signature, resolution), num_classes, flops_convention(num_classes))

    if not use_cache:
        model = baseline.build(depth, width, num_classes)
        return cost(count_params(model), count_flops(model, resolution))
    key = (signature, resolution, num_classes)
    with probe.LOCK:
        cached = _CACHE.get(key)
        _STATS["hits" if cached is not None else "misses"] += 1
    if cached is not None:
        return cached
    # Only spec baselines go to disk: a user function's signature is its parameter layout, which
    # an edit to its forward() would not change.
    (params, flops), from_disk = _COST_DISK.cached(
        key, lambda: _measure(baseline, signature, depth, width, num_classes, resolution),
        load=lambda stored: (int(stored["params"]), int(stored["flops"])),
        dump=lambda measured: {"params": measured[0], "flops": measured[1]},
        enabled=_DISK_CACHE and isinstance(baseline, SpecBaseline),
    )
    with probe.LOCK:
        _STATS["disk_hits"] += from_disk
        return _CACHE.setdefault(key, cost(params, flops))


def _measure(
    baseline: Baseline, signature: tuple, depth: float, width: float, num_classes: int, resolution: int
) -> tuple[int, int]:
    """(params, FLOPs) by the cheapest exact path: composed from a probe, rescaled, or traced."""
    if _RESCALE_BY_AREA and _COMPOSE_BLOCKS and isinstance(baseline, SpecBaseline):
        composed = probe.compose_spec(FLOPS, baseline, depth=depth, width=width, num_classes=num_classes,
                                      resolution=resolution, fit_at=2 * baseline.min_resolution)
        if composed is not None:
            return composed.total("params"), composed.total("flops")
    if _RESCALE_BY_AREA:
        return _flops_by_area(baseline, signature, depth, width, num_classes, resolution)
    model = baseline.build(depth, width, num_classes)
    return count_params(model), count_flops(model, resolution)


def _flops_by_area(
    baseline: Baseline, signature: tuple, depth: float, width: float, num_classes: int, resolution: int
) -> tuple[int, int]:
    """(params, FLOPs) from the whole network's terms, fitted once per architecture; where they are
    not area-linear, a trace at every resolution (the fit's own trace reused where it was asked)."""
    traced: dict[int, int] = {}
    # The terms do not depend on the size they were read at, so read small (twice the total
    # stride): the trace then costs almost no arithmetic, whatever resolution was asked.
    fitted_at = min(resolution, 2 * baseline.min_resolution)
    fitted = probe.memo(("network", FLOPS.name, signature, num_classes),
                        lambda: _fit_network(baseline, depth, width, num_classes, fitted_at, traced))
    if fitted is not None:
        composed = fitted.compose(resolution)
        return composed.total("params"), composed.total("flops")
    model = baseline.build(depth, width, num_classes)
    return count_params(model), traced[resolution] if resolution in traced else count_flops(model, resolution)


def _fit_network(
    baseline: Baseline, depth: float, width: float, num_classes: int, fitted_at: int, traced: dict[int, int]
) -> probe.Fitted | None:
    """`probe.fit_network` for any baseline, each trace's total kept in ``traced``; None (trace
    every resolution) where a user's network cannot be fitted.

    A user network may not build or run on the meta device, or may run only at some sizes (a
    Linear after a Flatten): rescaling is an optimisation, so it then falls back to direct traces,
    which were always exact. The block library runs at every size from its total stride up, so
    an error from a spec baseline is a bug and is raised.
    """
    def read(model: nn.Module, resolution: int) -> probe.Readings:
        trace = _fvcore_trace(model, resolution)
        traced[resolution] = trace.total
        return _flops_readings(model, trace)

    try:
        model = baseline.build(depth, width, num_classes)
        with torch.device("meta"):
            shape_model = baseline.build(depth, width, num_classes).eval()
        return probe.fit_network(probe.Measure(FLOPS.name, read), model, shape_model, fitted_at)
    except Exception:
        if isinstance(baseline, SpecBaseline):
            raise
        return None


def cost_cache_info() -> dict[str, int]:
    """Counters since the last `clear_cost_cache`: in-process hits and misses, disk hits, fvcore traces."""
    with probe.LOCK:
        return {**_STATS, "size": len(_CACHE)}


def clear_cost_cache() -> None:
    """Forget this process's measurements -- costs, and every probe's terms (FLOPs and activation
    counts alike) -- and reset the counters. The disk cache stays: delete ``cache_root()``'s files."""
    probe.clear_probes()
    with probe.LOCK:
        _CACHE.clear()
        _STATS.update(hits=0, misses=0, disk_hits=0, traces=0)
