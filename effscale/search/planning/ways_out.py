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
from typing import Any

from effscale.errors import UsageError
from effscale.search.planning.report import WayOut

SMALL_IMAGE_BASELINE = "resnet20_cifar"


def plan_with_regime(search_plan: Any, *, nodes: list[Any] | None = None) -> Any:
    """`make_plan` for ``search_plan``, with its regime and, when that is degenerate, each way out
    priced by a plan of its own (on the same nodes)."""
    from effscale.search.planning.resources import make_plan, plan_nodes

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
    from effscale.search.planning.resources import make_plan
    from effscale.search.planning.plan import plan_search

    try:
        options = dataclasses.replace(search_plan.options, **changes)
        plan = make_plan(plan_search(options, data=search_plan.data), nodes=nodes)
    except UsageError as exc:
        return dataclasses.replace(way, refused=str(exc))
    return dataclasses.replace(way, seconds=plan.seconds, networks=plan.counts["unique"])


