"""Baselines registered by name, plus user-supplied ``package.module:function`` baselines.

A `Baseline` is anything that can build itself at (depth, width) and say which network that is
(its architecture signature), so cost, family and search treat built-in and user baselines alike.

Its input stem is part of its identity: ``get_baseline("resnet18", stem="small")`` is another
network with the same name (see `effscale.models.specs.small_stem`), told apart by its ``stem``,
its ``label`` and its signature.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from effscale.errors import UsageError
from effscale.models.network import ScalableNet
from effscale.models.specs import BUILTIN_SPECS, BaselineSpec, ProxyDefaults, check_stem, scale_spec, small_stem

_REGISTRY: dict[str, "Baseline"] = {}


class Baseline:
    """A network family that effscale can scale by (depth, width) and measure."""

    name: str
    base_resolution: int
    min_resolution: int
    source: str

    def build(self, depth: float = 1.0, width: float = 1.0, num_classes: int = 1000) -> nn.Module:
        raise NotImplementedError

    def signature(self, depth: float = 1.0, width: float = 1.0) -> tuple:
        """Hashable description of the network (depth, width) builds; equal means same network."""
        raise NotImplementedError

    def describe(self, depth: float = 1.0, width: float = 1.0) -> dict[str, Any]:
        return {"stem": self.stem}

    @property
    def proxy_defaults(self) -> ProxyDefaults | None:
        """Its own proxy-recipe defaults (lr, weight decay, smoothing); None: the generic recipe."""
        return None

    @property
    def stem(self) -> str:
        """Its input stem, one of `STEMS`: "standard" unless `with_stem` adapted it."""
        return "standard"

    @property
    def label(self) -> str:
        """The name outputs show: ``resnet18``, or ``resnet18 (small stem)``."""
        return self.name if self.stem == "standard" else f"{self.name} ({self.stem} stem)"

    def with_stem(self, stem: str) -> Baseline:
        """This baseline with input stem ``stem`` (one of `STEMS`); itself where it already has it."""
        if check_stem(stem) == self.stem:
            return self
        raise UsageError(f"baseline {self.name} cannot take --stem {stem}; use a baseline given as data")


@dataclass(frozen=True, eq=False)
class SpecBaseline(Baseline):
    """A baseline given as data (`BaselineSpec`), scaled by `scale_spec`."""

    spec: BaselineSpec
    # The registered spec a small-stem variant was adapted from, so that it can go back.
    standard: BaselineSpec | None = None

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.spec.name

    @property
    def stem(self) -> str:
        return self.spec.stem

    def with_stem(self, stem: str) -> Baseline:
        if check_stem(stem) == self.stem:
            return self
        standard = self.standard or self.spec
        if stem == "standard":
            return SpecBaseline(standard)
        return SpecBaseline(small_stem(standard), standard)

    @property
    def base_resolution(self) -> int:  # type: ignore[override]
        return self.spec.base_resolution

    @property
    def min_resolution(self) -> int:  # type: ignore[override]
        return self.spec.total_stride

    @property
    def source(self) -> str:  # type: ignore[override]
        return self.spec.source

    @property
    def proxy_defaults(self) -> ProxyDefaults | None:
        return self.spec.proxy

    def build(self, depth: float = 1.0, width: float = 1.0, num_classes: int = 1000) -> nn.Module:
        return ScalableNet(scale_spec(self.spec, depth, width), num_classes)

    def signature(self, depth: float = 1.0, width: float = 1.0) -> tuple:
        return scale_spec(self.spec, depth, width).signature

    def describe(self, depth: float = 1.0, width: float = 1.0) -> dict[str, Any]:
        scaled = scale_spec(self.spec, depth, width)
        return {
            "repeats": [s.repeats for s in scaled.stages],
            "channels": [scaled.stem_channels, *(s.out_channels for s in scaled.stages)]
            + ([scaled.head_channels] if scaled.head_channels else []),
            "blocks": scaled.num_blocks,
            "stem": self.stem,
            "total_stride": self.spec.total_stride,
        }


@dataclass(frozen=True, eq=False)
class FunctionBaseline(Baseline):
    """A user baseline: ``package.module:function(depth, width, num_classes) -> nn.Module``.

    Its rounding is the user's, so its signature is read off the module it builds: the ordered
    parameter shapes and module types. Optional function attributes ``base_resolution`` and
    ``min_resolution`` describe it; the defaults are ImageNet's 224 and total stride 32.

    Its stem is the user's too: it takes ``--stem small`` only if the function has a ``stem``
    parameter, and is then called with ``stem="small"``. The same ``min_resolution`` holds for
    both stems, since only the function knows what its small stem does to the strides.
    """

    target: str
    function: Callable[..., nn.Module]
    stem_name: str = "standard"

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.target

    @property
    def stem(self) -> str:
        return self.stem_name

    def with_stem(self, stem: str) -> Baseline:
        if check_stem(stem) == self.stem:
            return self
        if not _takes_stem(self.function):
            raise UsageError(
                f"baseline {self.target} cannot take --stem {stem}: its function has no `stem` parameter; "
                "add one (stem: str = 'standard') or use a baseline given as data"
            )
        return FunctionBaseline(self.target, self.function, stem)

    @property
    def base_resolution(self) -> int:  # type: ignore[override]
        return int(getattr(self.function, "base_resolution", 224))

    @property
    def min_resolution(self) -> int:  # type: ignore[override]
        return int(getattr(self.function, "min_resolution", 32))

    @property
    def source(self) -> str:  # type: ignore[override]
        return f"user function {self.target}"

    def build(self, depth: float = 1.0, width: float = 1.0, num_classes: int = 1000) -> nn.Module:
        # The standard stem calls the function exactly as before stems existed (no keyword).
        stem = {} if self.stem == "standard" else {"stem": self.stem}
        try:
            model = self.function(depth, width, num_classes, **stem)
        except Exception as exc:  # the user's code: report, don't crash with their traceback
            arguments = ", ".join([str(depth), str(width), str(num_classes), *(f"stem={v!r}" for v in stem.values())])
            raise UsageError(
                f"baseline {self.target}({arguments}) raised {type(exc).__name__}: {exc}; "
                "fix the function so it takes (depth: float, width: float, num_classes: int)"
            ) from None
        if not isinstance(model, nn.Module):
            raise UsageError(
                f"baseline {self.target} returned {type(model).__name__}, not an nn.Module; "
                "return the built torch.nn.Module"
            )
        return model

    def signature(self, depth: float = 1.0, width: float = 1.0) -> tuple:
        model = self.build(depth, width, num_classes=10)
        layout = [(n, tuple(p.shape)) for n, p in model.named_parameters()]
        layout += [(n, type(m).__name__) for n, m in model.named_modules()]
        digest = hashlib.sha1(repr(layout).encode()).hexdigest()[:16]
        # A stride-1 stem has the same parameters and modules as the standard one: name it. Only
        # then, so that standard signatures (and arch ids) stay what they were.
        return (self.target, digest) if self.stem == "standard" else (self.target, digest, ("stem", self.stem))

    def describe(self, depth: float = 1.0, width: float = 1.0) -> dict[str, Any]:
        return {"stem": self.stem, "total_stride": self.min_resolution}


def _takes_stem(function: Callable[..., nn.Module]) -> bool:
    """Whether ``function`` accepts ``stem=`` by keyword (a named parameter, not only ``**kwargs``)."""
    try:
        parameter = inspect.signature(function).parameters.get("stem")
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)


def register_baseline(baseline: Baseline | BaselineSpec) -> Baseline:
    """Register a baseline by its name; a duplicate name is an error (as in torchvision)."""
    if isinstance(baseline, BaselineSpec):
        baseline = SpecBaseline(baseline)
    if baseline.name in _REGISTRY:
        raise ValueError(f"a baseline named {baseline.name!r} is already registered; choose another name")
    _REGISTRY[baseline.name] = baseline
    return baseline


def list_baselines() -> list[str]:
    return sorted(_REGISTRY)


def _import_function(target: str) -> FunctionBaseline:
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise UsageError(f"baseline {target!r} is not of the form package.module:function")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise UsageError(
            f"baseline {target!r}: cannot import {module_name!r} ({type(exc).__name__}: {exc}); "
            "check the module is on PYTHONPATH"
        ) from None
    function = getattr(module, attr, None)
    if function is None or not callable(function):
        raise UsageError(f"baseline {target!r}: {module_name} has no function {attr!r}")
    try:
        inspect.signature(function).bind(1.0, 1.0, 10)
    except (TypeError, ValueError):
        raise UsageError(
            f"baseline {target!r} must take (depth: float, width: float, num_classes: int)"
        ) from None
    baseline = FunctionBaseline(target, function)
    baseline.build(1.0, 1.0, 10)  # fail now, with a clear message, not inside a trial
    return baseline


def get_baseline(name: str | Baseline, *, stem: str | None = None) -> Baseline:
    """A registered baseline by name, or a user one given as ``package.module:function``, with
    input stem ``stem`` (one of `STEMS`).

    ``stem=None`` means "as given": a name gets the standard stem, a `Baseline` keeps its own, so
    that passing a small-stem baseline on through ``get_baseline`` never turns it back.
    """
    if stem is not None:
        check_stem(stem)  # before the import: a bad --stem is refused whatever the baseline
    if isinstance(name, Baseline):
        baseline = name
    elif name in _REGISTRY:
        baseline = _REGISTRY[name]
    elif ":" in name:
        baseline = _import_function(name)
    else:
        raise UsageError(
            f"unknown baseline {name!r}; known: {', '.join(list_baselines())} (or package.module:function)"
        )
    return baseline if stem is None else baseline.with_stem(stem)


def build_model(
    baseline: str | Baseline,
    *,
    depth: float = 1.0,
    width: float = 1.0,
    num_classes: int = 1000,
    stem: str | None = None,
) -> nn.Module:
    """Build ``baseline`` scaled by (depth, width) as an `nn.Module`, with input stem ``stem``
    (None: a name's standard stem, or a `Baseline`'s own; see `get_baseline`)."""
    if num_classes < 1:
        raise UsageError(f"num_classes={num_classes} must be >= 1")
    return get_baseline(baseline, stem=stem).build(depth, width, num_classes)


for _spec in BUILTIN_SPECS:
    register_baseline(_spec)
