"""Family emission: a baseline and (α, β, γ) become members B0..B7, each built and measured.

Each member records both cost figures: the formula's (α·β²·γ²)^φ and the FLOPs fvcore measures
on the network built after rounding (the paper's footnote: "FLOPS may differ from theoretical
value due to rounding"; for B0 with the paper's triple, φ=1 measures ~2.55x, not 1.92x).

`calibrate_family` undoes that drift: it keeps each member's d and w and picks the input size
whose measured FLOPs come nearest to target^φ times B0's. `nearest_flops`, the search on measured
cost it uses, is also what `effscale.search.compare.arms` matches single-dimension arms with.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from torch import nn

from effscale.errors import UsageError
from effscale.models import FLOPS_CONVENTION, Coefficients, Cost, get_baseline, measure_cost, scale_resolution
from effscale.models.cost import flops_convention
from effscale.models.regime import Regime, measure_regime
from effscale.models.registry import Baseline
from effscale.models.scaling import formula_ratio
from effscale.search.family.options import check_target_ratio

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
) -> Family:
    """Members B<φ> for each φ: d=α^φ, w=β^φ, r=γ^φ, built and measured with fvcore."""
    base = get_baseline(baseline)
    base_resolution = base.base_resolution if base_resolution is None else base_resolution
    # Coefficients.scale validates each phi: all of them, before anything is measured.
    scaled = [(phi, coefficients.scale(phi)) for phi in phis]
    if not scaled:
        raise UsageError("phis is empty; pass e.g. 0..7")
    b0 = measure_cost(base, base_resolution, num_classes=num_classes)
    members = []
    for phi, factors in scaled:
        resolution = scale_resolution(base_resolution, factors.resolution)
        cost = measure_cost(base, resolution, depth=factors.depth, width=factors.width, num_classes=num_classes)
        members.append(
            FamilyMember(
                name=f"B{phi:g}",
                phi=float(phi),
                depth=factors.depth,
                width=factors.width,
                resolution=resolution,
                params=cost.params,
                flops=cost.flops,
                flops_ratio=cost.flops / b0.flops,
                formula_ratio=factors.formula_ratio,
                arch_id=cost.arch_id,
                **_regime_fields(base, factors.depth, factors.width, resolution, num_classes),
            )
        )
    return Family(base.name, coefficients.as_dict(), base_resolution, num_classes, tuple(members),
                  flops_convention=flops_convention(num_classes), stem=base.stem)


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


def published_efficientnet_family(*, num_classes: int = 1000) -> Family:
    """The released EfficientNet-B0..B7, measured the same way, to compare with an α^φ family."""
    b0 = measure_cost("efficientnet_b0", 224, num_classes=num_classes)
    members = []
    for phi, (name, width, depth, resolution, dropout) in enumerate(PUBLISHED_EFFICIENTNET):
        cost = measure_cost("efficientnet_b0", resolution, depth=depth, width=width, num_classes=num_classes)
        members.append(
            FamilyMember(
                name=name,
                phi=float(phi),
                depth=depth,
                width=width,
                resolution=resolution,
                params=cost.params,
                flops=cost.flops,
                flops_ratio=cost.flops / b0.flops,
                formula_ratio=formula_ratio(depth, width, resolution, 224),
                arch_id=cost.arch_id,
                dropout=dropout,
                **_regime_fields(get_baseline("efficientnet_b0"), depth, width, resolution, num_classes),
            )
        )
    return Family("efficientnet_b0", None, 224, num_classes, tuple(members), source="published (official code)",
                  flops_convention=flops_convention(num_classes))


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
            "last_map", "step_ratio", *(("dropout",) if any(m.dropout is not None for m in family.members) else ()))
    return {
        "baseline": family.baseline,
        "stem": family.stem,
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


# ---------------------------------------------------------------------------------------------
# Search on measured cost: the one routine that calibration and matched arms both use.

# Multipliers are searched to this precision. Distinct networks lie further apart: a depth step
# is k/n (n a stage's block count), a width step (8k - 4)/c, so two steps differ by at least
# 1/(n1*n2) or 1/(c1*c2), ~6e-8 even for 4096-channel layers.
_MULTIPLIER_STEP = 1e-9


@dataclass(frozen=True)
class CostMatch:
    """What `nearest_flops` chose: a setting, its measured cost, and how it was found."""

    value: float  # the setting chosen (an int for an integer search: pixels)
    cost: Cost
    target: float  # the FLOPs aimed at
    measurements: int  # distinct settings measured (measure_cost cache hits included)

    @property
    def ratio(self) -> float:
        """Measured FLOPs over the target: 1.0 is an exact match."""
        return self.cost.flops / self.target


class _StepFunction:
    """FLOPs as a function of one setting: non-decreasing and stepwise, measured once per setting."""

    def __init__(self, measure: Callable[[Any], Cost], *, lo: float, hi: float, integer: bool) -> None:
        self.measure, self.lo, self.hi, self.integer = measure, lo, hi, integer
        self.costs: dict[float, Cost] = {}

    def cost(self, x: float) -> Cost:
        if x not in self.costs:
            self.costs[x] = self.measure(x)
        return self.costs[x]

    def flops(self, x: float) -> int:
        return self.cost(x).flops

    def split(self, a: float, b: float) -> float | None:
        """A setting strictly between ``a`` and ``b``; None when they are neighbours."""
        if self.integer:
            return (a + b) // 2 if b - a > 1 else None
        return (a + b) / 2 if b - a > _MULTIPLIER_STEP else None

    def first_reaching(self, v: float, a: float, b: float) -> tuple[float, float]:
        """Bisect: from f(a) < v <= f(b), the neighbours (a', b') with f(a') < v <= f(b')."""
        while (m := self.split(a, b)) is not None:
            if self.flops(m) >= v:
                b = m
            else:
                a = m
        return a, b

    def seen(
        self, *, above: float | None = None, below: float | None = None, flops: Callable[[int], bool]
    ) -> list[float]:
        """Settings already measured beyond ``above`` / short of ``below`` whose FLOPs pass ``flops``."""
        return [
            x for x, c in self.costs.items()
            if (above is None or x > above) and (below is None or x < below) and flops(c.flops)
        ]


def _bracket(f: _StepFunction, target: float, start: float) -> tuple[float | None, float | None]:
    """(a, b) with f(a) < target <= f(b), galloping from ``start``.

    The k-th step goes (1 + 2^k/16) times ``start`` up (or down): small steps first, because
    callers start from a guess that is usually within a few percent. a is None when f(lo) already
    reaches the target, b is None when f(hi) falls short.
    """
    below, above = (start, None) if f.flops(start) < target else (None, start)
    k = 0
    while below is None or above is None:
        up = above is None
        ref, edge = (below, f.hi) if up else (above, f.lo)
        if ref == edge:
            break
        factor = 1 + 2**k / 16
        y = min(edge, start * factor) if up else max(edge, start / factor)
        if f.integer:  # always move at least one pixel, never past the bound
            y = min(edge, max(ref + 1, math.ceil(y))) if up else max(edge, min(ref - 1, math.floor(y)))
        k += 1
        if f.flops(y) < target:
            below = y
        else:
            above = y
    return below, above


def _plateau_top(f: _StepFunction, x: float) -> float:
    """The largest setting with the same FLOPs as ``x``."""
    v = f.flops(x)
    upper = min(f.seen(above=x, flops=lambda c: c > v), default=None)
    if upper is None:
        if x == f.hi or f.flops(f.hi) == v:
            return f.hi
        upper = f.hi
    return f.first_reaching(v + 1, x, upper)[0]


def _short_decimal(f: _StepFunction, x: float) -> float:
    """The shortest decimal with the same FLOPs as ``x`` (nearest ``x`` among equals): depth 1.3,
    not the breakpoint 1.2500000001.

    The measurements so far bracket x's network; the shortest decimal inside the bracket is
    measured, and one that builds another network narrows the bracket for the next try.
    """
    v = f.flops(x)
    for _ in range(64):
        lower = max(f.seen(below=x, flops=lambda c: c < v), default=f.lo - _MULTIPLIER_STEP)
        upper = min(f.seen(above=x, flops=lambda c: c > v), default=f.hi + _MULTIPLIER_STEP)
        y = _shortest_between(x, lower, upper)
        if y == x or not f.lo <= y <= f.hi:
            return x
        if f.flops(y) == v:
            return y
    return x


def _shortest_between(x: float, lower: float, upper: float) -> float:
    """The decimal with the fewest digits strictly between ``lower`` and ``upper``, nearest ``x``."""
    for digits in range(13):
        near = round(x, digits)
        step = 10.0**-digits
        inside = [y for y in (near, round(near - step, digits), round(near + step, digits)) if lower < y < upper]
        if inside:
            return min(inside, key=lambda y: abs(y - x))
    return x


def nearest_flops(
    measure: Callable[[Any], Cost],
    target: float,
    *,
    lo: float,
    hi: float,
    integer: bool = False,
    start: float | None = None,
) -> CostMatch:
    """The setting in [lo, hi] whose measured FLOPs are nearest ``target`` (in |log(flops/target)|).

    ``measure(x)`` must be non-decreasing in x, as FLOPs are in depth, width and input size (ceil
    on repeats, round-to-8 channels and floored strided sizes make them steps). The search:
      1. gallops from ``start`` (default ``lo``; pass a guess) in steps of (1 + 2^k/16)x until
         the target is bracketed: 1 + ceil(log2(16 * |x* / start - 1|)) + 1 measurements;
      2. bisects the bracket to neighbouring settings f(a) < target <= f(b) and keeps the nearer
         (ties go to the cheaper): ~log2(bracket / step) measurements, step 1 for integers and
         1e-9 for multipliers;
      3. picks one representative of that network: for integers the largest setting with the same
         FLOPs (an even input size, like 224; a bisection inside brackets already measured), for
         multipliers the shortest decimal that builds it (depth 1.3, not 1.2500000001; usually
         0-2 more measurements).
    Measurements that rebuild a network already measured are measure_cost cache hits, so the
    multiplier search traces only ~log2(distinct networks in the bracket) new architectures, and
    the input-size search none after the first (shapes only). Measured: B0's arms at φ=1 took 32
    depth and 30 width settings (7 new width networks traced; depth none, cost.py composes
    depths from one probe per width) and 6 input sizes; calibrating B1..B7 took 7-11 sizes each.
    """
    if not (target > 0 and lo <= hi):
        raise UsageError(f"nearest_flops: target={target!r} must be positive and lo={lo!r} <= hi={hi!r}")
    f = _StepFunction(measure, lo=lo, hi=hi, integer=integer)
    start = min(hi, max(lo, lo if start is None else start))
    below, above = _bracket(f, target, round(start) if integer else start)
    if below is not None and above is not None:
        below, above = f.first_reaching(target, below, above)
    pick = above if below is None else below
    if below is not None and above is not None and _log_gap(f.flops(above), target) < _log_gap(f.flops(below), target):
        pick = above  # ties stay with the cheaper network
    value = _plateau_top(f, pick) if integer else _short_decimal(f, pick)
    return CostMatch(value, f.cost(value), float(target), len(f.costs))


def _log_gap(flops: float, target: float) -> float:
    return abs(math.log(flops / target))


# ---------------------------------------------------------------------------------------------
# Calibrated family


def calibrate_family(family: Family, *, target_ratio: float = 2.0, max_resolution: int | None = None) -> Family:
    """``family`` with each member's input size re-chosen so that its FLOPs come nearest target^φ.

    Depth and width stay α^φ and β^φ (as rounded); only the resolution moves, over integer sizes
    from the baseline's ``min_resolution`` to ``max_resolution`` (default 32x B0's). Rounding made
    the α^φ members drift (the paper's triple builds B1 at ~2.55x B0, not 2x); a calibrated member
    is the nearest any input size gets. B0 (φ = 0) is the baseline itself and is kept as it is.
    Each member's ``formula_ratio`` is d·w²·(r/r0)² for the size it got; ``extra`` records the
    target and the sizes the members had before. Measurements: see `nearest_flops` (4-18 input
    sizes per member, all shape-only after the first trace of each (d, w)).
    """
    target_ratio = check_target_ratio(target_ratio)
    base = family.baseline_object
    ceiling = 32 * family.base_resolution if max_resolution is None else int(max_resolution)
    if ceiling < base.min_resolution:
        raise UsageError(
            f"max_resolution={max_resolution} is below the network's minimum {base.min_resolution}; raise it"
        )
    b0 = measure_cost(base, family.base_resolution, num_classes=family.num_classes).flops
    members = tuple(_calibrated_member(base, family, m, b0, target_ratio, ceiling) for m in family.members)
    extra = {
        **family.extra,
        "target_ratio": target_ratio,
        "calibrated_from": family.source,
        "uncalibrated_resolutions": {m.name: m.resolution for m in family.members},
    }
    return replace(family, members=members, source=f"calibrated to {target_ratio:g}^phi", extra=extra)


def _calibrated_member(
    base: Baseline, family: Family, member: FamilyMember, b0_flops: int, target_ratio: float, ceiling: int
) -> FamilyMember:
    if member.phi == 0:
        return member

    def measure(resolution: int) -> Cost:
        return measure_cost(
            base, int(resolution), depth=member.depth, width=member.width, num_classes=family.num_classes
        )

    match = nearest_flops(
        measure, b0_flops * target_ratio**member.phi,
        lo=base.min_resolution, hi=ceiling, integer=True, start=member.resolution,
    )
    return replace(
        member,
        resolution=int(match.value),
        params=match.cost.params,
        flops=match.cost.flops,
        flops_ratio=match.cost.flops / b0_flops,
        formula_ratio=formula_ratio(member.depth, member.width, match.value, family.base_resolution),
        arch_id=match.cost.arch_id,
        **_regime_fields(base, member.depth, member.width, int(match.value), family.num_classes),
    )


def calibrated_document(family: Family, calibrated: Family) -> dict[str, Any]:
    """`effscale family --calibrate --json`: both families, each calibrated member with its target."""
    target_ratio = calibrated.extra["target_ratio"]
    doc = family_document(calibrated)
    doc["target_ratio"] = target_ratio
    doc["source"] = calibrated.source
    for m in doc["members"]:
        m["target_ratio"] = target_ratio ** m["phi"]
        m["error"] = m["flops_ratio"] / m["target_ratio"] - 1
    return {"family": family_document(family), "calibrated": doc}
