"""Measured latency: the forward pass a deployment pays for, timed on a named device.

FLOPs are the paper's cost; MnasNet and EfficientNet-X constrain on latency measured on the target
device. `measure_latency` times the network actually built (eval mode, no autograd, channels_last,
a fixed random input of the stated batch) on ``cpu`` or ``cuda`` at a stated thread count: warm-up
runs first (oneDNN and cuDNN pick their kernels, caches fill), then at least `MIN_RUNS` timed runs,
reported as their median with the interquartile range beside it. A figure whose IQR is over
`MAX_SPREAD` of its median carries a warning: the machine was busy, and the figure is not a cost.

Results are cached on disk per (network, input size, classes, device description, batch, threads,
torch version), each with its spread and warning, and the device description (CPU model or GPU name, cores, torch) travels with
every figure, so a latency is never read without the machine it was measured on.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from effscale.errors import UsageError
from effscale.models.diskcache import DiskCache
from effscale.models.registry import Baseline, SpecBaseline, get_baseline
from effscale.models.scaling import check_resolution

LATENCY_CONVENTION = "median forward pass, eval mode, no autograd, channels_last, {batch}x3xRxR input"
DEVICES = ("cpu", "cuda")
# The timed runs: at least 20, so that the quartiles rest on five runs each.
MIN_RUNS = 20
WARMUP_RUNS = 5
# An IQR above 10% of the median: the runs disagree more than any two networks a constraint
# tolerance (10%) tells apart, so the figure cannot rank them.
MAX_SPREAD = 0.10

_DISK = DiskCache("latency")


@dataclass(frozen=True)
class Latency:
    """One measured latency: the median of ``runs`` timed forward passes, with its spread."""

    median_s: float
    q1_s: float
    q3_s: float
    runs: int
    device: str  # "cpu" or "cuda"
    device_description: str
    batch: int
    threads: int
    torch: str

    @property
    def spread(self) -> float:
        """The interquartile range relative to the median."""
        return (self.q3_s - self.q1_s) / self.median_s if self.median_s > 0 else math.inf

    @property
    def warning(self) -> str | None:
        if self.spread <= MAX_SPREAD:
            return None
        return (f"latency {self.median_s * 1e3:.3g} ms has an interquartile range of {self.spread:.0%} of its median "
                f"(over {MAX_SPREAD:.0%}): the machine was busy; measure again on an idle one")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "median_ms": self.median_s * 1e3, "iqr_ms": (self.q3_s - self.q1_s) * 1e3,
                "spread": self.spread, "warning": self.warning,
                "convention": LATENCY_CONVENTION.format(batch=self.batch)}


def check_device(device: str) -> str:
    """``cpu`` or ``cuda`` that this machine has; a one-line `UsageError` otherwise."""
    if device not in DEVICES:
        raise UsageError(f"--latency-device {device!r} is not one of {', '.join(DEVICES)}; pass one of them")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--latency-device cuda but this machine has no CUDA device; pass --latency-device cpu, "
                         "or measure on a GPU node")
    return device


def check_batch(batch: Any) -> int:
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise UsageError(f"--latency-batch {batch!r} must be a whole number >= 1; pass e.g. 1")
    return batch


def device_description(device: str) -> str:
    """What a latency was measured on: the CPU model and its cores, or the GPU's name."""
    if device == "cuda":
        index = torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        return f"{torch.cuda.get_device_name(index)} (sm_{major}{minor})"
    return f"{cpu_model()} ({os.cpu_count()} cores, {platform.machine()})"


def cpu_model() -> str:
    """This machine's CPU model, as /proc/cpuinfo names it (what a timing was measured on)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def measure_latency(
    baseline: str | Baseline, resolution: int, *, depth: float = 1.0, width: float = 1.0, num_classes: int = 1000,
    device: str = "cpu", batch: int = 1, threads: int | None = None, runs: int = MIN_RUNS, use_cache: bool = True,
) -> Latency:
    """The latency of ``baseline`` scaled by (depth, width) at ``resolution`` on ``device``.

    ``threads`` defaults to torch's current intra-op thread count. Cached on disk (`DiskCache`)
    for spec baselines; ``use_cache=False`` always measures."""
    base = get_baseline(baseline)
    resolution = check_resolution(resolution, base.min_resolution)
    device, batch = check_device(device), check_batch(batch)
    threads = torch.get_num_threads() if threads is None else int(threads)
    if runs < MIN_RUNS:
        raise UsageError(f"runs={runs} is below {MIN_RUNS}: a median needs them; pass {MIN_RUNS} or more")
    described = device_description(device)
    key = ["latency", base.signature(depth, width), resolution, num_classes, described, batch, threads,
           torch.__version__, runs]
    disk = use_cache and isinstance(base, SpecBaseline)
    stored = _DISK.get(key) if disk else None
    if isinstance(stored, dict):
        try:
            return Latency(**stored)
        except TypeError:
            pass
    model = base.build(depth, width, num_classes)
    times = _time_forward(model, resolution, device=device, batch=batch, threads=threads, runs=runs)
    q1, median, q3 = statistics.quantiles(times, n=4, method="inclusive")
    result = Latency(median, q1, q3, runs, device, described, batch, threads, torch.__version__)
    if disk:  # a busy machine's figure is kept with its warning: the spread travels with it
        _DISK.put(key, asdict(result))
    return result


def _time_forward(model: torch.nn.Module, resolution: int, *, device: str, batch: int, threads: int,
                  runs: int) -> list[float]:
    """Seconds per forward pass, ``runs`` of them after `WARMUP_RUNS` untimed ones."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        target = torch.device(device)
        # speed: channels_last is oneDNN's and cuDNN's fast layout for convolutions, as in training.
        model = model.to(target, memory_format=torch.channels_last).eval()
        x = torch.randn(batch, 3, resolution, resolution, device=target).contiguous(memory_format=torch.channels_last)
        times = []
        with torch.inference_mode():
            for i in range(WARMUP_RUNS + runs):
                if device == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                model(x)
                if device == "cuda":
                    torch.cuda.synchronize()  # the kernels are asynchronous: wait for them
                if i >= WARMUP_RUNS:
                    times.append(time.perf_counter() - start)
        return times
    finally:
        torch.set_num_threads(before)
