"""``effscale train``: the argparse arguments and the command body, for `effscale.cli` to wire.

Kept here so the CLI module stays a thin dispatcher: ``add_train_arguments(subparser)`` declares
the flags and ``run_train(args)`` runs one proxy training, draws a progress bar on stderr, and
prints either a summary or (``--json``) one JSON document on stdout. Errors are `UsageError`s
that the CLI turns into one line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

import torch

from effscale.trainer.data import load_data
from effscale.trainer.proxy import OPTIMIZERS, Budget, ProxyResult, check_resolution, train_proxy


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("baseline", help="registered baseline name, e.g. resnet18 or efficientnet_b0")
    parser.add_argument("--data", required=True, metavar="SPEC",
                        help="digits | synthetic[:classes=N,size=S,n=K] | folder:PATH | cifar:PATH | npz:PATH")
    parser.add_argument("--depth", type=float, default=1.0, help="depth multiplier d (default 1.0)")
    parser.add_argument("--width", type=float, default=1.0, help="width multiplier w (default 1.0)")
    parser.add_argument("--resolution", type=int, default=None, metavar="R",
                        help="input side in pixels (default: the data's native size, at least the "
                             "network's minimum)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=int, default=None, metavar="N", help="train N epochs (default 3)")
    budget.add_argument("--steps", type=int, default=None, metavar="N", help="train N optimiser steps instead")
    parser.add_argument("--batch-size", type=int, default=128, metavar="B", help="default 128")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default scales with B)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd", help="default sgd (Nesterov)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="default 0")
    parser.add_argument("--device", default=None, help="cpu or cuda[:N] (default: cuda if available)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document")
    return parser


def run_train(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> ProxyResult:
    """Build the scaled network, train it on the proxy data, print the result; return it."""
    from effscale.models import get_baseline  # late: the registry is not needed to import the trainer

    out = out or sys.stdout
    err = err or sys.stderr
    baseline = get_baseline(args.baseline)
    # Checked before loading data or building anything, so a bad flag fails fast.
    if args.epochs is not None:
        budget = Budget(epochs=args.epochs)
    elif args.steps is not None:
        budget = Budget(steps=args.steps)
    else:
        budget = Budget(epochs=3)
    if args.resolution is not None:
        check_resolution(args.resolution, baseline.min_resolution)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(args.seed)  # the initial weights follow --seed too
    data = load_data(args.data, seed=args.seed, device=device)
    resolution = args.resolution or max(data.native_size, baseline.min_resolution)
    model = baseline.build(args.depth, args.width, data.num_classes)

    kwargs: dict[str, Any] = dict(
        resolution=resolution, budget=budget, batch_size=args.batch_size, lr=args.lr,
        optimizer=args.optimizer, device=device, seed=args.seed, compile=args.compile,
        min_resolution=baseline.min_resolution,
    )
    result = _train_with_bar(model, data, kwargs, err, show=err.isatty() or not args.json)
    if args.json:
        doc = {"baseline": baseline.name, "depth": args.depth, "width": args.width,
               "data": data.summary(), **result.to_dict()}
        out.write(json.dumps(doc) + "\n")
    else:
        out.write(
            f"{baseline.name} d={args.depth:g} w={args.width:g} r={resolution}px on {args.data}: "
            f"val top-1 {result.val_top1:.4f}, val loss {result.val_loss:.4f}, "
            f"{result.epochs} epochs / {result.steps} steps in {result.train_seconds:.1f} s "
            f"({result.images_per_s:.0f} images/s on {result.device})"
            + (", stopped early" if result.stopped_early else "")
            + (", DIVERGED (lower --lr)" if result.diverged else "")
            + "\n"
        )
    return result


def _train_with_bar(model: torch.nn.Module, data: Any, kwargs: dict[str, Any], err: TextIO, *, show: bool) -> ProxyResult:
    if not show:
        return train_proxy(model, data, **kwargs)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(file=err), transient=False) as bar:
        task = bar.add_task("training", total=None)

        def progress(step: int, total: int) -> None:
            bar.update(task, completed=step, total=total)

        def report(epoch: int, metrics: dict[str, Any]) -> None:
            bar.update(task, description=f"epoch {epoch} val top-1 {metrics['val_top1']:.3f}")

        return train_proxy(model, data, progress=progress, report=report, **kwargs)
