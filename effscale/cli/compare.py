"""`compare`: does compound scaling win here? Compound against single-dimension (and, with --arms,
fast) scaling at a matched measured cost (--cost: FLOPs, activations or latency), one table per φ
with each arm's params, FLOPs and activations against compound's, its paired difference and the
verdict."""

from __future__ import annotations

import argparse
from typing import Any

from effscale.cli.flags import given, options
from effscale.cli.output import emit_json, human, mean_se, print_table


def compare_settings() -> tuple[type, ...]:
    from effscale.models.options import LatencyOptions
    from effscale.search.compare.run import CompareOptions
    from effscale.trainer.recipe import ProxyRecipe

    return (CompareOptions, LatencyOptions, ProxyRecipe)


def cmd_compare(args: argparse.Namespace) -> int:
    from effscale.models.options import LatencyOptions
    from effscale.search.compare.run import CompareOptions, run_compare
    from effscale.trainer.recipe import ProxyRecipe

    compare = options(args, CompareOptions)
    # A --latency-* flag times every arm (and --cost latency matches in it): none given, no timing.
    latency = options(args, LatencyOptions) if given(args, LatencyOptions) else None
    document = run_compare(compare, given(args, ProxyRecipe), progress=not args.json or None, latency=latency)
    if args.json:
        emit_json(document)
        return 0
    print_comparison(document)
    return 0


def print_comparison(document: dict[str, Any]) -> None:
    c, label = document["coefficients"], document["cost_label"]
    timed = document.get("latency") is not None
    against = "single-dimension and fast scaling" if "fast" in document["arms"] else "single-dimension scaling"
    for entry in document["phis"]:
        print_table(
            f"{document['baseline']} on {document['data']}: compound (alpha={c['alpha']:g}, beta={c['beta']:g}, "
            f"gamma={c['gamma']:g}) at phi={entry['phi']} against {against}, matched in {label}",
            ("arm", "d", "w", "r", "FLOPs", "vs compound", "activations", "act. vs compound",
             *(("latency ms", "lat. vs compound") if timed else ()), "params", "top-1 mean ± se (n)",
             "Δ vs compound (95%)"),
            [(_arm(r), f"{r['depth']:.3g}", f"{r['width']:.3g}", r["resolution"], human(r["flops"]),
              f"{r['ratio']:.3f}x", *_added(r, timed), f"{r['params']:,}", mean_se(r), _delta(r))
             for r in entry["arms"]],
        )
        print(f"phi={entry['phi']}: {entry['verdict']}")
    lines = [f"FLOPs: {document['flops_convention']}", f"activations: {document['activations_convention']}"]
    if timed:
        t = document["latency"]
        lines.append(f"latency: {t['convention']} on {t['device_description']}, {t['threads']} threads")
    print("; ".join([*lines, f"matched in {label}", f"Δ: {document['interval']}", f"study {document['comparison']}"]))
    for r in (r for e in document["phis"] for r in e["arms"] if r.get("latency_warning")):
        print(f"warning: {r['arm']} arm: {r['latency_warning']}")


def _arm(row: dict[str, Any]) -> str:
    return f"{row['arm']} (s={row['scale']:.3g})" if row.get("scale") is not None else row["arm"]


def _added(row: dict[str, Any], timed: bool) -> tuple[str, ...]:
    """Activations and (when timed) latency, each with its ratio to compound's."""
    cells = (human(row["activations"]), f"{row['activations_vs_compound']:.3f}x")
    if timed:
        lat = row.get("latency_ms")
        cells += ("-", "-") if lat is None else (f"{lat:.3g}", f"{row['latency_vs_compound']:.3f}x")
    return cells


def _delta(row: dict[str, Any]) -> str:
    if row["delta_mean"] is None:
        return "-"
    half = row["delta_half_width"]
    return f"{row['delta_mean']:+.4f} ± {'n/a' if half is None else f'{half:.4f}'}"
