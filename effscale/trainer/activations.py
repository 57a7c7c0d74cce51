"""Activation counts: what autograd keeps for backward in one training-mode forward, per image.

A training-mode forward under `torch.autograd.graph.saved_tensors_hooks` adds up the distinct
storages autograd keeps for backward (weights excluded) and records each module's output. For a
whole network it runs on the ``meta`` device, which allocates nothing (`direct_activations`); for
a spec baseline it is one measure (`ACTIVATIONS`) on `effscale.models.probe`, fitted on the
two-blocks-per-stage probe at tiny sizes and composed by block multiplicity like FLOPs
(`count_activations`). `effscale.trainer.memory` turns a count into a trial's peak memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from effscale.models import probe
from effscale.models.diskcache import DiskCache
from effscale.models.registry import Baseline, SpecBaseline, get_baseline

# Forwards run at batch 2, counts are halved: BatchNorm refuses one value per channel in training
# mode (1x1 maps).
_BATCH = 2
_Area = int | None  # a 4-D tensor's H*W; None for any other tensor
_ACTIVATIONS = DiskCache("activations", code=("models", "trainer"))


@dataclass(frozen=True)
class ActivationCount:
    """Per image, in float32: what autograd keeps for backward, and the largest single output."""

    saved_bytes: int
    largest_bytes: int
    params: int
    buffer_bytes: int


def count_activations(
    baseline: str | Baseline, *, depth: float, width: float, resolution: int, num_classes: int
) -> ActivationCount:
    """`ActivationCount` of the (depth, width) network at ``resolution``, from training-mode
    forwards that allocate nothing at that size; cached on disk for spec baselines.

    A spec baseline's count is composed like its FLOPs: each module of the two-blocks-per-stage
    probe keeps, per saved tensor, a constant or bytes per pixel of its input or output area, read
    in two real forwards at tiny sizes (the total stride, and 2x+1 it); the network's count is those
    terms at its resolution times each module's multiplicity. One probe per width then serves every
    depth and resolution (`tests/test_footprint.py` checks the composed count against a direct one).
    Other baselines are counted directly (`direct_activations`).
    """
    base = get_baseline(baseline)
    key = ["activations", base.signature(depth, width), resolution, num_classes]
    spec = isinstance(base, SpecBaseline)

    def measure() -> ActivationCount:
        count = _composed_count(base, depth, width, resolution, num_classes) if spec else None
        if count is None:
            count = direct_activations(base, depth=depth, width=width, resolution=resolution, num_classes=num_classes)
        return count

    count, _ = _ACTIVATIONS.cached(key, measure, load=lambda stored: ActivationCount(**stored), dump=asdict,
                                   enabled=spec)
    return count


def direct_activations(
    baseline: str | Baseline, *, depth: float, width: float, resolution: int, num_classes: int
) -> ActivationCount:
    """`ActivationCount` from one forward of the whole network (``meta``; on the CPU for a user
    network that cannot run on ``meta``)."""
    base = get_baseline(baseline)
    try:
        with torch.device("meta"):
            model = base.build(depth, width, num_classes)
        readings = _readings(model, resolution, torch.device("meta"))
    except Exception:  # noqa: BLE001 - a user network that cannot run on meta: count for real
        if isinstance(base, SpecBaseline):
            raise
        model = base.build(depth, width, num_classes)
        readings = _readings(model, resolution, torch.device("cpu"))
    return _count(probe.Composed.each_once(readings))


def _composed_count(
    base: SpecBaseline, depth: float, width: float, resolution: int, num_classes: int
) -> ActivationCount | None:
    composed = probe.compose_spec(ACTIVATIONS, base, depth=depth, width=width, num_classes=num_classes,
                                  resolution=resolution, fit_at=base.min_resolution)
    return None if composed is None else _count(composed)


def _count(composed: probe.Composed) -> ActivationCount:
    return ActivationCount(composed.total("saved") // _BATCH, composed.largest("output") // _BATCH,
                           composed.total("params"), composed.total("buffers"))


def _readings(model: nn.Module, resolution: int, device: torch.device) -> probe.Readings:
    """One training-mode forward as the probe's readings: each saved tensor's bytes and each
    module's output (batch `_BATCH`), and the parameters and buffer bytes each module holds."""
    recorded = _record(model, resolution, device)
    saved = {("saved", name, i): nbytes for name, tensors in recorded.saved.items()
             for i, (_, nbytes) in enumerate(tensors)}
    outputs = {("output", name, 0): nbytes for name, (_, nbytes) in recorded.outputs.items()}
    buffers = probe.own_tensors("buffers", model, lambda m: m.buffers(recurse=False),
                                lambda b: b.numel() * b.element_size())
    return saved | outputs | probe.own_params(model) | buffers


def _read_probe(model: nn.Module, resolution: int) -> probe.Readings:
    # On the CPU, one thread, at tiny sizes: a training-mode forward on ``meta`` goes through
    # Python decompositions (BatchNorm's above all), several times slower than the real probe.
    with probe.threads(1):
        return _readings(model, resolution, torch.device("cpu"))


ACTIVATIONS = probe.Measure("activations", _read_probe)


@dataclass
class _Recorded:
    """One training-mode forward: per module, the tensors autograd saved while it ran (each storage
    counted once, for the module that saved it first; weights excluded) and its output."""

    saved: dict[str, list[tuple[_Area, int]]]
    outputs: dict[str, tuple[_Area, int]]


def _area(t: Any) -> _Area:
    return int(t.shape[-2] * t.shape[-1]) if isinstance(t, torch.Tensor) and t.ndim == 4 else None


def _record(model: nn.Module, resolution: int, device: torch.device) -> _Recorded:
    model.train()
    seen = {p.untyped_storage()._cdata for p in model.parameters()}
    alive: list[torch.Tensor] = []  # holds every counted storage (and so its id) to the end
    running = [""]
    recorded = _Recorded({}, {})

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage._cdata not in seen:
            seen.add(storage._cdata)
            alive.append(t)
            recorded.saved.setdefault(running[-1], []).append((_area(t), storage.nbytes()))
        return t

    def enter(name: str) -> Callable[..., None]:
        return lambda module, inputs: running.append(name)

    def leave(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: Any, out: Any) -> None:
            running.pop()
            if isinstance(out, torch.Tensor):
                recorded.outputs[name] = (_area(out), out.numel() * out.element_size())

        return hook

    handles = [h for n, m in model.named_modules() for h in (m.register_forward_pre_hook(enter(n)),
                                                              m.register_forward_hook(leave(n)))]
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(torch.zeros(_BATCH, 3, resolution, resolution, device=device))
    finally:
        for h in handles:
            h.remove()
    return recorded
