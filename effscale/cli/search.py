"""`search`, `plan` and `confirm`: the coefficient search, what it would need, and a later,
longer confirmation of its ranking; with the plan's and the verdict's printed form."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from effscale.cli.families import print_family
from effscale.cli.flags import given, options
from effscale.cli.output import emit_json, mean_se, num, print_table, triple


def search_settings() -> tuple[type, ...]:
    """`search` and `plan` take exactly the same options: `SearchOptions`, `ProxyRecipe` and `LatencyOptions`."""
    from effscale.models.options import LatencyOptions
    from effscale.search.planning.options import SearchOptions
    from effscale.trainer.recipe import ProxyRecipe

    return (SearchOptions, ProxyRecipe, LatencyOptions)


def cmd_search(args: argparse.Namespace) -> int:
    from effscale.search import run_search

    # The plan goes to stderr, before anything trains: stdout stays free for --json.
    result = run_search(**given(args, *search_settings()), progress=not args.json or None,
                        on_plan=lambda plan: print_plan(plan, file=sys.stderr))
    family_path, calibrated_path = _save_families(result)
    if args.json:
        emit_json({**result.to_dict(), "family_path": str(family_path),
                   "calibrated_path": str(calibrated_path) if calibrated_path else None})
        return 0
    print_verdict(result)
    print_family(result.family, result.calibrated, calibrated_first=result.recommended_family == "calibrated")
    also = f", the calibrated one to {calibrated_path}" if calibrated_path else ""
    print(f"study {result.study} in {result.storage}; family written to {family_path}{also}")
    return 0


def _save_families(result: Any) -> tuple[Path, Path | None]:
    """The α^φ family (``--out``, else family-STUDY.json) and the calibrated one beside it
    (FILE.calibrated.json); `Family.load` and `build_member` read either."""
    family_path = result.family_path or result.family.save(f"family-{result.study}.json")
    if result.calibrated is None:
        return family_path, None
    return family_path, result.calibrated.save(family_path.with_name(family_path.stem + ".calibrated.json"))


def cmd_plan(args: argparse.Namespace) -> int:
    """`search`'s checks and measurements, plus memory, concurrency and time; trains and writes nothing."""
    from effscale.search.planning.options import SearchOptions
    from effscale.search.planning.plan import plan_search
    from effscale.search.planning.ways_out import plan_with_regime

    plan = plan_with_regime(plan_search(SearchOptions.build(**given(args, *search_settings()))))
    if args.json:
        emit_json(plan.as_dict())
        return 0
    print_plan(plan)
    return 0


def print_plan(plan: Any, *, file: Any = None) -> None:
    """The plan's table and summary (`effscale plan`; `effscale search` prints it on stderr first)."""
    from effscale.models.measures import LABELS
    from effscale.search.planning.report import format_duration

    gib, gpu = 1024**3, plan.device == "cuda"
    timed = any(n.candidate.latency_ms is not None for n in plan.networks)
    headers = ("(alpha, beta, gamma)", "d", "w", "res", "measured FLOPs", "activations", *(("latency",) if timed else ()),
               "formula", "params", "mem/trial", *(("GPU mem",) if gpu else ()), "batch", "s/trial", "aliases")
    rows = [
        (f"({c.alpha:g}, {c.beta:g}, {c.gamma:g})", f"{c.depth:g}", f"{c.width:g}", c.resolution, f"{c.flops_ratio:.2f}x",
         f"{c.activations_ratio:.2f}x",
         *((f"{c.latency_ms:.2f} ms ({c.latency_ratio:.2f}x)",) if timed else ()),
         f"{c.formula_ratio:.2f}x", f"{c.params:,}", f"{n.footprint.memory_request_bytes / gib:.2f} GiB",
         *((f"{(n.footprint.gpu_memory_bytes or 0) / gib:.2f} GiB",) if gpu else ()),
         n.footprint.batch_size, f"{n.trial_seconds:.0f}", len(n.aliases) - 1)
        for n in plan.networks for c in (n.candidate,)
    ]
    print_table(f"plan for {plan.study} ({plan.device})", headers, rows, file=file)
    counts, nodes = plan.counts, ", ".join(f"{n.name} {plan.concurrency[n.name]}" for n in plan.nodes)
    print(f"FLOPs: {plan.flops_convention}; activations: fvcore's count, same trace; ratios to B0; "
          f"mem/trial includes the margin asked of Ray", file=file)
    if plan.networks:
        print(f"cost: {LABELS[plan.networks[0].candidate.cost]} (the constraint, the verdict and the family are in it)",
              file=file)
    if plan.regime is not None and not plan.regime.degenerate:
        print(f"regime: {plan.regime.describe()}", file=file)
    for warning in plan.warnings:
        print(f"warning: {warning}", file=file)
    print(
        f"{counts['unique']} distinct networks ({counts['feasible']} feasible of {counts['grid']}); "
        f"trials at once: {plan.slots} ({nodes}); {plan.trials[0]}-{plan.trials[1]} trials, "
        f"estimated {format_duration(plan.seconds[0])} to {format_duration(plan.seconds[1])}", file=file,
    )


def confirm_settings() -> tuple[type, ...]:
    from effscale.search.verdict.options import ConfirmOptions

    return (ConfirmOptions,)


def cmd_confirm(args: argparse.Namespace) -> int:
    from effscale.search.driver import run_confirmation
    from effscale.search.verdict.options import ConfirmOptions

    o = options(args, ConfirmOptions)
    where = {"ray_address": o.ray_address} if o.ray_address else {}
    result = run_confirmation(o.study, storage=o.storage, top=o.confirm_top, epochs=o.confirm_epochs,
                              progress=not args.json or None, **where)
    if args.json:
        emit_json(result.to_dict())
        return 0
    print_verdict(result)
    print_family(result.family, result.calibrated, calibrated_first=result.recommended_family == "calibrated")
    print(f"study {result.study} in {result.storage}: family re-emitted from the confirmed winner")
    return 0


def _where(result: Any) -> str:
    sampler = getattr(result, "sampler", "grid")
    return "on the grid" if sampler == "grid" else f"drawn by {sampler}"


def print_verdict(result: Any) -> None:
    """The winner with mean ± se (n), who it is tied with, the proxy's fidelity, warnings, counts."""
    best, counts, fidelity = result.best, result.counts, result.fidelity
    print(
        f"winner: alpha={best['alpha']:g} beta={best['beta']:g} gamma={best['gamma']:g}  "
        f"val top-1 {mean_se(best)}  measured {best['flops_ratio']:.2f}x / formula {best['formula_ratio']:.2f}x"
        + (f"  activations {best['activations_ratio']:.2f}x" if best.get("activations_ratio") else "")
        + (f"  latency {best['latency_ratio']:.2f}x" if best.get("latency_ratio") else "")
        + (f"  confirmed {mean_se(best['confirmed'])}" if best.get("confirmed") else "")
    )
    tied = best["tied_with"]
    if tied:
        print(f"tied with {len(tied)} candidate{'s' if len(tied) > 1 else ''} (not separable by the {best['chosen_by']}; "
              f"lower measured FLOPs decides): " + "; ".join(f"{triple(t)} {mean_se(t)}" for t in tied))
    else:
        print(f"separated: no candidate is statistically tied with it ({best['separation_rule']})")
    if fidelity:
        low, high = (num(v) for v in fidelity["tau_interval"])
        print(
            f"proxy fidelity: Kendall tau {num(fidelity['kendall_tau'])} [95% {low}, {high}] over "
            f"{fidelity['candidates']} candidates retrained for {fidelity['confirm_epochs'] or fidelity['confirm_steps']} "
            f"{'epochs' if fidelity['confirm_epochs'] else 'steps'}, {fidelity['repeats']} seeds each; proxy winner "
            f"{triple(fidelity['proxy_winner'])}, confirmed winner {triple(fidelity['confirmed_winner'])}"
        )
    if result.regime and not result.regime.get("degenerate"):
        print(f"regime: {result.regime['summary']}")
    for warning in result.warnings:
        print(f"warning: {warning}")
    for failure in result.failures:
        print(failure)
    print(
        f"candidates: {counts['grid']} {_where(result)}, {counts['feasible']} feasible, {counts['unique']} distinct networks "
        f"raced, {counts['aliases']} alias{'' if counts['aliases'] == 1 else 'es'}; trials: "
        + ", ".join(f"{k} {v}" for k, v in result.trials.items() if v)
    )
