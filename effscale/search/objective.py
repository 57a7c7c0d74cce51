"""One pure objective for every execution path: build the candidate's network and proxy-train it.

`evaluate_candidate` knows nothing of Ray or Optuna; the Ray trainable below only adds
``tune.report`` per epoch, so local and cluster runs score a candidate the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from effscale.models import get_baseline, scale_resolution
from effscale.trainer import ProxyData, ProxyRecipe, ProxyResult, train_proxy


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a search shares: the baseline, its base resolution, the recipe, the device."""

    baseline: str
    base_resolution: int
    recipe: ProxyRecipe
    device: str = "cpu"
    threads: int | None = None


def evaluate_candidate(
    candidate: tuple[float, float, float],
    setup: TrialSetup,
    data: ProxyData,
    *,
    report: Callable[[int, dict[str, Any]], Any] | None = None,
) -> ProxyResult:
    """Train the φ=1 network of ``candidate`` (α, β, γ): d=α, w=β at the scaled resolution."""
    alpha, beta, gamma = candidate
    baseline = get_baseline(setup.baseline)
    model = baseline.build(alpha, beta, data.num_classes)
    return train_proxy(
        model,
        data,
        resolution=scale_resolution(setup.base_resolution, gamma),
        recipe=setup.recipe,
        device=setup.device,
        min_resolution=baseline.min_resolution,
        threads=setup.threads,
        report=report,
    )


def ray_trainable(config: dict[str, Any], *, setup: TrialSetup, data: ProxyData) -> None:
    """Ray Tune function trainable: `evaluate_candidate` plus ``tune.report`` after each epoch.

    ``data`` arrives through ``tune.with_parameters``: put in the object store once, shared by
    every trial on a node, never reloaded from its source.
    """
    from ray import tune

    candidate = (float(config["alpha"]), float(config["beta"]), float(config["gamma"]))
    budget = setup.recipe.budget

    def report(epoch: int, metrics: dict[str, Any]) -> None:
        # "final" tells the driver this trial used its whole budget (a scheduler stop does not).
        final = epoch >= budget.epochs if budget.epochs is not None else metrics.get("steps", 0) >= budget.steps
        tune.report({**_scalars(metrics), "epoch": epoch, "final": bool(final)})

    evaluate_candidate(candidate, setup, data, report=report)


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}
