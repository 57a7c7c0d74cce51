"""One pure objective for every execution path: build the candidate's network and proxy-train it.

`evaluate_candidate` knows nothing of Ray or Optuna; the Ray trainable below only adds
``tune.report`` per epoch, so local and cluster runs score a candidate the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from effscale.models import get_baseline, scale_resolution
from effscale.trainer import ProxyData, ProxyResult, train_proxy


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of a search shares: the baseline, the budget and the training recipe."""

    baseline: str
    base_resolution: int
    budget: dict[str, int]
    batch_size: int
    lr: float | None
    optimizer: str
    seed: int
    device: str = "cpu"
    threads: int | None = None


def evaluate_candidate(
    alpha: float,
    beta: float,
    gamma: float,
    settings: TrialSettings,
    data: ProxyData,
    *,
    report: Callable[[int, dict[str, Any]], Any] | None = None,
) -> ProxyResult:
    """Train the φ=1 network of (α, β, γ): d=α, w=β at the scaled resolution; return its scores."""
    baseline = get_baseline(settings.baseline)
    resolution = scale_resolution(settings.base_resolution, gamma)
    model = baseline.build(alpha, beta, data.num_classes)
    return train_proxy(
        model,
        data,
        resolution=resolution,
        budget=settings.budget.get("epochs") or f"{settings.budget['steps']}s",
        batch_size=settings.batch_size,
        lr=settings.lr,
        optimizer=settings.optimizer,
        device=settings.device,
        seed=settings.seed,
        min_resolution=baseline.min_resolution,
        threads=settings.threads,
        report=report,
    )


def _maybe_crash(marker: str | None, alpha: float, beta: float, gamma: float) -> None:
    """Test-only switch: the first trial to get here dies like a killed worker, once."""
    if not marker:
        return
    path = Path(marker)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, f"{alpha},{beta},{gamma}\n".encode())
    os.close(fd)
    os._exit(17)


def ray_trainable(config: dict[str, Any], *, settings: TrialSettings, data: ProxyData, crash_marker: str | None = None) -> None:
    """Ray Tune function trainable: `evaluate_candidate` plus ``tune.report`` after each epoch.

    ``data`` arrives through ``tune.with_parameters``: put in the object store once, shared by
    every trial on a node, never reloaded from its source.
    """
    from ray import tune

    alpha, beta, gamma = float(config["alpha"]), float(config["beta"]), float(config["gamma"])

    def report(epoch: int, metrics: dict[str, Any]) -> None:
        if epoch == 1:
            _maybe_crash(crash_marker, alpha, beta, gamma)
        # "final" tells the driver this trial used its whole budget (a scheduler stop does not).
        budget = settings.budget
        final = epoch >= budget["epochs"] if "epochs" in budget else metrics.get("steps", 0) >= budget["steps"]
        tune.report({**_scalars(metrics), "epoch": epoch, "final": bool(final)})

    evaluate_candidate(alpha, beta, gamma, settings, data, report=report)


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}
