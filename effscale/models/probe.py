"""Per-module measurements fitted at two small sizes and composed: the probe under FLOPs and activations.

A *measure* (`Measure`) reads, from one forward of a network at one square resolution, numbers per
module: fvcore's flops, the bytes autograd saves, the parameters a module holds. For networks built
from the block library each such reading is, module by module, a constant or a whole multiple of
that module's input or output area. So a measure is read at a small size r and again at 2r+1 (an
odd size exercises the ceil of every strided layer, where an even one would hide it), and each
reading is split by one rule (`split`): the same at both sizes is a constant; otherwise k per pixel
of the module's output area, or else of its input area, where k x area gives both readings. A
reading that fits neither (self-attention over H*W positions costs ~(H*W)^2, a multiple of H*W at
every size) fails the fit, and the caller measures the whole network directly instead.

A spec baseline goes one step further (`compose_spec`): every block after a stage's first is the
same module (``stage.out -> stage.out``, stride 1), so a network's readings are those of a *probe*
with two blocks per stage, the second one's counted ``repeats - 1`` times (`block_multiplicity`).
One probe per width serves every depth; the areas at a resolution are read once per geometry from
a ``meta`` model (`geometry_areas`); and which side each reading scales with is a property of the
operators and strides, not of channel counts, so a geometry that passed the two-size fit once is
read at r alone for the other widths.

All of it lives in one cache under one lock (`LOCK`), emptied by `clear_probes`.

A measure is a name and a reading function; composing is one call::

    FLOPS = Measure("flops", lambda model, r: {("flops", name, 0): n for name, n in ...})
    composed = compose_spec(FLOPS, baseline, depth=1.2, width=1.1, num_classes=10, resolution=240,
                            fit_at=2 * baseline.min_resolution)  # None: not area-linear
    composed.total("flops"), composed.largest("output")

(`effscale.models.cost.FLOPS` and `effscale.trainer.activations.ACTIVATIONS` are the two today.)
A whole network, any baseline, is fitted with `fit_network` and kept by `memo`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from effscale.models.network import ScalableNet
from effscale.models.registry import SpecBaseline
from effscale.models.specs import ScaledSpec, scale_spec

Key = tuple[str, str, int]  # (kind of reading, module name, index among that module's readings)
Readings = dict[Key, int]
Areas = dict[str, tuple[int | None, int | None]]  # per module: (input area, output area); None: not 4-D
Term = tuple[int | None, int]  # (side: None a constant, 0 per input pixel, 1 per output pixel; k)
_NO_AREAS = (None, None)


@dataclass(frozen=True)
class Measure:
    """What to read per module: ``read(model, resolution)`` runs the real (CPU) network once."""

    name: str  # names the measure in the cache
    read: Callable[[nn.Module, int], Readings]


LOCK = threading.Lock()  # guards every cache below (and the cost module's own counters)
_FITS: dict[tuple, Any] = {}  # fits, and other per-network readings kept by `memo`
_SIDES: dict[tuple, dict[Key, int | None]] = {}  # by (measure, geometry, fit size): what passed
_AREAS: dict[tuple[str, int], Areas] = {}  # by (geometry, resolution)
_SHAPE_MODELS: dict[str, nn.Module] = {}  # a meta model per geometry


def clear_probes() -> None:
    """Forget every fitted probe, split and area in this process."""
    with LOCK:
        for cache in (_FITS, _SIDES, _AREAS, _SHAPE_MODELS):
            cache.clear()


# ---------------------------------------------------------------------------------------------
# readings


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode (BatchNorm accepts 1x1 maps), then as it was."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@contextmanager
def threads(n: int) -> Iterator[None]:
    """torch on ``n`` intra-op threads, then as before."""
    before = torch.get_num_threads()
    if before == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def own_counts(model: nn.Module, by_module: Mapping[str, int]) -> dict[str, int]:
    """What each module counts itself, from counts that include each module's children (fvcore's
    ``by_module``): its count less its children's; modules with none left out."""
    own = {}
    for name, module in model.named_modules():
        children = sum(by_module.get(f"{name}.{c}" if name else c, 0) for c, _ in module.named_children())
        count = by_module.get(name, 0) - children
        if count:
            own[name] = count
    return own


def own_tensors(
    kind: str, model: nn.Module, held: Callable[[nn.Module], Iterable[torch.Tensor]],
    size: Callable[[torch.Tensor], int] = torch.Tensor.numel,
) -> Readings:
    """One ``kind`` reading per module that holds tensors itself (``held(module)``): their total
    ``size``, each tensor counted once, for the first module that holds it (as ``model.parameters()``)."""
    seen: set[int] = set()
    readings: Readings = {}
    for name, module in model.named_modules():
        fresh = [t for t in held(module) if id(t) not in seen]
        seen.update(id(t) for t in fresh)
        if fresh:
            readings[(kind, name, 0)] = sum(size(t) for t in fresh)
    return readings


def own_params(model: nn.Module) -> Readings:
    """The parameters each module holds itself, as ``params`` readings (their sum: the model's count)."""
    return own_tensors("params", model, lambda m: m.parameters(recurse=False))


def spatial_areas(model: nn.Module, resolution: int) -> Areas:
    """Per module: (input area, output area) in pixels for a square input, None where not 4-D."""
    areas: Areas = {}

    def area(t: object) -> int | None:
        return int(t.shape[-2] * t.shape[-1]) if isinstance(t, torch.Tensor) and t.ndim == 4 else None

    def hook(name: str) -> Callable[..., None]:
        def record(module: nn.Module, inputs: tuple, output: object) -> None:
            areas[name] = (area(inputs[0]) if inputs else None, area(output))

        return record

    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()]
    try:
        with eval_mode(model), torch.no_grad():
            model(torch.zeros(1, 3, resolution, resolution, device=device))
    finally:
        for h in handles:
            h.remove()
    return areas


# ---------------------------------------------------------------------------------------------
# the split rule and the fit


def _on_side(value: int, side: int | None, areas: tuple[int | None, int | None]) -> Term | None:
    """One reading as a term on ``side`` (None: a constant): k = the reading / that area, or None
    where the area does not divide it."""
    if side is None:
        return None, value
    area = areas[side]
    return (side, value // area) if area and value % area == 0 else None


def split(value: int, checked: int, areas: tuple[int | None, int | None],
          checked_areas: tuple[int | None, int | None]) -> Term | None:
    """One reading at the fit size (``value``, the module's ``areas``) and at the check size as a
    term: the same at both sizes, a constant; else k per pixel of the module's output area (tried
    first) or input area, where k x area gives both readings; None where neither does."""
    if value == checked:
        return None, value
    for side in (1, 0):
        term, moved = _on_side(value, side, areas), checked_areas[side]
        if term is not None and moved and term[1] * moved == checked:
            return term
    return None


def _every(terms: dict[Key, Term | None]) -> dict[Key, Term] | None:
    return None if None in terms.values() else terms  # type: ignore[return-value]


def fit(
    read: Callable[[nn.Module, int], Readings], model: nn.Module, fit_at: int, areas_at: Callable[[int], Areas],
    *, sides: Mapping[Key, int | None] | None = None,
) -> dict[Key, Term] | None:
    """``model``'s terms: each reading at ``fit_at`` and at ``2 * fit_at + 1`` split by `split`;
    None if a reading does not split. Given ``sides`` (from a fit of the same geometry), one
    reading at ``fit_at`` is enough where its readings and their divisibility match them.

    ``areas_at(r)`` gives every module's areas at ``r``; both sizes' are read first, so a network
    that cannot run at one fails before any reading.
    """
    checked_at = 2 * fit_at + 1
    areas, moved = areas_at(fit_at), areas_at(checked_at)
    readings = read(model, fit_at)
    if sides is not None and readings.keys() == sides.keys():
        known = _every({key: _on_side(value, sides[key], areas.get(key[1], _NO_AREAS))
                        for key, value in readings.items()})
        if known is not None:
            return known
    checked = read(model, checked_at)
    if checked.keys() != readings.keys():
        return None
    return _every({key: split(value, checked[key], areas.get(key[1], _NO_AREAS), moved.get(key[1], _NO_AREAS))
                   for key, value in readings.items()})


@dataclass(frozen=True)
class Composed:
    """A network's readings at one resolution: (kind, how many times the network has the
    module, the reading)."""

    readings: tuple[tuple[str, int, int], ...]

    @classmethod
    def each_once(cls, readings: Readings) -> Composed:
        """A network's own readings, each module counted once (a direct measurement)."""
        return cls(tuple((kind, 1, value) for (kind, _, _), value in readings.items()))

    def total(self, kind: str) -> int:
        return sum(times * value for k, times, value in self.readings if k == kind)

    def largest(self, kind: str) -> int:
        """The largest ``kind`` reading of a module the network has (0 if none)."""
        return max((value for k, times, value in self.readings if k == kind and times), default=0)


@dataclass(frozen=True)
class Fitted:
    """A network's (or a probe's) terms and where its areas at a resolution come from."""

    terms: Mapping[Key, Term]
    areas_at: Callable[[int], Areas]

    def compose(self, resolution: int, repeats: Sequence[int] | None = None) -> Composed:
        """The readings at ``resolution``; each probe module ``block_multiplicity`` times for a
        network with stages of ``repeats`` blocks (None: the fitted network itself)."""
        areas = self.areas_at(resolution)
        return Composed(tuple(
            (kind, 1 if repeats is None else block_multiplicity(name, repeats),
             k if side is None else k * areas[name][side])  # type: ignore[operator]
            for (kind, name, _), (side, k) in self.terms.items()
        ))


def memo(key: tuple, make: Callable[[], Any]) -> Any:
    """``make()``'s value, once per ``key`` in this process (None too: a fit that is not
    area-linear). Any per-network reading may be kept here (the regime's last feature map is):
    `clear_probes` forgets them all."""
    with LOCK:
        if key in _FITS:
            return _FITS[key]
    fitted = make()
    with LOCK:
        return _FITS.setdefault(key, fitted)


def fit_network(measure: Measure, model: nn.Module, shape_model: nn.Module, fit_at: int) -> Fitted | None:
    """``measure``'s terms of a whole network, its areas from ``shape_model`` (the same network on
    ``meta``: shapes only); None where a reading is not area-linear."""
    def areas_at(resolution: int) -> Areas:
        return spatial_areas(shape_model, resolution)

    terms = fit(measure.read, model, fit_at, areas_at)
    return None if terms is None else Fitted(terms, areas_at)


# ---------------------------------------------------------------------------------------------
# spec baselines: a two-blocks-per-stage probe


def block_multiplicity(name: str, repeats: Sequence[int]) -> int:
    """How many times the network repeats probe module ``name`` (`ScalableNet` names blocks
    ``stages.<stage>.<block>``): a stage's first block once, its second ``repeats - 1`` times."""
    parts = name.split(".", 3)
    if len(parts) >= 3 and parts[0] == "stages":
        return 1 if parts[2] == "0" else repeats[int(parts[1])] - 1
    return 1


def probe_spec(scaled: ScaledSpec) -> ScaledSpec:
    """``scaled`` with every stage cut to two blocks: the probe whose readings compose the network's."""
    return dataclasses.replace(scaled, stages=tuple(dataclasses.replace(s, repeats=2) for s in scaled.stages))


def probe_names_compose(model: nn.Module) -> bool:
    """Whether ``model`` names its blocks ``stages.<stage>.<0|1>`` as `block_multiplicity` expects."""
    names = [n.split(".") for n, _ in model.named_modules() if n.startswith("stages.")]
    return all(len(parts) < 3 or parts[2] in ("0", "1") for parts in names)


def compose_spec(
    measure: Measure, baseline: SpecBaseline, *, depth: float, width: float, num_classes: int, resolution: int,
    fit_at: int,
) -> Composed | None:
    """``measure``'s readings of the (depth, width) network at ``resolution``, composed from its
    probe fitted at ``fit_at``; None where the probe's readings are not area-linear."""
    scaled = scale_spec(baseline.spec, depth, width)
    two = probe_spec(scaled)
    fitted = memo(("probe", measure.name, two.signature, num_classes, fit_at),
                  lambda: _fit_probe(measure, two, num_classes, fit_at))
    return None if fitted is None else fitted.compose(resolution, [stage.repeats for stage in scaled.stages])


def _fit_probe(measure: Measure, two: ScaledSpec, num_classes: int, fit_at: int) -> Fitted | None:
    """Read the probe once (twice for the first probe of a geometry) and split its readings.

    The probe is built with real weights: a ``meta`` build plus `to_empty` measured slower than
    the Kaiming initialisation of 14 blocks, since every call made under the meta device goes
    through a Python mode; and a training-mode forward on ``meta`` goes through Python
    decompositions (BatchNorm's above all). Shapes come from one ``meta`` model per geometry.
    """
    model = ScalableNet(two, num_classes)
    if not probe_names_compose(model):
        return None  # `ScalableNet` names its blocks otherwise now: `block_multiplicity` cannot apply
    geometry = geometry_of(model)
    with LOCK:
        known = geometry in _SHAPE_MODELS
    if not known:
        with torch.device("meta"):
            shape_model = ScalableNet(two, num_classes).eval()
        with LOCK:
            _SHAPE_MODELS.setdefault(geometry, shape_model)

    def areas_at(resolution: int) -> Areas:
        return geometry_areas(geometry, resolution)

    passed = (measure.name, geometry, fit_at)
    with LOCK:
        sides = _SIDES.get(passed)
    terms = fit(measure.read, model, fit_at, areas_at, sides=sides)
    if terms is None:
        return None
    with LOCK:
        _SIDES.setdefault(passed, {key: side for key, (side, _) in terms.items()})
    return Fitted(terms, areas_at)


def geometry_areas(geometry: str, resolution: int) -> Areas:
    """The areas at ``resolution`` of every network with this geometry, read once."""
    key = (geometry, resolution)
    with LOCK:
        areas, shape_model = _AREAS.get(key), _SHAPE_MODELS[geometry]
    if areas is None:
        areas = spatial_areas(shape_model, resolution)
        with LOCK:
            _AREAS[key] = areas
    return areas


def geometry_of(model: nn.Module) -> str:
    """What the spatial size at every module depends on: the module tree and each module's
    stride, kernel, padding and dilation (never its channels, so probes of all widths share it)."""
    shape = [
        (name, type(m).__name__, *(repr(getattr(m, a, None)) for a in ("kernel_size", "stride", "padding", "dilation")))
        for name, m in model.named_modules()
    ]
    return hashlib.sha1(repr(shape).encode()).hexdigest()

