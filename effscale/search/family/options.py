"""`FamilyOptions`: which family `effscale family` shows, declared once (see `effscale._settings`).

Three sources, one of them per call: a baseline and (α, β, γ) (emitted and measured now), the
released EfficientNet table (``--published``), or the family a finished search emitted (``--study``).
No torch here: the CLI reads this module to build ``--help``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from effscale._settings import check_settings, number, path, setting, text, whole
from effscale.errors import UsageError
from effscale.models.measures import COSTS, DEFAULT_COST
from effscale.models.options import baseline_setting, stem_setting
from effscale.storage.url import storage_setting

DEFAULT_TARGET_RATIO = 2.0
_above_one = number(1.0, above=True, example=2)


# Members a family may list: enough for -8..12 in steps of 0.2, few enough that a typo is caught.
MAX_MEMBERS = 101
MAX_ABS_PHI = 20.0


def parse_phis(text: Any, flag: str = "--phi") -> tuple[float, ...]:
    """``-2,-1,0.5,1..7`` into sorted unique φ values: numbers, and inclusive ranges ``a..b`` in
    steps of 1 (``a..b:step`` for another step). Any finite φ with |φ| <= 20: below 0 the family
    shrinks, between the integers it falls between its members."""
    items = [p.strip() for p in str(text).split(",") if p.strip()]
    values: list[float] = []
    try:
        for item in items:
            if ".." not in item:
                values.append(float(item))
                continue
            span, _, step_text = item.partition(":")
            start, _, stop = span.partition("..")
            a, b, step = float(start), float(stop), float(step_text) if step_text else 1.0
            if not (step > 0 and a <= b) or (b - a) / step > MAX_MEMBERS:
                raise ValueError
            count = int(math.floor((b - a) / step + 1e-9)) + 1
            values.extend(round(a + i * step, 9) for i in range(count))
    except ValueError:
        raise UsageError(f"{flag} {text!r} is not a list of phi values; pass numbers and ranges, e.g. -2,-1,0.5,1..7") from None
    phis = tuple(sorted({round(v, 9) for v in values}))
    if not phis:
        raise UsageError(f"{flag} is empty; pass e.g. 0..7")
    bad = [v for v in phis if not math.isfinite(v) or abs(v) > MAX_ABS_PHI]
    if bad or len(phis) > MAX_MEMBERS:
        raise UsageError(f"{flag} {text!r} asks for {len(phis)} members or a phi beyond +-{MAX_ABS_PHI:g}; "
                         f"pass at most {MAX_MEMBERS} values within +-{MAX_ABS_PHI:g}")
    return phis


def phis_check(value: Any, name: str) -> str:
    parse_phis(value, name)
    return str(value)


def parse_amount(text: Any, flag: str) -> float:
    """``1.2G``, ``350M``, ``5e6``: a positive count, with k, M, G or T for 1e3..1e12."""
    units = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    raw = str(text).strip()
    scale = units.get(raw[-1:], 1.0)
    try:
        amount = float(raw[:-1] if raw[-1:] in units else raw) * scale
    except ValueError:
        amount = math.nan
    if not (math.isfinite(amount) and amount > 0):
        raise UsageError(f"{flag} {text!r} is not a positive amount; pass e.g. 1.2G, 350M or 5e6")
    return amount


def _amount_check(value: Any, name: str) -> str:
    parse_amount(value, name)
    return str(value)


FIT_MEASURES = ("flops", "params", "activations")  # what --target-<measure> fits phi to


def check_target_ratio(target_ratio: float, name: str = "--target-ratio") -> float:
    """A cost multiplier per step of φ: finite and above 1 (the one check CLI and library share)."""
    return _above_one(target_ratio, name)


@dataclass(frozen=True)
class FamilyOptions:
    """A family to show: from coefficients, the published table, or a stored search."""

    baseline: str | None = baseline_setting(required=False, help="registered name or package.module:function "
                                                                   "(with --alpha, --beta, --gamma)")
    stem: str = stem_setting()
    alpha: float | None = setting(None, kind=float, help="depth coefficient")
    beta: float | None = setting(None, kind=float, help="width coefficient")
    gamma: float | None = setting(None, kind=float, help="resolution coefficient")
    base_resolution: int | None = setting(
        None, kind=int, check=whole(0, above=True, example=224), metavar="R",
        help="B0's input size (default: the baseline's own, e.g. 224 for efficientnet_b0; a family has no data)",
    )
    max_phi: int = setting(7, kind=int, check=whole(0, example=7), help="largest phi (default 7: B0..B7)")
    phi: str | None = setting(None, check=phis_check, metavar="LIST",
                              help="the members' phi values instead: numbers and ranges, negative and fractional "
                                   "too, e.g. -2,-1,0.5,1..7 (members off the integers 0..7 are named phi<value>)")
    num_classes: int = setting(1000, kind=int, check=whole(0, above=True, example=1000),
                               help="classifier outputs (default 1000)")
    allow_scale_down: bool = setting(False, kind=bool, help="accept coefficients below 1")
    published: bool = setting(False, kind=bool, help="the released EfficientNet B0..B7 table instead "
                                                     "(width, depth, resolution, dropout)")
    out: str | None = setting(None, check=path(), metavar="FILE",
                              help="also write the family as JSON to this file (with --calibrate: the calibrated one)")
    storage: str | None = storage_setting(what="with --study: the database of a finished search")
    study: str | None = setting(None, check=text(max_length=512, what="a study name"), metavar="NAME",
                                help="print the family emitted by this search")
    cost: str = setting(DEFAULT_COST, choices=COSTS,
                        help="the cost the targets and the calibration are in: flops (default), activations or "
                             "latency (--latency-device, --latency-batch, --latency-threads); all are reported")
    calibrate: bool = setting(
        False, kind=bool,
        help="also show the family with each member's input size chosen so its measured cost (--cost) comes nearest "
             "target^phi x B0's (depth and width stay alpha^phi, beta^phi)",
    )
    target_ratio: float | None = setting(
        None, kind=float, check=check_target_ratio, metavar="X",
        help=f"with --calibrate: cost multiplier per step of phi (default {DEFAULT_TARGET_RATIO:g}, must be above 1)",
    )

    target_flops: str | None = setting(None, check=_amount_check, metavar="AMOUNT",
                                       help="find the phi whose member's measured FLOPs come nearest this, e.g. 1.2G")
    target_params: str | None = setting(None, check=_amount_check, metavar="AMOUNT",
                                        help="find the phi whose member's parameters come nearest this, e.g. 20M")
    target_activations: str | None = setting(None, check=_amount_check, metavar="AMOUNT",
                                             help="find the phi whose member's activations come nearest this, e.g. 10M")

    def __post_init__(self) -> None:
        fits = [m for m in FIT_MEASURES if getattr(self, f"target_{m}") is not None]
        if len(fits) > 1:
            raise UsageError(f"pass one of --target-{', --target-'.join(fits)}, not several")
        if self.target_ratio is not None and not self.calibrate:
            raise UsageError(f"--target-ratio {self.target_ratio:g} needs --calibrate; add --calibrate or drop it")
        check_settings(self)
        if self.study is None and not self.published and (self.baseline is None or None in self.coefficients):
            raise UsageError(
                "family needs BASELINE --alpha A --beta B --gamma G (or --published, or --storage URL --study NAME)"
            )

    @property
    def fit(self) -> tuple[str, float] | None:
        """(measure, target) of a --target-* fit, else None."""
        for m in FIT_MEASURES:
            value = getattr(self, f"target_{m}")
            if value is not None:
                return m, parse_amount(value, f"--target-{m}")
        return None

    @property
    def phis(self) -> tuple[float, ...]:
        return parse_phis(self.phi) if self.phi is not None else tuple(float(p) for p in range(self.max_phi + 1))

    @property
    def coefficients(self) -> tuple[float | None, float | None, float | None]:
        return (self.alpha, self.beta, self.gamma)

    @property
    def target(self) -> float:
        """The calibration's cost multiplier per step of φ."""
        return DEFAULT_TARGET_RATIO if self.target_ratio is None else self.target_ratio
