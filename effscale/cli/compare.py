"""`compare`: does compound scaling win here? Compound against single-dimension scaling at matched
measured FLOPs, one table per φ with each arm's paired difference and the verdict."""

from __future__ import annotations

import argparse
from typing import Any

from effscale.cli.flags import given, options
from effscale.cli.output import emit_json, human, mean_se, print_table


def compare_settings() -> tuple[type, ...]:
    from effscale.search.compare.run import CompareOptions
    from effscale.trainer.recipe import ProxyRecipe

    return (CompareOptions, ProxyRecipe)


def cmd_compare(args: argparse.Namespace) -> int:
    from effscale.search.compare.run import CompareOptions, run_compare
    from effscale.trainer.recipe import ProxyRecipe

    document = run_compare(options(args, CompareOptions), given(args, ProxyRecipe), progress=not args.json or None)
    if args.json:
        emit_json(document)
        return 0
    print_comparison(document)
    return 0


def print_comparison(document: dict[str, Any]) -> None:
    c = document["coefficients"]
    for entry in document["phis"]:
        print_table(
            f"{document['baseline']} on {document['data']}: compound (alpha={c['alpha']:g}, beta={c['beta']:g}, "
            f"gamma={c['gamma']:g}) at phi={entry['phi']} against single-dimension scaling",
            ("arm", "d", "w", "r", "FLOPs", "vs compound", "params", "top-1 mean ± se (n)", "Δ vs compound (95%)"),
            [(r["arm"], f"{r['depth']:.3g}", f"{r['width']:.3g}", r["resolution"], human(r["flops"]),
              f"{r['ratio']:.3f}x", f"{r['params']:,}", mean_se(r), _delta(r))
             for r in entry["arms"]],
        )
        print(f"phi={entry['phi']}: {entry['verdict']}")
    print(f"FLOPs: {document['flops_convention']}; Δ: {document['interval']}; study {document['comparison']}")


def _delta(row: dict[str, Any]) -> str:
    if row["delta_mean"] is None:
        return "-"
    half = row["delta_half_width"]
    return f"{row['delta_mean']:+.4f} ± {'n/a' if half is None else f'{half:.4f}'}"
