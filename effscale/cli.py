"""The ``effscale`` command line.

Every command takes ``--json`` (one JSON document on stdout) or prints a readable table. Bad input
is one line on stderr naming the value and the fix, with exit code 2 and no traceback.

`train`'s and `search`'s options are derived from the settings dataclasses (`ProxyRecipe`,
`SearchOptions`; see `effscale._settings`): their defaults, checks and help live there only.
Nothing heavy is imported at module level, so ``effscale --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from effscale.errors import SearchFailed, SearchInterrupted, UsageError


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (argparse prints the whole usage block first)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = _whole(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be {'> 0' if minimum == 1 else f'>= {minimum}'}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)
_PARSE_KIND: dict[type, Callable[[str], Any]] = {int: _whole, float: _finite_float, str: str}
_METAVAR = {int: "N", float: "X", str: "TEXT"}


# ---------------------------------------------------------------------------------------------
# output


def _emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def _print_table(title: str | None, headers: Sequence[str], rows: Sequence[Sequence[Any]], *, file: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right", no_wrap=True)
    cells = [[str(cell) for cell in row] for row in rows]
    for row in cells:
        table.add_row(*row)
    # As wide as the widest row needs (a pipe has no terminal width): cells are never wrapped.
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    Console(width=max(100, sum(widths) + 3 * len(widths) + 1), file=file).print(table)


def _human(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:g}"


def _family_rows(family: Any) -> list[list[Any]]:
    return [
        [
            m.name,
            f"{m.phi:g}",
            f"{m.depth:.3f}",
            f"{m.width:.3f}",
            m.resolution,
            "-" if m.last_map is None else f"{m.last_map}x{m.last_map}",
            f"{m.params:,}",
            _human(m.flops),
            f"{m.flops_ratio:.2f}x",
            f"{m.formula_ratio:.2f}x",
        ]
        for m in family.members
    ]


FAMILY_HEADERS = ("member", "phi", "depth d", "width w", "res", "last map", "params", "FLOPs", "measured /B0",
                  "formula /B0")
CALIBRATED_HEADERS = (
    "member", "phi", "depth d", "width w", "target /B0",
    "res", "measured /B0", "error", "calibrated res", "calibrated /B0", "calibrated error",
)
TARGET_HEADERS = ("member", "phi", "depth d", "width w", "res", "last map", "params", "FLOPs", "target /B0",
                  "measured /B0", "error")


def _calibrated_rows(family: Any, calibrated: Any) -> list[list[Any]]:
    """The α^φ member and its calibrated twin side by side, each ratio's error against target^φ."""
    target = calibrated.extra["target_ratio"]
    rows = []
    for m, c in zip(family.members, calibrated.members):
        goal = target**m.phi
        rows.append([
            m.name, f"{m.phi:g}", f"{m.depth:.3f}", f"{m.width:.3f}", f"{goal:.2f}x",
            m.resolution, f"{m.flops_ratio:.2f}x", f"{m.flops_ratio / goal - 1:+.1%}",
            c.resolution, f"{c.flops_ratio:.2f}x", f"{c.flops_ratio / goal - 1:+.1%}",
        ])
    return rows


def _target_rows(family: Any, target: float) -> list[list[Any]]:
    """One family's members against target^φ."""
    return [
        [m.name, f"{m.phi:g}", f"{m.depth:.3f}", f"{m.width:.3f}", m.resolution,
         "-" if m.last_map is None else f"{m.last_map}x{m.last_map}", f"{m.params:,}", _human(m.flops),
         f"{target**m.phi:.2f}x", f"{m.flops_ratio:.2f}x", f"{m.flops_ratio / target**m.phi - 1:+.1%}"]
        for m in family.members
    ]


def _family_title(family: Any) -> str:
    coeffs = family.coefficients
    title = f"{family.baseline}{' (small stem)' if family.stem != 'standard' else ''} family"
    if coeffs:
        title += f" (alpha={coeffs['alpha']:g}, beta={coeffs['beta']:g}, gamma={coeffs['gamma']:g})"
    return title


def _print_family(family: Any, calibrated: Any = None, *, calibrated_first: bool = False) -> None:
    """The family's table. With ``calibrated``: side by side with it, or, when the α^φ family
    misses target^φ (``calibrated_first``), the calibrated family first and the α^φ one after."""
    title = _family_title(family)
    if calibrated is None:
        _print_table(title, FAMILY_HEADERS, _family_rows(family))
    elif calibrated_first:
        target = calibrated.extra["target_ratio"]
        _print_table(f"{title} calibrated to {target:g}^phi (use this one: the alpha^phi family misses "
                     f"{target:g}^phi)", TARGET_HEADERS, _target_rows(calibrated, target))
        _print_table(f"{title}: alpha^phi members, as the coefficients build them", TARGET_HEADERS,
                     _target_rows(family, target))
    else:
        title += f" and the same d, w calibrated to {calibrated.extra['target_ratio']:g}^phi"
        _print_table(title, CALIBRATED_HEADERS, _calibrated_rows(family, calibrated))
    print(f"FLOPs: {family.flops_convention}")
    if calibrated is not None:
        print(
            "calibrated: each member keeps d and w and takes the input size whose measured FLOPs come "
            "nearest target^phi x B0 (error: measured / target - 1)."
        )
    phi1 = next((m for m in family.members if m.phi == 1), None)
    if phi1 is not None:
        print(
            f"phi=1 measures {phi1.flops_ratio:.2f}x {family.members[0].name} once built and rounded; "
            f"the formula alpha*beta^2*gamma^2 says {phi1.formula_ratio:.2f}x."
        )


# ---------------------------------------------------------------------------------------------
# commands


def _cmd_baselines(args: argparse.Namespace) -> int:
    from effscale.models import get_baseline, list_baselines, measure_cost
    from effscale.models.cost import flops_convention

    rows = []
    for name in list_baselines():
        baseline = get_baseline(name)
        cost = measure_cost(baseline, baseline.base_resolution)
        rows.append(
            {
                "name": name,
                "base_resolution": baseline.base_resolution,
                "min_resolution": baseline.min_resolution,
                "params": cost.params,
                "flops": cost.flops,
                "source": baseline.source,
            }
        )
    if args.json:
        _emit_json({"flops_convention": flops_convention(1000), "baselines": rows})
        return 0
    _print_table(
        "registered baselines (num_classes=1000)",
        ("baseline", "base res", "params", "FLOPs", "source"),
        [(r["name"], r["base_resolution"], f"{r['params']:,}", _human(r["flops"]), r["source"]) for r in rows],
    )
    print(f"FLOPs: {flops_convention(1000)}. Also: any package.module:function(depth, width, num_classes).")
    return 0


def _cmd_cost(args: argparse.Namespace) -> int:
    from effscale.models import ScaleFactors, get_baseline, measure_cost
    from effscale.models.regime import measure_regime
    from effscale.models.scaling import formula_ratio
    from effscale.search.planning.report import regime_document
    from effscale.search.planning.ways_out import unplanned_ways_out

    baseline = get_baseline(args.baseline, stem=args.stem)
    ScaleFactors(args.depth, args.width, 1.0)  # refuses a bad depth or width in one line
    resolution = baseline.base_resolution if args.resolution is None else args.resolution
    cost = measure_cost(baseline, resolution, depth=args.depth, width=args.width, num_classes=args.num_classes)
    base = measure_cost(baseline, baseline.base_resolution, num_classes=args.num_classes)
    regime = measure_regime(baseline, resolution, depth=args.depth, width=args.width, num_classes=args.num_classes)
    ways = unplanned_ways_out(baseline, resolution, num_classes=args.num_classes) if regime.degenerate else []
    document = {
        "baseline": baseline.name,
        "stem": baseline.stem,
        "depth": args.depth,
        "width": args.width,
        "resolution": resolution,
        "num_classes": args.num_classes,
        "params": cost.params,
        "flops": cost.flops,
        "flops_convention": cost.flops_convention,
        "flops_ratio": cost.flops / base.flops,
        "formula_ratio": formula_ratio(args.depth, args.width, resolution, baseline.base_resolution),
        "arch_id": cost.arch_id,
        "regime": regime_document(regime, ways),
        **baseline.describe(args.depth, args.width),
    }
    if args.json:
        _emit_json(document)
        return 0
    _print_table(
        f"{regime.label} at depth {args.depth:g}, width {args.width:g}, {resolution}x{resolution}",
        ("quantity", "value"),
        [
            ("params", f"{cost.params:,}"),
            ("FLOPs", f"{cost.flops:,} ({_human(cost.flops)})"),
            ("measured / baseline", f"{document['flops_ratio']:.3f}x"),
            ("formula d*w^2*r^2", f"{document['formula_ratio']:.3f}x"),
            ("total stride", regime.total_stride),
            ("last feature map", f"{regime.last_map}x{regime.last_map}"),
            (f"FLOPs at {resolution + 1} px / {resolution} px", f"{regime.step_ratio:.3f}x (r^2: {regime.formula_step:.3f}x)"),
            ("arch id", cost.arch_id),
        ]
        + [(k, str(v)) for k, v in baseline.describe(args.depth, args.width).items()],
    )
    print(f"FLOPs: {cost.flops_convention}")
    if document["regime"]["warning"]:
        print(f"warning: {document['regime']['warning']}")
    return 0


def _cmd_family(args: argparse.Namespace) -> int:
    from effscale.models import Coefficients, get_baseline
    from effscale.search import emit_family, published_efficientnet_family
    from effscale.search.family.calibrate import calibrate_family, check_target_ratio
    from effscale.search.family.members import family_regime
    from effscale.search.verdict.rounding import family_miss_warning
    from effscale.search.planning.report import regime_document
    from effscale.search.planning.ways_out import unplanned_ways_out

    if args.target_ratio is not None and not args.calibrate:
        raise UsageError(f"--target-ratio {args.target_ratio:g} needs --calibrate; add --calibrate or drop it")
    if args.out:
        from effscale._settings import writable_file

        writable_file(args.out, "--out")
    # Checked before anything is measured: a bad ratio should not wait for eight traces.
    target_ratio = check_target_ratio(2.0 if args.target_ratio is None else args.target_ratio)
    if args.study:
        from effscale.search.records.queries import load_family

        family = load_family(args.storage, args.study)
    elif args.published:
        family = published_efficientnet_family(num_classes=args.num_classes)
    else:
        if args.baseline is None or None in (args.alpha, args.beta, args.gamma):
            raise UsageError(
                "family needs BASELINE --alpha A --beta B --gamma G (or --published, or --storage URL --study NAME)"
            )
        coefficients = Coefficients(args.alpha, args.beta, args.gamma, allow_scale_down=args.allow_scale_down)
        family = emit_family(
            get_baseline(args.baseline, stem=args.stem),
            coefficients,
            phis=range(args.max_phi + 1),
            base_resolution=args.base_resolution,
            num_classes=args.num_classes,
        )
    calibrated = calibrate_family(family, target_ratio=target_ratio) if args.calibrate else None
    regime = family_regime(family)
    ways = unplanned_ways_out(family.baseline_object, family.base_resolution, num_classes=family.num_classes) \
        if regime.degenerate else []
    regime_doc = regime_document(regime, ways)
    # The published table is not alpha^phi (its sizes were hand-picked): no target to miss.
    missed = None if family.coefficients is None else family_miss_warning(
        family, target_ratio, calibrated="the calibrated family (printed first)" if calibrated else "--calibrate")
    warnings = [w for w in (regime_doc["warning"], missed) if w]
    if args.out:
        (calibrated or family).save(args.out)
    if args.json:
        from effscale.search.family.calibrate import calibrated_document
        from effscale.search.family.members import family_document

        document = family_document(family) if calibrated is None else calibrated_document(family, calibrated)
        _emit_json({**document, "regime": regime_doc, "warnings": warnings})
        return 0
    _print_family(family, calibrated, calibrated_first=bool(missed and calibrated))
    print(f"regime: B0 {regime.describe()}")
    for warning in warnings:
        print(f"warning: {warning}")
    if args.out:
        print(f"wrote {'the calibrated family to ' if calibrated else ''}{args.out}")
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from effscale.search import run_search

    # The plan goes to stderr, before anything trains: stdout stays free for --json.
    result = run_search(**_settings_given(args), progress=not args.json or None,
                        on_plan=lambda plan: _print_plan(plan, file=sys.stderr))
    family_path, calibrated_path = _save_families(result)
    if args.json:
        _emit_json({**result.to_dict(), "family_path": str(family_path),
                    "calibrated_path": str(calibrated_path) if calibrated_path else None})
        return 0
    _print_verdict(result)
    _print_family(result.family, result.calibrated, calibrated_first=result.recommended_family == "calibrated")
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


def _cmd_plan(args: argparse.Namespace) -> int:
    """`search`'s checks and measurements, plus memory, concurrency and time; trains and writes nothing."""
    from effscale.search.planning.options import SearchOptions
    from effscale.search.planning.plan import plan_search
    from effscale.search.planning.ways_out import plan_with_regime

    plan = plan_with_regime(plan_search(SearchOptions.build(**_settings_given(args))))
    if args.json:
        _emit_json(plan.as_dict())
        return 0
    _print_plan(plan)
    return 0


def _print_plan(plan: Any, *, file: Any = None) -> None:
    """The plan's table and summary (`effscale plan`; `effscale search` prints it on stderr first)."""
    gib, gpu = 1024**3, plan.device == "cuda"
    headers = ("(alpha, beta, gamma)", "d", "w", "res", "measured", "formula", "params", "mem/trial",
               *(("GPU mem",) if gpu else ()), "batch", "s/trial", "aliases")
    rows = [
        (f"({c.alpha:g}, {c.beta:g}, {c.gamma:g})", f"{c.depth:g}", f"{c.width:g}", c.resolution, f"{c.flops_ratio:.2f}x",
         f"{c.formula_ratio:.2f}x", f"{c.params:,}", f"{n.footprint.memory_request_bytes / gib:.2f} GiB",
         *((f"{(n.footprint.gpu_memory_bytes or 0) / gib:.2f} GiB",) if gpu else ()),
         n.footprint.batch_size, f"{n.trial_seconds:.0f}", len(n.aliases) - 1)
        for n in plan.networks for c in (n.candidate,)
    ]
    from effscale.search.planning.report import format_duration

    _print_table(f"plan for {plan.study} ({plan.device})", headers, rows, file=file)
    counts, nodes = plan.counts, ", ".join(f"{n.name} {plan.concurrency[n.name]}" for n in plan.nodes)
    print(f"FLOPs: {plan.flops_convention}; mem/trial includes the margin asked of Ray", file=file)
    if plan.regime is not None and not plan.regime.degenerate:
        print(f"regime: {plan.regime.describe()}", file=file)
    for warning in plan.warnings:
        print(f"warning: {warning}", file=file)
    print(
        f"{counts['unique']} distinct networks ({counts['feasible']} feasible of {counts['grid']}); "
        f"trials at once: {plan.slots} ({nodes}); {plan.trials[0]}-{plan.trials[1]} trials, "
        f"estimated {format_duration(plan.seconds[0])} to {format_duration(plan.seconds[1])}", file=file,
    )




def _cmd_compare(args: argparse.Namespace) -> int:
    import dataclasses

    from effscale.search.compare.run import CompareOptions, run_compare
    from effscale.trainer.recipe import ProxyRecipe

    values = vars(args)
    options = CompareOptions(**{f.name: values[f.name] for f in dataclasses.fields(CompareOptions) if f.name in values},
                             **({} if values.get("storage") else {"storage": os.environ.get(STORAGE_ENV)}))
    recipe = {f.name: values[f.name] for f in dataclasses.fields(ProxyRecipe) if f.name in values}
    document = run_compare(options, recipe, progress=not args.json or None)
    if args.json:
        _emit_json(document)
        return 0
    _print_comparison(document)
    return 0


def _print_comparison(document: dict[str, Any]) -> None:
    c = document["coefficients"]
    for entry in document["phis"]:
        _print_table(
            f"{document['baseline']} on {document['data']}: compound (alpha={c['alpha']:g}, beta={c['beta']:g}, "
            f"gamma={c['gamma']:g}) at phi={entry['phi']} against single-dimension scaling",
            ("arm", "d", "w", "r", "FLOPs", "vs compound", "params", "top-1 mean ± se (n)", "Δ vs compound (95%)"),
            [(r["arm"], f"{r['depth']:.3g}", f"{r['width']:.3g}", r["resolution"], _human(r["flops"]),
              f"{r['ratio']:.3f}x", f"{r['params']:,}", _mean_se(r), _delta(r))
             for r in entry["arms"]],
        )
        print(f"phi={entry['phi']}: {entry['verdict']}")
    print(f"FLOPs: {document['flops_convention']}; Δ: {document['interval']}; study {document['comparison']}")


def _delta(row: dict[str, Any]) -> str:
    if row["delta_mean"] is None:
        return "-"
    half = row["delta_half_width"]
    return f"{row['delta_mean']:+.4f} ± {'n/a' if half is None else f'{half:.4f}'}"


def _cmd_confirm(args: argparse.Namespace) -> int:
    from effscale.search.driver import run_confirmation

    where = {"ray_address": args.ray_address} if args.ray_address else {}
    result = run_confirmation(args.study, storage=args.storage, top=args.top, epochs=args.epochs,
                              progress=not args.json or None, **where)
    if args.json:
        _emit_json(result.to_dict())
        return 0
    _print_verdict(result)
    _print_family(result.family, result.calibrated, calibrated_first=result.recommended_family == "calibrated")
    print(f"study {result.study} in {result.storage}: family re-emitted from the confirmed winner")
    return 0


def _mean_se(stats: dict[str, Any] | None) -> str:
    """``0.9526 ± 0.0041 (n=3)``: never a bare top-1."""
    if not stats or stats.get("val_top1_mean") is None:
        return "n/a"
    se = stats.get("val_top1_stderr")
    return f"{stats['val_top1_mean']:.4f} ± {'n/a' if se is None else f'{se:.4f}'} (n={stats['repeats']})"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _triple(d: dict[str, Any]) -> str:
    return f"({d['alpha']:g}, {d['beta']:g}, {d['gamma']:g})"


def _print_verdict(result: Any) -> None:
    best, counts, fidelity = result.best, result.counts, result.fidelity
    print(
        f"winner: alpha={best['alpha']:g} beta={best['beta']:g} gamma={best['gamma']:g}  "
        f"val top-1 {_mean_se(best)}  measured {best['flops_ratio']:.2f}x / formula {best['formula_ratio']:.2f}x"
        + (f"  confirmed {_mean_se(best['confirmed'])}" if best.get("confirmed") else "")
    )
    tied = best["tied_with"]
    if tied:
        print(f"tied with {len(tied)} candidate{'s' if len(tied) > 1 else ''} (not separable by the {best['chosen_by']}; "
              f"lower measured FLOPs decides): " + "; ".join(f"{_triple(t)} {_mean_se(t)}" for t in tied))
    else:
        print(f"separated: no candidate is statistically tied with it ({best['separation_rule']})")
    if fidelity:
        low, high = (_num(v) for v in fidelity["tau_interval"])
        print(
            f"proxy fidelity: Kendall tau {_num(fidelity['kendall_tau'])} [95% {low}, {high}] over "
            f"{fidelity['candidates']} candidates retrained for {fidelity['confirm_epochs'] or fidelity['confirm_steps']} "
            f"{'epochs' if fidelity['confirm_epochs'] else 'steps'}, {fidelity['repeats']} seeds each; proxy winner "
            f"{_triple(fidelity['proxy_winner'])}, confirmed winner {_triple(fidelity['confirmed_winner'])}"
        )
    if result.regime and not result.regime.get("degenerate"):
        print(f"regime: {result.regime['summary']}")
    for warning in result.warnings:
        print(f"warning: {warning}")
    for failure in result.failures:
        print(failure)
    print(
        f"candidates: {counts['grid']} on the grid, {counts['feasible']} feasible, {counts['unique']} distinct networks "
        f"raced, {counts['aliases']} alias{'' if counts['aliases'] == 1 else 'es'}; trials: " + ", ".join(f"{k} {v}" for k, v in result.trials.items() if v)
    )


def _cmd_studies(args: argparse.Namespace) -> int:
    from effscale.search.records.queries import list_studies

    rows = list_studies(args.storage)
    if args.json:
        _emit_json(rows)
        return 0

    def _tau(tau: float | None, interval: Sequence[float | None] | None) -> str:
        if tau is None:
            return "-"
        low, high = (list(interval or ()) + [None, None])[:2]
        return f"{tau:.2f}" + ("" if low is None or high is None else f" [{low:.2f}, {high:.2f}]")

    _print_table(
        "studies",
        ("study", "kind", "baseline", "data", "status", "trials", "winner (alpha, beta, gamma)",
         "top-1 mean ± se (n)", "from", "Kendall tau [95%]"),
        [
            (
                r["study"], r["kind"], r["baseline"] or "-", r["data"] or "-", r["status"], r["n_trials"],
                "-" if r["best"] is None or None in (r["best"]["alpha"], r["best"]["beta"], r["best"]["gamma"])
                else _triple(r["best"]),
                "-" if r["best"] is None else _mean_se(r["best"]),
                r["best_source"] or "-", _tau(r["kendall_tau"], r["tau_interval"]),
            )
            for r in rows
        ],
    )
    return 0


# The table's columns: a subset of `trial_row`'s fields, under the same names (`--json` prints
# every field). The per-trial run attributes (seed, node, ...) join them when any row has one.
TRIAL_COLUMNS = ("number", "state", "alpha", "beta", "gamma", "depth", "width", "resolution", "flops",
                 "flops_ratio", "formula_ratio", "val_top1", "train_seconds")


def _cmd_trials(args: argparse.Namespace) -> int:
    from effscale.search.records.queries import RUN_ATTRS, list_trials

    rows = list_trials(args.storage, args.study, sort=args.sort, limit=args.limit)
    if args.json:
        _emit_json(rows)
        return 0

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    columns = TRIAL_COLUMNS + tuple(k for k in RUN_ATTRS if any(r[k] is not None for r in rows))
    _print_table(f"trials of {args.study}", columns, [[fmt(r[k]) for k in columns] for r in rows])
    return 0



def _cmd_serve(args: argparse.Namespace) -> int:
    from effscale.service.server import serve

    # serve() checks everything (port, host and token, state dir, data root, a taken port, the
    # storage) before it starts: a bad value is a one-line error now, not a failing server later.
    serve(
        args.storage, host=args.host, port=args.port, ray_address=args.ray_address,
        state_dir=args.state_dir, data_root=args.data_root, allow_user_baselines=args.allow_user_baselines,
    )
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import torch

    from effscale.models import check_resolution, default_resolution, get_baseline
    from effscale.trainer import ProxyRecipe, load_data, train_proxy

    # Everything that can be refused is checked before data is loaded or a network built.
    baseline = get_baseline(args.baseline, stem=args.stem)
    recipe = ProxyRecipe(**_settings_given(args, only=ProxyRecipe))  # refuses bad values before any loading
    if args.resolution is not None:
        check_resolution(args.resolution, baseline.min_resolution)
    device = _device(args.device)
    torch.manual_seed(recipe.seed)  # the initial weights follow --seed too
    data = load_data(args.data, seed=recipe.seed, device=device, max_resolution=args.resolution or baseline.base_resolution)
    # The baseline's own lr / weight decay / smoothing, and a batch sized to the data, where no flag
    # gave one (a flag wins).
    recipe = recipe.for_baseline(baseline, num_train=data.num_train)
    resolution = args.resolution or default_resolution(
        data.native_size, min_resolution=baseline.min_resolution, base_resolution=baseline.base_resolution)
    model = baseline.build(args.depth, args.width, data.num_classes)
    result = _train_with_progress(args, model, data, recipe, resolution, baseline, device, train_proxy)
    if args.json:
        _emit_json({"baseline": baseline.name, "depth": args.depth, "width": args.width, "data": data.summary(),
                    **result.to_dict()})
    else:
        _print_table(
            f"{baseline.name} on {args.data}",
            ("epoch", "train loss", "val top-1", "val loss", "lr", "seconds", "images/s"),
            [(h["epoch"], f"{h['train_loss']:.4f}", f"{h['val_top1']:.4f}", f"{h['val_loss']:.4f}", f"{h['lr']:.4g}",
              f"{h['seconds']:.1f}", f"{h['images_per_s']:.0f}") for h in result.history],
        )
        if result.failure is None:
            print(f"val top-1 {result.val_top1:.4f} after {result.epochs} epochs, {result.train_seconds:.1f} s, "
                  f"{result.images_per_s:.0f} images/s at {resolution}x{resolution} on {result.device}")
    if result.failure is not None:
        # Exit 1 and one stderr line: the input was valid (so not 2), but the run failed and a
        # script must not read its score as a result. --json has still printed the document.
        sys.stderr.write(f"effscale train: {result.failure}\n")
        return 1
    return 0


def _device(text: str | None) -> str:
    """``--device``: cpu, cuda or cuda:N (default: CUDA when present); refused in one line otherwise."""
    import torch

    if text is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(text)
    except RuntimeError:
        raise UsageError(f"--device {text!r} is not a device; pass cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {text!r}: effscale trains on cpu or cuda; pass one of them")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {text!r} but this machine has no CUDA device; pass --device cpu")
    return str(device)


def _train_with_progress(args: argparse.Namespace, model: Any, data: Any, recipe: Any, resolution: int,
                         baseline: Any, device: str, train_proxy: Callable[..., Any]) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=_stderr_console(), disable=args.json and not sys.stderr.isatty())
    with progress:
        task = progress.add_task(f"{baseline.name} d={args.depth:g} w={args.width:g} {resolution}px", total=None)
        return train_proxy(
            model, data, resolution=resolution, recipe=recipe, device=device, min_resolution=baseline.min_resolution,
            progress=lambda step, total: progress.update(task, completed=step, total=total),
            report=lambda epoch, m: progress.update(task, description=f"epoch {epoch}: val top-1 {m['val_top1']:.3f}"),
        )


def _stderr_console():  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(stderr=True)


# ---------------------------------------------------------------------------------------------
# parser


STORAGE_ENV = "EFFSCALE_STORAGE"


def _storage_option(parser: Any, help: str = "SQLAlchemy URL") -> None:
    # The environment variable keeps a PostgreSQL password off the command line (and out of `ps`).
    parser.add_argument(
        "--storage",
        type=lambda text: text,
        default=os.environ.get(STORAGE_ENV),
        help=f"{help} (default: ${STORAGE_ENV}, else sqlite:///effscale.db)",
    )


def _add_settings(parser: argparse.ArgumentParser, cls: type, *, groups: dict[str, Any] | None = None) -> None:
    """One argparse option per `setting` field of ``cls``; an absent flag leaves the dataclass default."""
    from effscale._settings import flag, settings_of

    groups = {} if groups is None else groups
    for f, meta in settings_of(cls):
        target = parser
        if meta.group is not None:
            if meta.group not in groups:
                groups[meta.group] = parser.add_argument_group(meta.group)
            target = groups[meta.group]
        help_text = meta.help.replace("%", "%%")
        if meta.positional:
            target.add_argument(f.name, help=help_text, **({} if meta.required else {"nargs": "?"}))
        elif meta.kind is bool:
            target.add_argument(flag(f.name), action="store_true", default=argparse.SUPPRESS, help=help_text)
        else:
            target.add_argument(
                flag(f.name), type=_PARSE_KIND[meta.kind], choices=meta.choices, default=argparse.SUPPRESS,
                metavar=meta.metavar or (None if meta.choices else _METAVAR[meta.kind]), required=meta.required,
                help=help_text,
            )


def _settings_given(args: argparse.Namespace, *, only: type | None = None) -> dict[str, Any]:
    """The settings the user gave (and ``--storage`` from the environment), by field name."""
    import dataclasses

    from effscale.search.planning.options import SearchOptions
    from effscale.trainer.recipe import ProxyRecipe

    names = {f.name for cls in ((only,) if only else (SearchOptions, ProxyRecipe)) for f in dataclasses.fields(cls)}
    values = {k: v for k, v in vars(args).items() if k in names}
    if "storage" in names and values.get("storage") is None and os.environ.get(STORAGE_ENV):
        values["storage"] = os.environ[STORAGE_ENV]
    return values


def _stem_option(p: argparse.ArgumentParser) -> None:
    from effscale.models.specs import STEMS

    p.add_argument("--stem", choices=STEMS, default="standard",
                   help="standard: the baseline's own stem (default); small: a stride-1 stem (total stride 8)")


def _cost_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("baseline", help="registered name or package.module:function")
    _stem_option(p)
    p.add_argument("--depth", type=_finite_float, default=1.0, help="depth multiplier d (default 1)")
    p.add_argument("--width", type=_finite_float, default=1.0, help="width multiplier w (default 1)")
    p.add_argument("--resolution", type=int, default=None, help="input size R (default: the baseline's)")
    p.add_argument("--num-classes", type=_positive_int, default=1000, help="classifier outputs (default 1000)")


def _family_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("baseline", nargs="?", help="registered name or package.module:function")
    _stem_option(p)
    p.add_argument("--alpha", type=_finite_float, help="depth coefficient")
    p.add_argument("--beta", type=_finite_float, help="width coefficient")
    p.add_argument("--gamma", type=_finite_float, help="resolution coefficient")
    p.add_argument("--base-resolution", type=_positive_int, default=None, help="B0's input size (default: baseline's)")
    p.add_argument("--max-phi", type=_non_negative_int, default=7, help="largest phi (default 7: B0..B7)")
    p.add_argument("--num-classes", type=_positive_int, default=1000, help="classifier outputs (default 1000)")
    p.add_argument("--allow-scale-down", action="store_true", help="accept coefficients below 1")
    p.add_argument("--published", action="store_true", help="the released EfficientNet B0..B7 table instead")
    p.add_argument("--out", help="also write the family as JSON to this file (with --calibrate: the calibrated one)")
    _storage_option(p, "with --study: the database of a finished search")
    p.add_argument("--study", default=None, help="print the family emitted by this search")
    p.add_argument("--calibrate", action="store_true",
                   help="also show the family with each member's input size chosen so its measured FLOPs come nearest "
                   "target^phi x B0's (depth and width stay alpha^phi, beta^phi)")
    p.add_argument("--target-ratio", type=_finite_float, default=None, metavar="X",
                   help="with --calibrate: FLOPs multiplier per step of phi (default 2, must be above 1)")


def _search_options(p: argparse.ArgumentParser) -> None:
    """`search` and `plan` take exactly the same options: `SearchOptions` and `ProxyRecipe`."""
    from effscale.search.planning.options import SearchOptions
    from effscale.trainer.recipe import ProxyRecipe

    groups: dict[str, Any] = {}
    _add_settings(p, SearchOptions, groups=groups)
    _add_settings(groups.setdefault("proxy training", p.add_argument_group("proxy training")), ProxyRecipe)


def _compare_options(p: argparse.ArgumentParser) -> None:
    from effscale.search.compare.run import CompareOptions
    from effscale.trainer.recipe import ProxyRecipe

    groups: dict[str, Any] = {}
    _add_settings(p, CompareOptions, groups=groups)
    _add_settings(groups.setdefault("proxy training", p.add_argument_group("proxy training")), ProxyRecipe)


def _confirm_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--study", required=True, help="the search to confirm")
    _storage_option(p)
    p.add_argument("--top", type=_positive_int, default=None, help="confirm the top K and K others (default: the search's)")
    p.add_argument("--epochs", type=_positive_int, default=None, help="epochs per confirmation run (default 3x the proxy's)")
    p.add_argument("--ray-address", default=None, help="join this Ray cluster (default: a local Ray)")


def _train_options(p: argparse.ArgumentParser) -> None:
    from effscale.search.planning.options import DATA_HELP
    from effscale.trainer.recipe import ProxyRecipe

    p.add_argument("baseline", help="registered name or package.module:function")
    _stem_option(p)
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--depth", type=_finite_float, default=1.0)
    p.add_argument("--width", type=_finite_float, default=1.0)
    p.add_argument("--resolution", type=int, default=None,
                   help="input size (default: the data's, within the network's total stride and base resolution)")
    p.add_argument("--device", default=None, help="cpu or cuda[:N] (default: cuda if available)")
    _add_settings(p.add_argument_group("proxy training"), ProxyRecipe)


def _serve_options(p: argparse.ArgumentParser) -> None:
    _storage_option(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_whole, default=8000, help="port, 1 to 65535 (default 8000)")
    p.add_argument("--ray-address", default=None, help="Ray cluster for launched searches (default: a local Ray)")
    p.add_argument("--state-dir", default=None, metavar="DIR",
                   help="private directory (0700) for launched searches' runs and logs "
                        "(default: $XDG_STATE_HOME/effscale, else ~/.local/state/effscale)")
    p.add_argument("--data-root", default=None, metavar="DIR",
                   help="folder:, cifar: and npz: data given through the API must lie inside DIR "
                        "(default: none, so only digits and synthetic)")
    p.add_argument("--allow-user-baselines", action="store_true",
                   help="accept package.module:function baselines through the API (importing one runs its code)")


def _trials_options(p: argparse.ArgumentParser) -> None:
    _storage_option(p)
    p.add_argument("--study", required=True)
    p.add_argument("--sort", choices=("number", "value", "flops"), default="value",
                   help="value: best top-1 first (default); number; flops: cheapest first")
    p.add_argument("--limit", type=_positive_int, default=None)


# The commands: name, handler, help, options (a parser table).
COMMANDS: tuple[tuple[str, Callable[[argparse.Namespace], int], str, Callable[[argparse.ArgumentParser], None]], ...] = (
    ("baselines", _cmd_baselines, "list the registered baselines with base resolution, params and FLOPs", lambda p: None),
    ("cost", _cmd_cost, "params and fvcore FLOPs of a baseline scaled by depth and width", _cost_options),
    ("family", _cmd_family, "emit the B0..B7 family for a baseline and (alpha, beta, gamma)", _family_options),
    ("search", _cmd_search, "grid-search (alpha, beta, gamma) under a FLOPs constraint and emit B0..B7", _search_options),
    ("plan", _cmd_plan, "what a search would need (memory and time per trial, trials at once, total time); "
     "takes search's options, trains nothing, writes nothing", _search_options),
    ("compare", _cmd_compare, "does compound scaling win here? the compound member against depth-, width- and "
     "resolution-only scaling at matched measured FLOPs, trained on paired seeds", _compare_options),
    ("confirm", _cmd_confirm, "retrain a finished search's top candidates longer: does the proxy rank like longer "
     "training? (Kendall tau; the family comes from the confirmed winner)", _confirm_options),
    ("train", _cmd_train, "proxy-train one scaled network (what a search trial does)", _train_options),
    ("serve", _cmd_serve, "REST API and dashboard; launching searches needs EFFSCALE_TOKEN", _serve_options),
    ("studies", _cmd_studies, "list the searches in a database", _storage_option),
    ("trials", _cmd_trials, "the trials of one search", _trials_options),
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="effscale", description="EfficientNet-style compound scaling (alpha, beta, gamma) for any "
                     "baseline, with measured FLOPs: search, plan, compare, confirm, emit families, serve")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    for name, handler, help_text, add_options in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        p.set_defaults(handler=handler)
        add_options(p)
    return parser


def _version() -> str:
    from effscale._version import __version__

    return f"effscale {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except UsageError as exc:
        sys.stderr.write(f"effscale {args.command}: error: {exc}\n")
        return 2
    except SearchFailed as exc:
        sys.stderr.write(f"effscale {args.command}: {'interrupted' if isinstance(exc, SearchInterrupted) else 'failed'}: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write(f"effscale {args.command}: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
