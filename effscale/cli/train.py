"""`train`: one proxy training of one scaled network (what a search trial does), with a progress bar."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from effscale.cli.flags import given, options
from effscale.cli.output import emit_json, print_table, stderr_console


def train_settings() -> tuple[type, ...]:
    from effscale.trainer.options import TrainOptions
    from effscale.trainer.recipe import ProxyRecipe

    return (TrainOptions, ProxyRecipe)


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from effscale.models import check_resolution, default_resolution, get_baseline
    from effscale.trainer import ProxyRecipe, load_data, train_proxy
    from effscale.trainer.options import TrainOptions

    # Everything that can be refused is checked before data is loaded or a network built.
    o = options(args, TrainOptions)
    baseline = get_baseline(o.baseline, stem=o.stem)
    recipe = ProxyRecipe(**given(args, ProxyRecipe))
    if o.resolution is not None:
        check_resolution(o.resolution, baseline.min_resolution)
    device = o.resolved_device
    torch.manual_seed(recipe.seed)  # the initial weights follow --seed too
    data = load_data(o.data, seed=recipe.seed, device=device, max_resolution=o.resolution or baseline.base_resolution)
    # The baseline's own lr / weight decay / smoothing, and a batch sized to the data, where no flag
    # gave one (a flag wins).
    recipe = recipe.for_baseline(baseline, num_train=data.num_train)
    resolution = o.resolution or default_resolution(
        data.native_size, min_resolution=baseline.min_resolution, base_resolution=baseline.base_resolution)
    model = baseline.build(o.depth, o.width, data.num_classes)
    result = _train_with_progress(args.json, o, model, data, recipe, resolution, baseline, device, train_proxy)
    if args.json:
        emit_json({"baseline": baseline.name, "depth": o.depth, "width": o.width, "data": data.summary(),
                   **result.to_dict()})
    else:
        print_table(
            f"{baseline.name} on {o.data}",
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


def _train_with_progress(quiet: bool, o: Any, model: Any, data: Any, recipe: Any, resolution: int,
                         baseline: Any, device: str, train_proxy: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=stderr_console(), disable=quiet and not sys.stderr.isatty())
    with progress:
        task = progress.add_task(f"{baseline.name} d={o.depth:g} w={o.width:g} {resolution}px", total=None)
        return train_proxy(
            model, data, resolution=resolution, recipe=recipe, device=device, min_resolution=baseline.min_resolution,
            progress=lambda step, total: progress.update(task, completed=step, total=total),
            report=lambda epoch, m: progress.update(task, description=f"epoch {epoch}: val top-1 {m['val_top1']:.3f}"),
        )
