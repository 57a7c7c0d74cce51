"""`frontier`: the accuracy-cost front over depth, width and resolution, each point with mean ± se
(n) and its standing (front, near: dominated only within noise, behind: dominated beyond noise),
and with --search the compound family's members drawn against it."""

from __future__ import annotations

import argparse
from typing import Any

from effscale.cli.flags import given, options
from effscale.cli.output import emit_json, print_table


def frontier_settings() -> tuple[type, ...]:
    from effscale.search.frontier.options import FrontierOptions
    from effscale.trainer.recipe import ProxyRecipe

    return (FrontierOptions, ProxyRecipe)


def cmd_frontier(args: argparse.Namespace) -> int:
    from effscale.search.frontier.run import FrontierOptions, run_frontier
    from effscale.trainer.recipe import ProxyRecipe

    document = run_frontier(options(args, FrontierOptions), given(args, ProxyRecipe), progress=not args.json or None)
    if args.json:
        emit_json(document)
        return 0
    print_frontier(document)
    return 0


def _top1(row: dict[str, Any]) -> str:
    se = "n/a" if row["top1_stderr"] is None else f"{row['top1_stderr']:.4f}"
    return f"{row['top1_mean']:.4f} ± {se} (n={row['n']})"


def _evidence(row: dict[str, Any]) -> str:
    if row["standing"] == "behind":
        return "dominated beyond noise by " + ", ".join(row["dominated_beyond_noise_by"])
    if row["standing"] == "near":
        return "dominated by mean by " + ", ".join(row["dominated_by"]) + ", within noise"
    if row["no_better_than"]:
        return "not separably better than cheaper " + ", ".join(row["no_better_than"])
    return "separated from every cheaper front point" if row["cost_ratio"] > 1 + 1e-9 or row["index"] else "-"


def print_frontier(document: dict[str, Any]) -> None:
    rows = [(r["label"] if r["label"] != "drawn" else f"#{r['index']}", f"{r['depth']:.3g}", f"{r['width']:.3g}",
             r["resolution"], f"{r['cost_ratio']:.2f}x", f"{r['params']:,}", _top1(r), r["standing"], _evidence(r))
            for r in document["points"]]
    print_table(f"{document['baseline']} on {document['data']}: accuracy against measured {document['cost']} "
                f"(ratio to the baseline, up to {document['max_ratio']:g}x), {document['repeats']} paired seeds",
                ("point", "d", "w", "res", "cost", "params", "top-1 mean ± se (n)", "standing", "evidence"), rows)
    print(f"front: {', '.join(document['front'])} (mutually non-dominated by mean); near: dominated only within "
          f"noise; behind: dominated beyond noise ({document['rule']})")
    family = document.get("family")
    if family:
        print(f"family of {family['search']}: " + "; ".join(
            f"{m['name']} {m['cost_ratio']:.2f}x {m['standing']}" for m in family["members"]))
    c = document["counts"]
    print(f"{c['trained']} networks trained ({c['drawn']} drawn by {document['sampler']}); drawn but never trained: "
          f"{c.get('infeasible', 0)} above --max-ratio, {c.get('aliases', 0)} aliases; study {document['frontier']}")
