"""Real training steps, run before a search: seconds per step on the CPU, memory and seconds on CUDA.

Every probe here runs the trainer's own step (`effscale.trainer.proxy.train_step`, on a model
placed by `place_model`, with the recipe's optimizer from `make_optimizer`), so what it measures is
what `train_proxy` spends.

Time on the CPU is probed, not modelled: `probe_step_time` times real training steps at a small
batch (after an untimed warm-up step) and scales them linearly to the trial's batch. Linear,
because on a CPU a step's work is per image, plus a per-step overhead (optimizer update, Python
dispatch) that matters only for small networks: those are fast, so the probe grows its batch
until a step takes `PROBE_STEP_SECONDS` and reads the overhead off two batches. (A GPU is the
opposite, latency-bound at small batches, which is why CUDA times the real batch.)
``benchmarks/bench_plan.py --time-accuracy`` compares the scaled times with each network's own.

On CUDA the footprint is measured: `probe_cuda_step` runs the step at the trial's batch and reads
``torch.cuda.max_memory_allocated``; the same step, timed, is the time estimate there.

Every figure is cached on disk (`effscale.models.diskcache`) by architecture signature,
resolution, batch and device, so a second plan of the same grid probes nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from effscale.errors import UsageError
from effscale.models.diskcache import DiskCache
from effscale.models.latency import cpu_model
from effscale.models.probe import threads as _threads
from effscale.models.registry import Baseline, SpecBaseline, get_baseline
from effscale.trainer import proxy
from effscale.trainer.recipe import ProxyRecipe

# The time probe's first batch: 1 where the last feature maps have more than one pixel, else 2 (in
# training mode BatchNorm needs more than one value per channel).
TIME_PROBE_BATCH = 2
# `probe_step_time` grows its batch 4x until a step takes this long (or the trial's batch is
# reached): long enough that timer noise and the overhead are small against the per-image part.
PROBE_STEP_SECONDS = 0.1

_STEP_TIMES = DiskCache("step-seconds", code=("models", "trainer"))
_CUDA_STEPS = DiskCache("cuda-step", code=("models", "trainer"))


@dataclass(frozen=True)
class StepTime:
    """A CPU training step's seconds as ``overhead + per_image * batch``."""

    overhead: float  # per step, whatever the batch: optimizer update, Python dispatch
    per_image: float

    def seconds(self, batch: int, *, scale: float = 1.0) -> float:
        """At ``batch``; ``scale`` multiplies the per-image part (another network's FLOPs ratio)."""
        return self.overhead + self.per_image * scale * batch

    def seconds_for(self, scale: float) -> Callable[[int], float]:
        """`seconds` of a network whose per-image work is ``scale`` times the probed one's."""
        return lambda batch: self.seconds(batch, scale=scale)


def probe_step_time(
    baseline: str | Baseline, *, depth: float, width: float, resolution: int, num_classes: int,
    recipe: ProxyRecipe, threads: int = 1,
) -> StepTime:
    """Time real CPU training steps of the network on ``threads`` threads: at batch 1 (or
    `TIME_PROBE_BATCH` where the last maps are 1x1), then 4x larger until a step takes
    `PROBE_STEP_SECONDS` or reaches ``recipe.batch_size``, each the faster of two steps after an
    untimed warm-up step (the first also faults in fresh memory, and is slower than a later one).
    The last two batches give the overhead and the per-image slope; a network slow enough at the
    first batch is timed there only, its overhead taken as zero. Cached on disk by architecture,
    resolution, threads, optimizer and CPU model."""
    base = get_baseline(baseline)
    key = ["cpu-step", base.signature(depth, width), resolution, num_classes, recipe.batch_size, threads,
           recipe.optimizer, cpu_model()]

    def measure() -> StepTime:
        model = base.build(depth, width, num_classes)
        timed: list[tuple[int, float]] = []
        with _threads(threads):
            batch = 1 if resolution > base.min_resolution else TIME_PROBE_BATCH
            while True:
                timed.append((batch, _time_step(model, recipe, batch, resolution, num_classes)))
                target = recipe.batch_size or batch  # an unresolved recipe: the first batch only
                if timed[-1][1] >= PROBE_STEP_SECONDS or batch >= target:
                    break
                batch = min(4 * batch, target)
        return _fit_step_time(timed)

    step, _ = _STEP_TIMES.cached(key, measure, load=lambda stored: StepTime(**stored), dump=asdict,
                                 enabled=isinstance(base, SpecBaseline))
    return step


def _time_step(model: nn.Module, recipe: ProxyRecipe, batch: int, resolution: int, num_classes: int) -> float:
    """The faster of two timed steps after a warm-up: on a shared machine noise only adds time."""
    step = _training_step(model, recipe, batch, resolution, num_classes, torch.device("cpu"))
    step()
    best = math.inf
    for _ in range(2):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best


def _fit_step_time(timed: list[tuple[int, float]]) -> StepTime:
    (b1, t1), (b2, t2) = timed[-2] if len(timed) > 1 else (0, 0.0), timed[-1]
    if len(timed) == 1 or t2 <= t1:
        return StepTime(0.0, t2 / b2)
    per_image = (t2 - t1) / (b2 - b1)
    return StepTime(max(0.0, t2 - per_image * b2), per_image)


def _training_step(
    model: nn.Module, recipe: ProxyRecipe, batch: int, resolution: int, num_classes: int, device: torch.device
) -> Callable[[], None]:
    """`train_proxy`'s own step (`train_step`) on a random batch, the model placed and the
    optimizer made as `train_proxy` does; synchronised on CUDA, so that it can be timed."""
    proxy.place_model(model, device).train()
    opt = proxy.make_optimizer(model, recipe)
    x = torch.randn(batch, 3, resolution, resolution, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, num_classes, (batch,), device=device)

    def step() -> None:
        proxy.train_step(model, opt, x, y, label_smoothing=recipe.effective_label_smoothing)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step


# ---------------------------------------------------------------------------------------------
# CUDA: one real step, measured


@dataclass(frozen=True)
class CudaStep:
    peak_bytes: int  # torch.cuda.max_memory_allocated over two steps (weights, grads, momentum, activations)
    step_seconds: float  # the second step, synchronised


def probe_cuda_step(
    baseline: str | Baseline, *, depth: float, width: float, resolution: int, num_classes: int, batch: int,
    recipe: ProxyRecipe, device: str = "cuda",
) -> CudaStep:
    """Peak CUDA memory and the time of one training step at the trial's real batch, as
    `train_proxy` runs it on CUDA. Cached on disk by architecture, resolution, batch and GPU model.
    The dataset's copy on the device is not included (the caller adds it: it is known exactly)."""
    if not torch.cuda.is_available():
        raise UsageError("probe_cuda_step needs CUDA, and torch sees no GPU here; plan on the GPU machine")
    dev = torch.device(device)
    base = get_baseline(baseline)
    key = ["cuda-step", base.signature(depth, width), resolution, num_classes, batch, torch.cuda.get_device_name(dev),
           recipe.optimizer]

    def measure() -> CudaStep:
        model = base.build(depth, width, num_classes)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
        step = _training_step(model, recipe, batch, resolution, num_classes, dev)
        step()  # the first step also allocates the optimizer's state
        start = time.perf_counter()
        step()
        result = CudaStep(torch.cuda.max_memory_allocated(dev) - before, time.perf_counter() - start)
        del model, step
        torch.cuda.empty_cache()
        return result

    load = lambda stored: CudaStep(int(stored["peak_bytes"]), float(stored["step_seconds"]))  # noqa: E731
    step, _ = _CUDA_STEPS.cached(key, measure, load=load, dump=asdict, enabled=isinstance(base, SpecBaseline))
    return step
