"""What one proxy-training trial needs -- peak memory and seconds per step -- before anything trains.

A search runs each trial in its own Ray worker. A trial that does not fit is killed by Ray's OOM
killer long after it started, so the plan measures first and the runner asks Ray for the memory.
This module is the plan's one door to those figures; each comes from a room of its own:

* host memory on the CPU is a model, not a probe per candidate (a probe is a fresh process at
  seconds to minutes each): an activation count (`effscale.trainer.activations`) turned into a
  trial's peak by `effscale.trainer.memory`, whose calibration says how far to trust it;
* seconds per step on the CPU, and memory and seconds on CUDA, are measured on real steps of the
  trainer's own step function (`effscale.trainer.steps`).

`TrialFootprint` holds one trial's figures and the Ray request they give (the estimate and a
margin that covers the model's calibrated error). The fit rule (`fit_batch`, the one place it
lives): a trial that does not fit a node even alone halves its batch, scaling its learning rate
linearly, down to `BATCH_FLOOR`; if it still does not fit, the search is refused before anything
trains, in one line that names the candidate, the memory it needs, the memory there is and the
flags to change.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from effscale.errors import UsageError
from effscale.trainer.activations import ActivationCount, count_activations, direct_activations
from effscale.trainer.memory import (
    BASE_PROCESS_BYTES, ESTIMATE_ERROR, FIRST_STEP_BYTES, RAY_WORKER_BYTES, GiB, MemoryParts, MiB, cpu_trial_memory,
    cuda_data_bytes, data_bytes, probe_cpu_peak, resized_bytes,
)
from effscale.trainer.recipe import ProxyRecipe
from effscale.trainer.steps import CudaStep, StepTime, probe_cuda_step, probe_step_time

__all__ = [  # the plan's names, wherever they live
    "BASE_PROCESS_BYTES", "BATCH_FLOOR", "ESTIMATE_ERROR", "FIRST_STEP_BYTES", "MEMORY_MARGIN",
    "MEMORY_MARGIN_BYTES", "RAY_WORKER_BYTES", "ActivationCount", "CudaStep", "GiB", "MemoryParts", "MiB",
    "StepTime", "TrialFootprint", "count_activations", "cpu_trial_memory", "cuda_data_bytes", "data_bytes",
    "direct_activations", "fit_batch", "probe_cpu_peak", "probe_cuda_step", "probe_step_time", "resized_bytes",
]

BATCH_FLOOR = 8  # `fit_batch` halves a batch that does not fit down to this, then refuses
# Ray `memory` request = the estimate x (1 + MEMORY_MARGIN) + MEMORY_MARGIN_BYTES. The fraction
# covers the model's calibrated error (`ESTIMATE_ERROR`), the constant the allocator's slack on small trials.
MEMORY_MARGIN = ESTIMATE_ERROR
MEMORY_MARGIN_BYTES = 256 * MiB


@dataclass(frozen=True)
class TrialFootprint:
    """One trial's needs, for the plan and for the runner's Ray resource request.

    ``memory_bytes`` is the estimated peak host memory (RSS) of the trial's worker process;
    ``memory_request_bytes`` adds the margin and is what to ask Ray for (``memory``).
    ``gpu_memory_bytes`` is the measured CUDA peak (None when not measured: no CUDA here).
    ``batch_size`` is what the trial should train at: the recipe's, or less by `fit_batch`;
    ``lr_scale`` = batch_size / the recipe's, the factor its learning rate takes.
    """

    memory_bytes: int
    gpu_memory_bytes: int | None
    step_seconds: float
    batch_size: int
    lr_scale: float = 1.0

    @property
    def memory_request_bytes(self) -> int:
        return int(math.ceil(self.memory_bytes * (1 + MEMORY_MARGIN) + MEMORY_MARGIN_BYTES))

    def recipe(self, recipe: ProxyRecipe) -> ProxyRecipe:
        """``recipe`` at this batch size, its learning rate scaled with it (Goyal et al. 2017).

        An unset lr (``None``) already scales with the batch size (`ProxyRecipe.peak_lr`)."""
        if self.batch_size == recipe.batch_size:
            return recipe
        lr = None if recipe.lr is None else recipe.lr * self.batch_size / recipe.batch_size
        return recipe.replace(batch_size=self.batch_size, lr=lr)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "memory_request_bytes": self.memory_request_bytes}


def fit_batch(
    need: Callable[[int], int], *, batch_size: int, available: int, candidate: str, where: str, flags: str,
    detail: Callable[[int], str] | None = None,
) -> int:
    """The largest batch, halving from ``batch_size`` down to `BATCH_FLOOR`, whose ``need(batch)``
    bytes fit in ``available``; else `UsageError` naming the candidate, its need and the flags.

    Halving (rather than, say, the exact largest batch that fits) keeps batch sizes and their
    linearly scaled learning rates on the powers-of-two ladder the recipe's defaults assume.
    """
    batch = batch_size
    while need(batch) > available and batch // 2 >= BATCH_FLOOR:
        batch //= 2
    if need(batch) <= available:
        return batch
    why = f" (most of it {detail(batch)})" if detail is not None else ""
    raise UsageError(
        f"candidate {candidate} needs {need(batch) / GiB:.1f} GiB per trial even at batch {batch} "
        f"(asked: {batch_size}){why} but {where} has {available / GiB:.1f} GiB; {flags}"
    )
