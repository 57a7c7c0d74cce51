"""One pure objective for every execution path: build a trial's network and proxy-train it.

`evaluate_candidate` knows nothing of Ray or Optuna; the Ray trainable below only adds
``tune.report`` per epoch and turns a failure into a one-line reason, so local and cluster runs
score a network the same way.

Determinism: a trial's initial weights, data order and augmentation all come from its own seed
(`trial_seed`), set here before the network is built, so a trial scores the same whichever
worker runs it and whatever ran there before (Ray reuses worker processes).
"""

from __future__ import annotations

import hashlib
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from effscale.errors import UsageError


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a search shares: the baseline, the recipe, the device."""

    baseline: str
    recipe: Any  # effscale.trainer.ProxyRecipe, resolved for the baseline
    device: str = "auto"  # auto: CUDA when the worker sees a GPU (Ray hides those a trial did not ask for)
    threads: int | None = None
    stem: str = "standard"  # the baseline's stem (`effscale.models.STEMS`)


def trial_seed(study_seed: int, repeat: int) -> int:
    """The seed of repeat ``repeat``: the same for every candidate of a study (paired seeds: the
    same data order and augmentation, so candidates are compared seed by seed), different across
    repeats and across study seeds."""
    digest = hashlib.sha256(f"effscale-seed:{study_seed}:{repeat}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def evaluate_candidate(
    config: dict[str, Any], setup: TrialSetup, data: Any, *, report: Callable[[int, dict[str, Any]], Any] | None = None
) -> Any:
    """Train the network ``config`` describes (depth, width, resolution, seed, budget, batch, lr)."""
    import torch

    from effscale.models import get_baseline
    from effscale.trainer import train_proxy

    baseline = get_baseline(setup.baseline, stem=setup.stem)
    budget = {"epochs": config["epochs"], "steps": None} if config.get("epochs") else {"epochs": None, "steps": config["steps"]}
    recipe = setup.recipe.replace(seed=int(config["seed"]), batch_size=int(config["batch_size"]), lr=float(config["lr"]), **budget)
    torch.manual_seed(recipe.seed)  # the initial weights follow the trial's seed, not the worker's past
    model = baseline.build(float(config["depth"]), float(config["width"]), data.num_classes)
    device = resolve_device(setup.device)
    return train_proxy(
        model, data, resolution=int(config["resolution"]), recipe=recipe, device=device,
        min_resolution=baseline.min_resolution, threads=setup.threads, report=report,
    )


def resolve_device(device: str) -> str:
    """``auto``: CUDA when this process sees a GPU (Ray hides those a trial did not ask for)."""
    import torch

    return device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")


def failure_reason(exc: BaseException, config: dict[str, Any]) -> str:
    """One line that says what went wrong in a trial's training and what to change."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    where = f"at batch {config.get('batch_size')} and {config.get('resolution')} px"
    if "out of memory" in text.lower() or "can't allocate memory" in text.lower():
        return f"out of memory {where}; lower --batch-size or --base-resolution, or give each trial more memory"
    if isinstance(exc, UsageError):
        return text
    return f"{type(exc).__name__}: {text[:300]} (while training; see the search log)"


def ray_trainable(config: dict[str, Any], *, setup: TrialSetup, data: Any) -> None:
    """Ray Tune function trainable: `evaluate_candidate` plus ``tune.report`` after each epoch.

    ``data`` arrives through ``tune.with_parameters``: put in the object store once, shared by
    every trial on a node, never reloaded from its source. A training that raises or diverges
    reports why and returns normally, so Ray does not retry it: retries are for dead workers.
    """
    from ray import tune

    node = _node_name()
    device = resolve_device(setup.device)
    started = time.time()  # the worker's own clock: when the trial really ran (the driver queues it earlier)
    last: dict[str, Any] = {"val_top1": 0.0}

    def report(epoch: int, metrics: dict[str, Any]) -> None:
        # "final" tells the driver this trial used its whole budget (a scheduler stop does not).
        final = epoch >= config["epochs"] if config.get("epochs") else metrics.get("steps", 0) >= config["steps"]
        last.update(_scalars(metrics))
        tune.report({**_scalars(metrics), "epoch": epoch, "final": bool(final), "node": node, "device": device,
                     "started": started, "reported": time.time()})

    try:
        result = evaluate_candidate(config, setup, data, report=report)
    except Exception as exc:  # noqa: BLE001 - any training error is this trial's outcome
        tune.report({"val_top1": last["val_top1"], "failed": True, "final": False, "node": node,
                     "fail_reason": failure_reason(exc, config), "fail_detail": traceback.format_exc()[-4000:]})
        return
    if result.diverged:
        tune.report({"val_top1": last["val_top1"], "failed": True, "final": False, "node": node,
                     "fail_reason": result.failure})


def _node_name() -> str:
    """``<node id prefix>@<ip>``: several nodes of a test cluster share 127.0.0.1."""
    import ray

    return f"{ray.get_runtime_context().get_node_id()[:12]}@{ray.util.get_node_ip_address()}"


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}
