"""A plan in words: its durations, and a degenerate regime's warning with its figures and ways
out, and the ``regime`` document that `plan --json`, `search --json`, `cost`, `family` and the
stored verdict carry.

The measurement is `effscale.models.regime`; what each way out would cost is priced by
`effscale.search.planning.ways_out`. This module only states them, so that the plan
(`effscale.search.planning.resources.Plan`) can carry them without importing the planner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def format_duration(seconds: float) -> str:
    """A plan's time as people read it: 45 s, 12 min, 3.5 h."""
    if not math.isfinite(seconds):
        return "unknown (no GPU here to time a step on)"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class WayOut:
    """One way out of a degenerate regime and what its own plan says it would cost."""

    flags: str  # what to pass instead, e.g. "--base-resolution 128"
    regime: Any = None  # effscale.models.regime.Regime at the size it would run
    seconds: tuple[float, float] | None = None  # the plan's estimate, fewest to most trials
    networks: int | None = None  # distinct networks its grid trains (finer sizes: more of them)
    refused: str | None = None  # why it cannot be planned

    def describe(self) -> str:
        if self.refused is not None:
            return f"{self.flags} (cannot be planned: {self.refused})"
        r = self.regime
        text = (f"{self.flags} (total stride {r.total_stride}, last map {r.last_map}x{r.last_map} at "
                f"{r.resolution} px, step {r.step_ratio:.2f}x")
        if self.seconds is None:
            return text + ")"
        low, high = self.seconds
        span = (format_duration(low) if low == high or not (math.isfinite(low) and math.isfinite(high))
                else f"{format_duration(low)} to {format_duration(high)}")
        return f"{text}; plan: {self.networks} distinct networks, {span})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "flags": self.flags, "regime": self.regime.as_dict() if self.regime is not None else None,
            # NaN (a GPU plan made without a GPU to time on) is unknown: JSON and the stored config say null.
            "seconds": ({"min": _finite(self.seconds[0]), "max": _finite(self.seconds[1])} if self.seconds else None),
            "networks": self.networks,
            "refused": self.refused,
        }


def regime_warning(regime: Any, ways: tuple[WayOut, ...] | list[WayOut] = ()) -> str | None:
    """The warning for a degenerate regime, with its figures and the ways out; None when sound."""
    if regime is None or not regime.degenerate:
        return None
    from effscale.models.regime import MAX_STEP_RATIO, MIN_LAST_MAP

    why = []
    if regime.small_map:
        why.append(f"a last feature map under {MIN_LAST_MAP}x{MIN_LAST_MAP}")
    if regime.steep_step:
        why.append(f"a one-pixel step over {MAX_STEP_RATIO:g}x")
    text = (f"regime: {regime.describe()}; with {' and '.join(why)} the resolution coefficient gamma measures "
            "stride rounding, not resolution")
    if ways:
        text += "; ways out: " + "; ".join(w.describe() for w in ways)
    return text


def regime_document(regime: Any, ways: tuple[WayOut, ...] | list[WayOut] = ()) -> dict[str, Any] | None:
    """The ``regime`` object of `plan --json`, `search --json` and the stored result."""
    if regime is None:
        return None
    return {**regime.as_dict(), "summary": regime.describe(), "warning": regime_warning(regime, ways),
            "ways_out": [w.as_dict() for w in ways]}
