"""`baselines`, `cost` and `family`: what a network and a family cost, measured, trained nothing."""

from __future__ import annotations

import argparse
from typing import Any

from effscale.cli.families import print_family
from effscale.cli.flags import options
from effscale.cli.output import emit_json, human, print_table


def cmd_baselines(args: argparse.Namespace) -> int:
    from effscale.models import get_baseline, list_baselines, measure_cost
    from effscale.models.cost import flops_convention

    rows = []
    for name in list_baselines():
        baseline = get_baseline(name)
        cost = measure_cost(baseline, baseline.base_resolution)
        rows.append({"name": name, "base_resolution": baseline.base_resolution, "min_resolution": baseline.min_resolution,
                     "params": cost.params, "flops": cost.flops, "source": baseline.source})
    if args.json:
        emit_json({"flops_convention": flops_convention(1000), "baselines": rows})
        return 0
    print_table(
        "registered baselines (num_classes=1000)",
        ("baseline", "base res", "params", "FLOPs", "source"),
        [(r["name"], r["base_resolution"], f"{r['params']:,}", human(r["flops"]), r["source"]) for r in rows],
    )
    print(f"FLOPs: {flops_convention(1000)}. Also: any package.module:function(depth, width, num_classes).")
    return 0


def cost_settings() -> tuple[type, ...]:
    from effscale.models.options import CostOptions, LatencyOptions

    return (CostOptions, LatencyOptions)


def cmd_cost(args: argparse.Namespace) -> int:
    from effscale.models import get_baseline, measure_cost
    from effscale.models.cost import ACTIVATIONS_CONVENTION
    from effscale.models.options import CostOptions, LatencyOptions
    from effscale.models.regime import measure_regime
    from effscale.models.scaling import formula_ratio
    from effscale.search.planning.report import regime_document
    from effscale.search.planning.ways_out import unplanned_ways_out

    o = options(args, CostOptions)  # refuses a bad depth, width or head in one line
    timing = options(args, LatencyOptions)
    baseline = get_baseline(o.baseline, stem=o.stem)
    resolution = baseline.base_resolution if o.resolution is None else o.resolution
    cost = measure_cost(baseline, resolution, depth=o.depth, width=o.width, num_classes=o.num_classes)
    base = measure_cost(baseline, baseline.base_resolution, num_classes=o.num_classes)
    regime = measure_regime(baseline, resolution, depth=o.depth, width=o.width, num_classes=o.num_classes)
    ways = unplanned_ways_out(baseline, resolution, num_classes=o.num_classes) if regime.degenerate else []
    described = baseline.describe(o.depth, o.width)
    latency = timing.measure(baseline, resolution, depth=o.depth, width=o.width, num_classes=o.num_classes) \
        if o.latency else None
    document = {
        "baseline": baseline.name, "stem": baseline.stem, "depth": o.depth, "width": o.width, "resolution": resolution,
        "num_classes": o.num_classes, "params": cost.params, "flops": cost.flops, "activations": cost.activations,
        "flops_convention": cost.flops_convention, "activations_convention": ACTIVATIONS_CONVENTION,
        "flops_ratio": cost.flops / base.flops, "activations_ratio": cost.activations / base.activations,
        "formula_ratio": formula_ratio(o.depth, o.width, resolution, baseline.base_resolution),
        "latency": latency.as_dict() if latency else None,
        "arch_id": cost.arch_id, "regime": regime_document(regime, ways), **described,
    }
    if args.json:
        emit_json(document)
        return 0
    print_table(
        f"{regime.label} at depth {o.depth:g}, width {o.width:g}, {resolution}x{resolution}",
        ("quantity", "value"),
        [
            ("params", f"{cost.params:,}"),
            ("FLOPs", f"{cost.flops:,} ({human(cost.flops)})"),
            ("measured / baseline", f"{document['flops_ratio']:.3f}x"),
            ("formula d*w^2*r^2", f"{document['formula_ratio']:.3f}x"),
            ("activations", f"{cost.activations:,} ({human(cost.activations)})"),
            ("activations / baseline", f"{document['activations_ratio']:.3f}x"),
            *_latency_rows(latency),
            ("total stride", regime.total_stride),
            ("last feature map", f"{regime.last_map}x{regime.last_map}"),
            (f"FLOPs at {resolution + 1} px / {resolution} px", f"{regime.step_ratio:.3f}x (r^2: {regime.formula_step:.3f}x)"),
            ("arch id", cost.arch_id),
        ]
        + [(k, str(v)) for k, v in described.items()],
    )
    print(f"FLOPs: {cost.flops_convention}")
    print(f"activations: {ACTIVATIONS_CONVENTION}, same trace")
    if latency is not None:
        print(f"latency: {latency.as_dict()['convention']}, on {latency.device_description}")
    for warning in (document["regime"]["warning"], latency.warning if latency else None):
        if warning:
            print(f"warning: {warning}")
    return 0


def _latency_rows(latency: Any) -> list[tuple[str, str]]:
    if latency is None:
        return []
    return [("latency (median)", f"{latency.median_s * 1e3:.3f} ms over {latency.runs} runs"),
            ("latency IQR", f"{(latency.q1_s) * 1e3:.3f} .. {latency.q3_s * 1e3:.3f} ms ({latency.spread:.1%} of the median)"),
            ("latency setting", f"{latency.device}, batch {latency.batch}, {latency.threads} thread{'s' if latency.threads > 1 else ''}")]


def family_settings() -> tuple[type, ...]:
    from effscale.models.options import LatencyOptions
    from effscale.search.family.options import FamilyOptions

    return (FamilyOptions, LatencyOptions)


def cmd_family(args: argparse.Namespace) -> int:
    from effscale.search.family.calibrate import calibrate_family
    from effscale.search.family.members import family_regime
    from effscale.models.options import LatencyOptions
    from effscale.search.family.options import FamilyOptions
    from effscale.search.planning.report import regime_document
    from effscale.search.planning.ways_out import unplanned_ways_out
    from effscale.search.verdict.rounding import family_miss_warning

    o = options(args, FamilyOptions)  # checked before anything is measured: eight traces can wait
    latency = options(args, LatencyOptions)
    if o.fit is not None:
        return _fit(args, o)
    family = _family(o, latency)
    calibrated = calibrate_family(family, target_ratio=o.target, latency=latency) if o.calibrate else None
    regime = family_regime(family)
    ways = unplanned_ways_out(family.baseline_object, family.base_resolution, num_classes=family.num_classes) \
        if regime.degenerate else []
    regime_doc = regime_document(regime, ways)
    # The published table is not alpha^phi (its sizes were hand-picked): no target to miss.
    missed = None if family.coefficients is None else family_miss_warning(
        family, o.target, calibrated="the calibrated family (printed first)" if calibrated else "--calibrate")
    warnings = [w for w in (regime_doc["warning"], missed) if w]
    if o.out:
        (calibrated or family).save(o.out)
    if args.json:
        from effscale.search.family.calibrate import calibrated_document
        from effscale.search.family.members import family_document

        document = family_document(family) if calibrated is None else calibrated_document(family, calibrated)
        emit_json({**document, "regime": regime_doc, "warnings": warnings})
        return 0
    print_family(family, calibrated, calibrated_first=bool(missed and calibrated))
    print(f"regime: B0 {regime.describe()}")
    for warning in warnings:
        print(f"warning: {warning}")
    if o.out:
        print(f"wrote {'the calibrated family to ' if calibrated else ''}{o.out}")
    return 0


def _fit(args: argparse.Namespace, o: Any) -> int:
    """``--target-flops`` and kin: the φ whose member comes nearest, with its grid neighbours."""
    import dataclasses

    from effscale.search.family.fit import PHI_STEP, fit_phi
    from effscale.search.family.members import family_document

    measure, target = o.fit
    family = _family(dataclasses.replace(o, phi="0"), None)  # the coefficients and B0, nothing more measured
    fit = fit_phi(family, measure=measure, target=target)
    found = dataclasses.replace(family, members=(fit.member,))
    if args.json:
        emit_json({"fit": fit.as_dict(), "family": family_document(found)})
        return 0
    print_family(found)
    near = ", ".join(f"phi {p:g}: {human(v)}" for p, v in fit.neighbours)
    print(f"phi={fit.member.phi:g} ({fit.member.name}) measures {human(fit.reached)} {measure} against the target "
          f"{human(target)} ({fit.error:+.1%}), the nearest on a grid of phi in steps of {PHI_STEP:g} ({near})")
    return 0


def _family(o: Any, latency: Any) -> Any:
    """The family ``o`` names: a stored search's, the published table, or emitted from coefficients."""
    from effscale.models import Coefficients, get_baseline
    from effscale.search.family.members import emit_family, published_efficientnet_family

    if o.study:
        from effscale.search.records.queries import load_family

        return load_family(o.storage, o.study)
    if o.published:
        return published_efficientnet_family(num_classes=o.num_classes, cost=o.cost, latency=latency)
    coefficients = Coefficients(*o.coefficients, allow_scale_down=o.allow_scale_down)
    return emit_family(get_baseline(o.baseline, stem=o.stem), coefficients, phis=o.phis,
                       base_resolution=o.base_resolution, num_classes=o.num_classes, cost=o.cost, latency=latency)
