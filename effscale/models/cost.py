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

A baseline built from specs goes one step further (`_composed_cost`): every block after a stage's
first is the same module (``stage.out -> stage.out``, stride 1), so a network's counts are those of
a *probe* with two blocks per stage, the second one's counted ``repeats - 1`` times. One probe per
width serves every depth (the default B0 grid: 7 probes instead of 28 networks), its area check
runs once per module geometry (strides do not depend on width), and the areas at a resolution
are read once per geometry from a ``meta`` model rather than once per network. Traces run on one
thread (`_one_thread`). Together: the default B0 grid's 196 (network, resolution) pairs cost 8
traces instead of 56 (``benchmarks/bench_cost_cache.py``, ``benchmarks/bench_plan.py``).

Results persist across processes in `DiskCache` (one small JSON file per key under
``$EFFSCALE_CACHE_DIR``, else ``~/.cache/effscale``), keyed by the architecture signature, the
resolution, the class count and `cache_versions` (effscale, torch, fvcore and a digest of the
model code), so a second plan of the same grid traces nothing.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import logging
import os
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from effscale.errors import UsageError
from effscale.models.network import ScalableNet
from effscale.models.registry import Baseline, SpecBaseline, get_baseline
from effscale.models.scaling import check_resolution
from effscale.models.specs import ScaledSpec, scale_spec

FLOPS_CONVENTION = "fvcore total, eval mode, batch 1, 3xRxR input; 1 multiply-add = 1 flop"


def flops_convention(num_classes: int | None) -> str:
    """`FLOPS_CONVENTION` naming the classifier head the figures include (it changes FLOPs and params)."""
    if num_classes is None:
        return FLOPS_CONVENTION
    counted, flop = FLOPS_CONVENTION.split("; ")
    return f"{counted}, {num_classes}-class head; {flop}"


# Per module name: (input area, output area) in pixels, None where that tensor is not 4-D.
_Areas = dict[str, tuple[int | None, int | None]]

_CACHE: dict[tuple, "Cost"] = {}
_AREA_TERMS: dict[tuple, "_AreaTerms | None"] = {}
_PROBES: dict[tuple, "_Probe | None"] = {}
_AREAS: dict[tuple[str, int], _Areas] = {}  # by (geometry, resolution)
_SHAPE_MODELS: dict[str, nn.Module] = {}  # a meta model per geometry
_CHECKED: set[str] = set()  # geometries whose area terms passed the second trace
# Switches benchmarks flip to show what each optimisation saves (bench_cost_cache.py, bench_plan.py).
_RESCALE_BY_AREA = True
_COMPOSE_BLOCKS = True
_DISK_CACHE = True
_ONE_THREAD = True
_CACHE_LOCK = threading.Lock()
_STATS = {"hits": 0, "misses": 0, "disk_hits": 0, "traces": 0}


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


# ---------------------------------------------------------------------------------------------
# the persistent cache


def cache_root() -> Path:
    """``$EFFSCALE_CACHE_DIR``, else ``~/.cache/effscale`` (read on every call: tests move it)."""
    env = os.environ.get("EFFSCALE_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "effscale"


_VERSIONS: dict[str, str] = {}


def cache_versions() -> dict[str, str]:
    """What a cached measurement depends on besides its key: effscale's, torch's and fvcore's
    versions, and a digest of effscale's model and trainer code (a block edited in a working tree
    changes FLOPs without changing the version string)."""
    if not _VERSIONS:
        import importlib.metadata

        from effscale._version import __version__

        package = Path(__file__).resolve().parent.parent
        digest = hashlib.sha1()
        for source in sorted([*package.glob("models/*.py"), *package.glob("trainer/*.py")]):
            digest.update(source.name.encode() + source.read_bytes())
        try:
            fvcore = importlib.metadata.version("fvcore")
        except importlib.metadata.PackageNotFoundError:
            fvcore = "unknown"
        _VERSIONS.update(effscale=__version__, torch=torch.__version__, fvcore=fvcore, code=digest.hexdigest()[:16])
    return dict(_VERSIONS)


class DiskCache:
    """Measurements that outlive the process: one small JSON file per key under ``cache_root()/kind``.

    Why a file per key: each write is a whole file written to a temporary name and renamed over
    the target (`os.replace`, atomic on POSIX and Windows), so concurrent writers (two searches, or
    Ray workers) never interleave bytes and readers never see half a file; the last writer wins, with
    the same value. No lock, no database to corrupt as a whole: a damaged file is one miss, rewritten
    by the next measurement. The file repeats its full key, so a hash collision or a file copied
    between keys is also a miss. An unwritable cache directory only costs the speed-up.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def _locate(self, key: Any) -> tuple[Path, str]:
        text = json.dumps([self.kind, key, cache_versions()], sort_keys=True, default=repr)
        return cache_root() / self.kind / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.json", text

    def get(self, key: Any) -> Any:
        """The value stored under ``key``, or None (absent, unreadable, corrupt or another key's)."""
        path, text = self._locate(key)
        try:
            document = json.loads(path.read_text())
            return document["value"] if document.get("key") == text else None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def put(self, key: Any, value: Any) -> None:
        path, text = self._locate(key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"key": text, "value": value}))
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)

    def path(self, key: Any) -> Path:
        return self._locate(key)[0]


_COST_DISK = DiskCache("cost")


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


@contextmanager
def _one_thread() -> Iterator[None]:
    """Trace on one intra-op thread. A batch-1 trace at 64 px is hundreds of tiny operators that a
    second thread cannot speed up, and on a shared machine every one of them then waits for a busy
    core: a B0 probe's trace measured 0.15 s of CPU on one thread and 0.6-2.0 s on two (load 7)."""
    threads = torch.get_num_threads()
    if not _ONE_THREAD or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _fvcore_trace(model: nn.Module, resolution: int) -> _Trace:
    """The one place fvcore runs: eval mode, batch 1, a 3xRxR input, quiet; training mode restored.

    fvcore logs every operator it skips (SiLU, sigmoid, mul...) and the JIT tracer warns about
    Python control flow; neither says anything about our FLOPs, so both are silenced here.
    """
    from fvcore.nn import FlopCountAnalysis

    with _CACHE_LOCK:
        _STATS["traces"] += 1
    fv_logger = logging.getLogger("fvcore")
    level = fv_logger.level
    fv_logger.setLevel(logging.CRITICAL)
    try:
        with _eval_mode(model), _one_thread(), warnings.catch_warnings(), torch.no_grad():
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
    model: nn.Module, shape_model: nn.Module, own: dict[str, int], areas: _Areas, moved: _Areas
) -> _AreaTerms | None:
    """Split each module's flops, traced where the areas were ``areas``, into a constant or a
    per-pixel term.

    ``moved`` holds the areas at a larger size. None if some module's count is not a whole
    multiple of its area (not area-linear).
    """
    modules = dict(model.named_modules())
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
    model: nn.Module,
    shape_model: nn.Module,
    resolution: int,
    *,
    areas_at: Callable[[int], _Areas] | None = None,
    check: bool = True,
) -> tuple[_AreaTerms | None, dict[int, int]]:
    """Read per-area terms from a trace at ``resolution``; keep them only if a second trace agrees.

    One trace can only say that each module's count *is* a multiple of its area there, not that
    it *scales* with the area: self-attention over the H*W positions costs ~(H*W)^2, a multiple of
    H*W at every size. So the terms must also predict, module by module, a real trace at a second
    size where every feature map differs. That size is ``2 * resolution + 1``, the one the
    constant/area split already looks at: trace time is per-operator overhead, not arithmetic
    (B0: 0.21 s at 64 px, 0.23 s at 129), and an odd size exercises the ceil of every strided
    layer, where an even one would hide it. Also returns the totals traced, by resolution.

    ``areas_at(r)`` gives the areas at ``r`` (default: a shape-only forward of ``shape_model``);
    ``check=False`` skips the second trace, for a network whose geometry already passed it.
    """
    areas_at = areas_at or (lambda r: _spatial_areas(shape_model, r))
    checked_at = 2 * resolution + 1
    checked_areas = areas_at(checked_at)
    first = _fvcore_trace(model, resolution)
    traced = {resolution: first.total}
    terms = _read_area_terms(model, shape_model, _own_flops(model, first.by_module), areas_at(resolution), checked_areas)
    if terms is None or not check:
        return terms, traced
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
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        _STATS["hits" if cached is not None else "misses"] += 1
    if cached is not None:
        return cached
    # Only spec baselines go to disk: a user function's signature is its parameter layout, which
    # an edit to its forward() would not change.
    disk = _DISK_CACHE and isinstance(baseline, SpecBaseline)
    stored = _COST_DISK.get(key) if disk else None
    if isinstance(stored, dict) and {"params", "flops"} <= stored.keys():
        with _CACHE_LOCK:
            _STATS["disk_hits"] += 1
        result = cost(int(stored["params"]), int(stored["flops"]))
    else:
        params, flops = _measure(baseline, signature, depth, width, num_classes, resolution)
        result = cost(params, flops)
        if disk:
            _COST_DISK.put(key, {"params": params, "flops": flops})
    with _CACHE_LOCK:
        _CACHE[key] = result
    return result


def _measure(
    baseline: Baseline, signature: tuple, depth: float, width: float, num_classes: int, resolution: int
) -> tuple[int, int]:
    """(params, FLOPs) by the cheapest exact path: composed from a probe, rescaled, or traced."""
    if _RESCALE_BY_AREA and _COMPOSE_BLOCKS and isinstance(baseline, SpecBaseline):
        composed = _composed_cost(baseline, depth, width, num_classes, resolution)
        if composed is not None:
            return composed
    if _RESCALE_BY_AREA:
        flops, params = _flops_by_area(baseline, signature, depth, width, num_classes, resolution)
        return params, flops
    model = baseline.build(depth, width, num_classes)
    return count_params(model), count_flops(model, resolution)


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


# ---------------------------------------------------------------------------------------------
# spec baselines: counts composed from a two-blocks-per-stage probe


@dataclass(frozen=True)
class _Probe:
    """A spec network with every stage cut to two blocks, measured once for all its depths."""

    terms: _AreaTerms
    params: dict[str, int]  # parameters each module holds itself
    geometry: str  # digest of the module tree and every stride, kernel and padding: fixes the areas


def block_multiplicity(name: str, repeats: Sequence[int]) -> int:
    """How many times the network repeats probe module ``name`` (`ScalableNet` names blocks
    ``stages.<stage>.<block>``): a stage's first block once, its second ``repeats - 1`` times."""
    parts = name.split(".", 3)
    if len(parts) >= 3 and parts[0] == "stages":
        return 1 if parts[2] == "0" else repeats[int(parts[1])] - 1
    return 1


def _composed_cost(
    baseline: SpecBaseline, depth: float, width: float, num_classes: int, resolution: int
) -> tuple[int, int] | None:
    """(params, FLOPs) of the (depth, width) network as its probe's counts times each module's
    multiplicity; None where the probe's counts are not area-linear (then the caller traces)."""
    scaled = scale_spec(baseline.spec, depth, width)
    probe = _probe_for(baseline, scaled, num_classes)
    if probe is None:
        return None
    areas = _geometry_areas(probe.geometry, resolution)
    repeats = [stage.repeats for stage in scaled.stages]
    flops = sum(block_multiplicity(n, repeats) * f for n, f in probe.terms.module_flops(areas).items())
    params = sum(block_multiplicity(n, repeats) * p for n, p in probe.params.items())
    return params, flops


def probe_spec(scaled: ScaledSpec) -> ScaledSpec:
    """``scaled`` with every stage cut to two blocks: the probe whose counts compose the network's."""
    return dataclasses.replace(scaled, stages=tuple(dataclasses.replace(s, repeats=2) for s in scaled.stages))


def probe_names_compose(model: nn.Module) -> bool:
    """Whether ``model`` names its blocks ``stages.<stage>.<0|1>`` as `block_multiplicity` expects."""
    names = [n.split(".") for n, _ in model.named_modules() if n.startswith("stages.")]
    return all(len(parts) < 3 or parts[2] in ("0", "1") for parts in names)


def module_areas(shape_model: nn.Module, resolution: int) -> _Areas:
    """Per module of ``shape_model`` (best on ``meta``): (input area, output area) at ``resolution``,
    shared with every network of the same geometry (`_geometry`) and read once per resolution."""
    geometry = _geometry(shape_model)
    with _CACHE_LOCK:
        known = geometry in _SHAPE_MODELS
    if not known:
        on_meta = all(t.is_meta for t in [*shape_model.parameters(), *shape_model.buffers()])
        shape_model = shape_model if on_meta else copy.deepcopy(shape_model).to("meta")
        with _CACHE_LOCK:
            _SHAPE_MODELS.setdefault(geometry, shape_model.eval())
    return _geometry_areas(geometry, resolution)


def _probe_for(baseline: SpecBaseline, scaled: ScaledSpec, num_classes: int) -> _Probe | None:
    two = probe_spec(scaled)
    key = (two.signature, num_classes)
    with _CACHE_LOCK:
        if key in _PROBES:
            return _PROBES[key]
    probe = _build_probe(baseline, two, num_classes)
    with _CACHE_LOCK:
        _PROBES[key] = probe
    return probe


def _build_probe(baseline: SpecBaseline, two: ScaledSpec, num_classes: int) -> _Probe | None:
    """Trace the probe once (twice for the first probe of a geometry) and read its terms.

    The traced probe is built with real weights: a ``meta`` build plus `to_empty` measured slower
    than the Kaiming initialisation of 14 blocks (0.18 s vs 0.07 s), since every call made under
    the meta device goes through a Python mode. Shapes come from one ``meta`` model per geometry.

    The second trace checks that each module's count scales with its area. That is a property of
    the operators and their spatial geometry, not of channel counts (a convolution counts
    out-pixels x in/groups x k^2 x out, linear in out-pixels whatever the widths), so a geometry
    that passed at one width is not traced twice at the others.
    """
    model = ScalableNet(two, num_classes)
    if not probe_names_compose(model):
        return None  # `ScalableNet` names its blocks otherwise now: `block_multiplicity` cannot apply
    geometry = _geometry(model)
    with _CACHE_LOCK:
        shape_model, checked = _SHAPE_MODELS.get(geometry), geometry in _CHECKED
    if shape_model is None:
        with torch.device("meta"):
            built = ScalableNet(two, num_classes).eval()
        with _CACHE_LOCK:
            shape_model = _SHAPE_MODELS.setdefault(geometry, built)
    terms, _ = _fit_area_terms(
        model, shape_model, 2 * baseline.min_resolution, areas_at=lambda r: _geometry_areas(geometry, r), check=not checked
    )
    if terms is None:
        return None
    with _CACHE_LOCK:
        _CHECKED.add(geometry)
    params = {n: sum(p.numel() for p in m.parameters(recurse=False)) for n, m in model.named_modules()}
    return _Probe(terms, {n: k for n, k in params.items() if k}, geometry)


def _geometry_areas(geometry: str, resolution: int) -> _Areas:
    """The areas at ``resolution`` of every network with this geometry, read once."""
    key = (geometry, resolution)
    with _CACHE_LOCK:
        areas, shape_model = _AREAS.get(key), _SHAPE_MODELS[geometry]
    if areas is None:
        areas = _spatial_areas(shape_model, resolution)
        with _CACHE_LOCK:
            _AREAS[key] = areas
    return areas


def _geometry(model: nn.Module) -> str:
    """What the spatial size at every module depends on: the module tree and each module's
    stride, kernel, padding and dilation (never its channels, so probes of all widths share it)."""
    shape = [
        (name, type(m).__name__, *(repr(getattr(m, a, None)) for a in ("kernel_size", "stride", "padding", "dilation")))
        for name, m in model.named_modules()
    ]
    return hashlib.sha1(repr(shape).encode()).hexdigest()


def cost_cache_info() -> dict[str, int]:
    """Counters since the last `clear_cost_cache`: in-process hits and misses, disk hits, fvcore traces."""
    with _CACHE_LOCK:
        return {**_STATS, "size": len(_CACHE)}


def clear_cost_cache() -> None:
    """Forget this process's measurements (the disk cache stays: delete ``cache_root()/cost``)."""
    with _CACHE_LOCK:
        _CACHE.clear()
        _AREA_TERMS.clear()
        _PROBES.clear()
        _AREAS.clear()
        _SHAPE_MODELS.clear()
        _CHECKED.clear()
        _STATS.update(hits=0, misses=0, disk_hits=0, traces=0)
