"""The ``effscale`` command line.

Every command but ``serve`` takes ``--json`` (one JSON document on stdout) or prints a readable
table. Bad input is one line on stderr naming the value and the fix, exit code 2, no traceback; a
database that cannot be reached is one line and exit 1 (an outage is not the user's input).

Every command's flags come from its settings dataclasses (`effscale._settings`), declared next to
what they configure: `CostOptions` (models), `TrainOptions` and `ProxyRecipe` (trainer),
`SearchOptions` (search and plan), `FamilyOptions`, `ConfirmOptions`, `CompareOptions`, the
queries' `StudiesOptions` and `TrialsOptions` (search), and `ServeOptions` (service). Their
defaults, checks and help live there only (`effscale.cli.flags` turns them into flags).

One module per group of commands: `measure` (baselines, cost, family), `search` (search, plan,
confirm), `compare`, `train`, `queries` (studies, trials) and `serve`; `output` and `families` print.
Nothing heavy is imported until a command runs, so ``effscale --help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from effscale.cli.compare import cmd_compare, compare_settings
from effscale.cli.export import cmd_export, export_settings
from effscale.cli.flags import Command, Parser, add_command
from effscale.cli.frontier import cmd_frontier, frontier_settings
from effscale.cli.measure import cmd_baselines, cmd_cost, cmd_family, cost_settings, family_settings
from effscale.cli.queries import TRIAL_COLUMNS, cmd_studies, cmd_trials, studies_settings, trials_settings
from effscale.cli.search import cmd_confirm, cmd_plan, cmd_search, confirm_settings, search_settings
from effscale.cli.serve import cmd_serve, serve_settings
from effscale.cli.train import cmd_train, train_settings
from effscale.errors import SearchFailed, SearchInterrupted, UsageError

__all__ = ["COMMANDS", "TRIAL_COLUMNS", "build_parser", "main"]

COMMANDS: tuple[Command, ...] = (
    Command("baselines", cmd_baselines, "list the registered baselines with base resolution, params and FLOPs"),
    Command("cost", cmd_cost, "params and fvcore FLOPs of a baseline scaled by depth and width", cost_settings),
    Command("family", cmd_family, "emit the B0..B7 family for a baseline and (alpha, beta, gamma)", family_settings),
    Command("search", cmd_search, "grid-search (alpha, beta, gamma) under a FLOPs constraint and emit B0..B7",
            search_settings),
    Command("plan", cmd_plan, "what a search would need (memory and time per trial, trials at once, total time); "
            "takes search's options, trains nothing, writes nothing", search_settings),
    Command("compare", cmd_compare, "does compound scaling win here? the compound member against depth-, width- and "
            "resolution-only scaling at matched measured FLOPs, trained on paired seeds", compare_settings),
    Command("frontier", cmd_frontier, "the accuracy-cost front over depth, width and resolution (Optuna "
            "multi-objective), every network on paired seeds; with --search, the family drawn against it",
            frontier_settings),
    Command("confirm", cmd_confirm, "retrain a finished search's top candidates longer: does the proxy rank like "
            "longer training? (Kendall tau; the family comes from the confirmed winner)", confirm_settings),
    Command("export", cmd_export, "write a family member as a standalone PyTorch file, ONNX, torch.export or its "
            "weights, checked against the PyTorch module", export_settings),
    Command("train", cmd_train, "proxy-train one scaled network (what a search trial does)", train_settings),
    Command("serve", cmd_serve, "REST API and dashboard; launching searches needs EFFSCALE_TOKEN", serve_settings,
            json=False),
    Command("studies", cmd_studies, "list the searches in a database", studies_settings),
    Command("trials", cmd_trials, "the trials of one search", trials_settings),
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="effscale", description="EfficientNet-style compound scaling (alpha, beta, gamma) for any "
                    "baseline, with measured FLOPs: search, plan, compare, confirm, emit families, serve")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    for command in COMMANDS:
        add_command(sub, command)
    return parser


def _version() -> str:
    from effscale._version import __version__

    return f"effscale {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
    except Exception as exc:
        message = _database_failure(exc)
        if message is None:
            raise
        # A database that cannot be reached, or fails, is not bad input: one line, exit 1.
        sys.stderr.write(f"effscale {args.command}: failed: {message}\n")
        return 1


def _database_failure(exc: Exception) -> str | None:
    """One line for a database failure (`StorageError`, or Optuna's own storage error on a broken
    database); None for anything else."""
    from effscale.storage.engine import StorageError  # here: SQLAlchemy would cost --help 0.4 s

    if isinstance(exc, StorageError):
        return " ".join(str(exc).split())
    optuna_errors = sys.modules.get("optuna.exceptions")
    if optuna_errors is None or not isinstance(exc, optuna_errors.StorageInternalError):
        return None
    cause = exc.__cause__
    reason = " ".join(str(getattr(cause, "orig", None) or cause or exc).split())
    return f"database error ({reason[:300]}); is this database effscale's and Optuna's, and intact?"
