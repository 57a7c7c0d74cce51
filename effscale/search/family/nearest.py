"""`nearest_flops`: the setting whose measured cost comes nearest a target, found by search.

Measured cost is a non-decreasing step function of a multiplier or an input size (rounded repeats,
channels and strides); this finds the setting nearest a target in few measurements. Calibrated
families (`effscale.search.family.calibrate`) and the comparison's matched arms
(`effscale.search.compare.arms`) both use it. It searches on FLOPs unless given another ``value``
of the measured `Cost` (its activations, or a latency measured for the network it names).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from effscale.errors import UsageError
from effscale.models import Cost

# Multipliers are searched to this precision. Distinct networks lie further apart: a depth step
# is k/n (n a stage's block count), a width step (8k - 4)/c, so two steps differ by at least
# 1/(n1*n2) or 1/(c1*c2), ~6e-8 even for 4096-channel layers.
_MULTIPLIER_STEP = 1e-9


def flops_of(cost: Cost) -> float:
    """What `nearest_flops` searches on unless told otherwise: fvcore's FLOPs."""
    return cost.flops


@dataclass(frozen=True)
class CostMatch:
    """What `nearest_flops` chose: a setting, its measured cost, and how it was found."""

    value: float  # the setting chosen (an int for an integer search: pixels)
    cost: Cost
    target: float  # the FLOPs (or the searched value) aimed at
    measurements: int  # distinct settings measured (measure_cost cache hits included)
    reached: float  # the searched value of ``cost`` (its FLOPs by default)

    @property
    def ratio(self) -> float:
        """The searched value (FLOPs by default) over the target: 1.0 is an exact match."""
        return self.reached / self.target


class _StepFunction:
    """A measured value (FLOPs by default) as a function of one setting: non-decreasing and
    stepwise, measured once per setting."""

    def __init__(self, measure: Callable[[Any], Cost], *, lo: float, hi: float, integer: bool,
                 value: Callable[[Cost], float] = flops_of) -> None:
        self.measure, self.lo, self.hi, self.integer, self.value = measure, lo, hi, integer, value
        self.costs: dict[float, Cost] = {}

    def cost(self, x: float) -> Cost:
        if x not in self.costs:
            self.costs[x] = self.measure(x)
        return self.costs[x]

    def flops(self, x: float) -> float:
        """The searched value at ``x`` (FLOPs unless the search was given another)."""
        return self.value(self.cost(x))

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
        self, *, above: float | None = None, below: float | None = None, flops: Callable[[float], bool]
    ) -> list[float]:
        """Settings already measured beyond ``above`` / short of ``below`` whose value passes ``flops``."""
        return [
            x for x, c in self.costs.items()
            if (above is None or x > above) and (below is None or x < below) and flops(self.value(c))
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
    # The first value above v: v + 1 for whole counts, the next float for a latency.
    return f.first_reaching(math.nextafter(v, math.inf), x, upper)[0]


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
    value: Callable[[Cost], float] = flops_of,
) -> CostMatch:
    """The setting in [lo, hi] whose measured FLOPs are nearest ``target`` (in |log(flops/target)|).

    ``value`` picks what is searched on (default `flops_of`; e.g. ``lambda c: c.activations``):
    everything below reads "FLOPs" for it, and the match is the same for FLOPs either way.
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
    f = _StepFunction(measure, lo=lo, hi=hi, integer=integer, value=value)
    start = min(hi, max(lo, lo if start is None else start))
    below, above = _bracket(f, target, round(start) if integer else start)
    if below is not None and above is not None:
        below, above = f.first_reaching(target, below, above)
    pick = above if below is None else below
    if below is not None and above is not None and _log_gap(f.flops(above), target) < _log_gap(f.flops(below), target):
        pick = above  # ties stay with the cheaper network
    chosen = _plateau_top(f, pick) if integer else _short_decimal(f, pick)
    return CostMatch(chosen, f.cost(chosen), float(target), len(f.costs), f.flops(chosen))


def _log_gap(flops: float, target: float) -> float:
    return abs(math.log(flops / target))


