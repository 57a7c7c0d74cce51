"""Family emission: a baseline and (α, β, γ) become members B0..B7, each built and measured.

Each member records both cost figures: the formula's (α·β²·γ²)^φ and the FLOPs fvcore measures
on the network built after rounding (the paper's footnote: "FLOPS may differ from theoretical
value due to rounding"; for B0 with the paper's triple, φ=1 measures ~2.55x, not 1.92x).

`effscale.search.family.calibrate` undoes that drift; this module holds the family itself (its
file format, emission, the published table and `build_member`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from torch import nn

from effscale.errors import UsageError
from effscale.models import FLOPS_CONVENTION, Coefficients, get_baseline, measure_cost, scale_resolution
from effscale.models.cost import flops_convention
from effscale.models.measures import DEFAULT_COST
from effscale.models.regime import Regime, measure_regime
from effscale.models.registry import Baseline
from effscale.models.scaling import formula_ratio

FAMILY_FORMAT = "effscale.family/1"


@dataclass(frozen=True)
class FamilyMember:
    name: str
    phi: float
    depth: float
    width: float
    resolution: int
    params: int
    flops: int
    flops_ratio: float  # measured FLOPs / B0's measured FLOPs
    formula_ratio: float  # (α·β²·γ²)^φ
    arch_id: str
    dropout: float | None = None  # set for the published table only
    last_map: int | None = None  # side of the last feature map at ``resolution`` (`effscale.models.regime`)
    step_ratio: float | None = None  # measured FLOPs at resolution + 1 over those at resolution
    activations: int | None = None  # fvcore's activation count (None in family files written before it)
    activations_ratio: float | None = None  # measured activations / B0's
    latency_ms: float | None = None  # measured when the family is in latency (`Family.cost`)
    latency_ratio: float | None = None

    def ratio(self, cost: str) -> float | None:
        """The measured ratio to B0 in ``cost`` (`effscale.models.measures.COSTS`)."""
        return {"flops": self.flops_ratio, "activations": self.activations_ratio, "latency": self.latency_ratio}[cost]


@dataclass(frozen=True)
class Family:
    baseline: str
    coefficients: dict[str, float] | None  # None for the published EfficientNet table
    base_resolution: int
    num_classes: int
    members: tuple[FamilyMember, ...]
    flops_convention: str = FLOPS_CONVENTION
    source: str = "compound scaling"
    extra: dict[str, Any] = field(default_factory=dict)
    stem: str = "standard"  # the baseline's stem (`effscale.models.STEMS`): part of what every member builds
    cost: str = DEFAULT_COST  # the cost its targets and calibration are in (`effscale.models.measures.COSTS`)

    @property
    def baseline_object(self) -> Baseline:
        """The baseline every member is built from, with the family's stem."""
        return get_baseline(self.baseline, stem=self.stem)

    def member(self, name: str) -> FamilyMember:
        for m in self.members:
            if m.name.lower() == name.lower():
                return m
        raise UsageError(f"no member {name!r} in this family; choose one of {', '.join(m.name for m in self.members)}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = FAMILY_FORMAT
        data["members"] = [asdict(m) for m in self.members]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Family":
        if data.get("format") != FAMILY_FORMAT:
            raise UsageError(f"not an effscale family (format {data.get('format')!r}, expected {FAMILY_FORMAT!r})")
        fields = {k: v for k, v in data.items() if k != "format"}
        fields["members"] = tuple(FamilyMember(**m) for m in data["members"])
        return cls(**fields)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        tmp.replace(path)  # atomic: a reader never sees half a file
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Family":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise UsageError(f"family file {path} does not exist; write one with `effscale family ... --out FILE`") from None
        except json.JSONDecodeError as exc:
            raise UsageError(f"family file {path} is not valid JSON ({exc})") from None
        return cls.from_dict(data)


def emit_family(
    baseline: str | Baseline,
    coefficients: Coefficients,
    *,
    phis: Iterable[float] = range(8),
    base_resolution: int | None = None,
    num_classes: int = 1000,
    cost: str = DEFAULT_COST,
    latency: Any = None,
) -> Family:
    """A member for each φ (any finite φ: `member_name`): d=α^φ, w=β^φ, r=γ^φ, built and measured with
    fvcore (params, FLOPs, activations), and timed when ``cost`` is latency (``latency``:
    `LatencyOptions`). Every φ is checked (and every size) before anything is measured."""
    base = get_baseline(baseline)
    base_resolution = base.base_resolution if base_resolution is None else base_resolution
    # Coefficients.scale validates each phi: all of them, before anything is measured.
    scaled = [(phi, coefficients.scale(phi)) for phi in phis]
    if not scaled:
        raise UsageError("phis is empty; pass e.g. 0..7")
    resolutions = [_member_resolution(base, base_resolution, phi, factors.resolution) for phi, factors in scaled]
    meter = MemberMeter(base, base_resolution, num_classes, cost=cost, latency=latency)
    members = tuple(
        meter.member(member_name(phi), float(phi), factors.depth, factors.width, resolution,
                     formula=factors.formula_ratio)
        for (phi, factors), resolution in zip(scaled, resolutions)
    )
    return Family(base.name, coefficients.as_dict(), base_resolution, num_classes, members,
                  flops_convention=flops_convention(num_classes), stem=base.stem, cost=cost)


def member_name(phi: float) -> str:
    """``B0``..``B7``-style names for whole φ >= 0; ``phi-2``, ``phi0.5`` for the rest, so that a
    member below B0 or between two integers is never read as a B-number of the published family."""
    return f"B{phi:g}" if float(phi).is_integer() and phi >= 0 else f"phi{phi:g}"


def _member_resolution(base: Baseline, base_resolution: int, phi: float, factor: float) -> int:
    """The member's input size, refused in one line where φ shrinks it below the network's strides."""
    resolution = scale_resolution(base_resolution, factor)
    if resolution < base.min_resolution:
        raise UsageError(
            f"phi={phi:g} scales {base.name}'s {base_resolution} px input to {resolution} px, below its total stride "
            f"{base.min_resolution}; pass phi values whose members can be built (or a larger --base-resolution)"
        )
    return resolution


class MemberMeter:
    """Measures family members against one B0: params, FLOPs, activations and the regime, and the
    latency when the family's cost is latency. Emission, the published table and calibration all
    measure through it, so every member carries the same figures."""

    def __init__(self, base: Baseline, base_resolution: int, num_classes: int, *, cost: str = DEFAULT_COST,
                 latency: Any = None) -> None:
        from effscale.models.options import LatencyOptions

        self.base, self.base_resolution, self.num_classes, self.cost = base, base_resolution, num_classes, cost
        self.latency = (latency or LatencyOptions()) if cost == "latency" else None
        self.b0 = measure_cost(base, base_resolution, num_classes=num_classes)
        self.b0_latency_ms = self.latency_ms(1.0, 1.0, base_resolution)

    def latency_ms(self, depth: float, width: float, resolution: int) -> float | None:
        if self.latency is None:
            return None
        timed = self.latency.measure(self.base, resolution, depth=depth, width=width, num_classes=self.num_classes)
        return timed.median_s * 1e3

    def member(self, name: str, phi: float, depth: float, width: float, resolution: int, *, formula: float,
               **extra: Any) -> FamilyMember:
        cost = measure_cost(self.base, resolution, depth=depth, width=width, num_classes=self.num_classes)
        latency = self.latency_ms(depth, width, resolution)
        return FamilyMember(
            name=name, phi=phi, depth=depth, width=width, resolution=resolution, params=cost.params, flops=cost.flops,
            flops_ratio=cost.flops / self.b0.flops, formula_ratio=formula, arch_id=cost.arch_id,
            activations=cost.activations, activations_ratio=cost.activations / self.b0.activations,
            latency_ms=latency, latency_ratio=latency / self.b0_latency_ms if latency is not None else None,
            **_regime_fields(self.base, depth, width, resolution, self.num_classes), **extra,
        )


# As released in the official code and torchvision (width, depth, resolution, dropout); not α^φ.
PUBLISHED_EFFICIENTNET: tuple[tuple[str, float, float, int, float], ...] = (
    ("B0", 1.0, 1.0, 224, 0.2),
    ("B1", 1.0, 1.1, 240, 0.2),
    ("B2", 1.1, 1.2, 260, 0.3),
    ("B3", 1.2, 1.4, 300, 0.3),
    ("B4", 1.4, 1.8, 380, 0.4),
    ("B5", 1.6, 2.2, 456, 0.4),
    ("B6", 1.8, 2.6, 528, 0.5),
    ("B7", 2.0, 3.1, 600, 0.5),
)


def published_efficientnet_family(*, num_classes: int = 1000, cost: str = DEFAULT_COST, latency: Any = None) -> Family:
    """The released EfficientNet-B0..B7, measured the same way, to compare with an α^φ family."""
    meter = MemberMeter(get_baseline("efficientnet_b0"), 224, num_classes, cost=cost, latency=latency)
    members = tuple(
        meter.member(name, float(phi), depth, width, resolution, formula=formula_ratio(depth, width, resolution, 224),
                     dropout=dropout)
        for phi, (name, width, depth, resolution, dropout) in enumerate(PUBLISHED_EFFICIENTNET)
    )
    return Family("efficientnet_b0", None, 224, num_classes, members, source="published (official code)",
                  flops_convention=flops_convention(num_classes), cost=cost)


def _regime_fields(base: Baseline, depth: float, width: float, resolution: int, num_classes: int) -> dict[str, Any]:
    """A member's regime facts (`effscale.models.regime`): its last feature map and one-pixel step."""
    regime = measure_regime(base, resolution, depth=depth, width=width, num_classes=num_classes)
    return {"last_map": regime.last_map, "step_ratio": regime.step_ratio}


def family_regime(family: Family) -> Regime:
    """B0's regime: the size the whole family is scaled from."""
    return measure_regime(family.baseline_object, family.base_resolution, num_classes=family.num_classes)


def family_document(family: Family) -> dict[str, Any]:
    """The JSON view `effscale family --json` and `effscale search --json` print."""
    keys = ("name", "phi", "depth", "width", "resolution", "params", "flops", "flops_ratio", "formula_ratio", "arch_id",
            "last_map", "step_ratio", "activations", "activations_ratio",
            *(("latency_ms", "latency_ratio") if family.cost == "latency" else ()),
            *(("dropout",) if any(m.dropout is not None for m in family.members) else ()))
    return {
        "baseline": family.baseline,
        "stem": family.stem,
        "cost": family.cost,
        "coefficients": family.coefficients,
        "base_resolution": family.base_resolution,
        "num_classes": family.num_classes,
        "flops_convention": family.flops_convention,
        "members": [{k: getattr(m, k) for k in keys} for m in family.members],
    }


def build_member(family: Family, name: str, *, num_classes: int | None = None) -> nn.Module:
    """The `nn.Module` for member ``name`` (e.g. "B3") of ``family``; its input is member.resolution."""
    member = family.member(name)
    classes = family.num_classes if num_classes is None else num_classes
    model = family.baseline_object.build(member.depth, member.width, classes)
    if member.dropout is not None and hasattr(model, "dropout") and isinstance(model.dropout, nn.Dropout):
        model.dropout.p = member.dropout
    return model
