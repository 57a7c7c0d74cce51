"""A degenerate regime, said before anything trains, with what each way out would cost.

When the base network's last feature map is under 4x4 or one more input pixel costs over 1.25x
its FLOPs (`effscale.models.regime`), the resolution coefficient a search finds measures where the
stride rounding falls. The plan then says so, with the figures, and prices each way out with a
plan of its own, made from the same options and data (`plan_search` + `make_plan`):

* ``--base-resolution R``: the smallest multiple of the total stride whose regime is sound;
* ``--stem small``: the baseline with a stride-1 stem (total stride 8), at the smallest sound size
  from the current one up;
* the small-image baseline `SMALL_IMAGE_BASELINE` (ResNet-20 for CIFAR, total stride 4), likewise.

A way out that cannot be planned (no feasible candidate, no memory) is listed with the reason.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from effscale.errors import UsageError

SMALL_IMAGE_BASELINE = "resnet20_cifar"


@dataclass(frozen=True)
class WayOut:
    """One way out of a degenerate regime and what its own plan says it would cost."""

    flags: str  # what to pass instead, e.g. "--base-resolution 128"
    regime: Any = None  # effscale.models.regime.Regime at the size it would run
    seconds: tuple[float, float] | None = None  # the plan's estimate, fewest to most trials
    networks: int | None = None  # distinct networks its grid trains (finer sizes: more of them)
    refused: str | None = None  # why it cannot be planned

    def describe(self) -> str:
        from effscale.search.plan import format_duration

        if self.refused is not None:
            return f"{self.flags} (cannot be planned: {self.refused})"
        r = self.regime
        text = (f"{self.flags} (total stride {r.total_stride}, last map {r.last_map}x{r.last_map} at "
                f"{r.resolution} px, step {r.step_ratio:.2f}x")
        if self.seconds is None:
            return text + ")"
        span = (format_duration(self.seconds[0]) if self.seconds[0] == self.seconds[1]
                else f"{format_duration(self.seconds[0])} to {format_duration(self.seconds[1])}")
        return f"{text}; plan: {self.networks} distinct networks, {span})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "flags": self.flags, "regime": self.regime.as_dict() if self.regime is not None else None,
            "seconds": {"min": self.seconds[0], "max": self.seconds[1]} if self.seconds else None,
            "networks": self.networks,
            "refused": self.refused,
        }


def plan_with_regime(search_plan: Any, *, nodes: list[Any] | None = None) -> Any:
    """`make_plan` for ``search_plan``, with its regime and, when that is degenerate, each way out
    priced by a plan of its own (on the same nodes)."""
    from effscale.search.plan import make_plan, plan_nodes

    nodes = nodes if nodes is not None else plan_nodes(search_plan.options)
    plan = make_plan(search_plan, nodes=nodes)
    regime = search_plan.regime
    if regime is None or not regime.degenerate:
        return dataclasses.replace(plan, regime=regime)
    return dataclasses.replace(plan, regime=regime, ways_out=tuple(ways_out(search_plan, nodes=nodes)))


def ways_out(search_plan: Any, *, nodes: list[Any]) -> list[WayOut]:
    """Each way out of ``search_plan``'s degenerate regime, priced by its own plan."""
    return [_priced(search_plan, way, changes, nodes) for way, changes in _candidates(
        search_plan.baseline, search_plan.base_resolution, num_classes=search_plan.data.num_classes)]


def unplanned_ways_out(baseline: Any, resolution: int, *, num_classes: int) -> list[WayOut]:
    """The ways out of ``baseline``'s regime at ``resolution`` with their regimes, unpriced (no
    data or grid to plan with: `effscale cost`, `effscale family`)."""
    return [way for way, _ in _candidates(baseline, resolution, num_classes=num_classes)]


def _candidates(base: Any, here: int, *, num_classes: int) -> list[tuple[WayOut, dict[str, Any]]]:
    """(the way out, the search options it changes) for each way out that a sound size exists for."""
    from effscale.models import get_baseline
    from effscale.models.regime import healthy_resolution

    found: list[tuple[WayOut, dict[str, Any]]] = []
    sound = healthy_resolution(base, here + 1, num_classes=num_classes)
    if sound is not None:
        found.append((WayOut(f"--base-resolution {sound.resolution}", sound), {"base_resolution": sound.resolution}))
    if base.stem == "standard":
        try:
            small = base.with_stem("small")
        except UsageError:
            small = None  # a user function without a stem parameter, or a stem already small
        regime = healthy_resolution(small, here, num_classes=num_classes) if small is not None else None
        if regime is not None:
            flags = "--stem small" + (f" --base-resolution {regime.resolution}" if regime.resolution != here else "")
            found.append((WayOut(flags, regime), {"stem": "small", "base_resolution": regime.resolution}))
    if base.name != SMALL_IMAGE_BASELINE:
        regime = healthy_resolution(get_baseline(SMALL_IMAGE_BASELINE), here, num_classes=num_classes)
        if regime is not None:
            found.append((WayOut(f"{SMALL_IMAGE_BASELINE} --base-resolution {regime.resolution}", regime),
                          {"baseline": SMALL_IMAGE_BASELINE, "stem": "standard", "base_resolution": regime.resolution}))
    return found


def _priced(search_plan: Any, way: WayOut, changes: dict[str, Any], nodes: list[Any]) -> WayOut:
    """``way`` (the search's options with ``changes``) with the time its own plan estimates. The
    data already loaded is reused: the estimate's data memory is the current size's, a detail next
    to the networks' own."""
    from effscale.search.plan import make_plan
    from effscale.search.planning import plan_search

    try:
        options = dataclasses.replace(search_plan.options, **changes)
        plan = make_plan(plan_search(options, data=search_plan.data), nodes=nodes)
    except UsageError as exc:
        return dataclasses.replace(way, refused=str(exc))
    return dataclasses.replace(way, seconds=plan.seconds, networks=plan.counts["unique"])


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
