"""The proxy's regime: at this input size, does resolution still behave like resolution?

Compound scaling assumes FLOPs grow smoothly, as r², with the input side r. A network whose
strides multiply to S maps an r-pixel input to a last feature map of about ceil(r / S) pixels a
side. Once that map is only a few pixels wide, one more input pixel can add a whole row and column
to it: ResNet-18 (S = 32) at 32 px has a 1x1 last map, and 33 px makes it 2x2 and doubles the
network's FLOPs. A resolution coefficient found there measures where the stride rounding falls,
not what resolution is worth.

`measure_regime` reads three facts off the network actually built: its total stride, the side of
its last feature map at the input size (a shape-only forward on the ``meta`` device), and its step
cost, the measured FLOPs at r+1 px over those at r (`measure_cost`, whose convention they share).
`Regime.degenerate` applies the two thresholds below; the search layer turns that into a warning
that names the ways out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from effscale.models import probe
from effscale.models.cost import measure_cost
from effscale.models.registry import Baseline, get_baseline
from effscale.models.scaling import check_resolution

# Below a 4x4 last feature map, one input pixel moves a quarter or more of the last stage's rows:
# its cost jumps by (k+1)²/k² >= 1.56x at the next stride boundary, and the map's border (padding)
# is most of what the last stage sees. At 4x4 and above the steps shrink toward the smooth r² law.
MIN_LAST_MAP = 4
# A smooth network's FLOPs grow by ((r+1)/r)² per pixel: 1.06x at 32 px, 1.02x at 100 px. A step
# above 1.25x is a stride boundary that moves the whole last stages at once; ResNet-18 measures
# 2.17x at 32 px, 1.51x at 64 and 1.24x at 128, where its last map first reaches 4x4.
MAX_STEP_RATIO = 1.25
# The total stride is measured at this input side, large enough that a ceil never hides a stride.
_STRIDE_PROBE = 1024



@dataclass(frozen=True)
class Regime:
    """What the proxy's input size means to one network: its stride arithmetic and step cost."""

    baseline: str
    stem: str
    label: str  # `Baseline.label`: "resnet18", or "resnet18 (small stem)"
    resolution: int
    total_stride: int
    last_map: int  # side, in pixels, of the smallest feature map a spatial layer produces
    flops: int  # measured at ``resolution``
    step_flops: int  # measured at ``resolution + 1``

    @property
    def step_ratio(self) -> float:
        """Measured FLOPs at r+1 over r: what one more input pixel costs."""
        return self.step_flops / self.flops

    @property
    def formula_step(self) -> float:
        """What the r² law says one more pixel costs: ((r+1)/r)²."""
        return ((self.resolution + 1) / self.resolution) ** 2

    @property
    def small_map(self) -> bool:
        return self.last_map < MIN_LAST_MAP

    @property
    def steep_step(self) -> bool:
        return self.step_ratio > MAX_STEP_RATIO

    @property
    def degenerate(self) -> bool:
        """Resolution measures stride rounding here: a last map under 4x4 or a step over 1.25x."""
        return self.small_map or self.steep_step

    def describe(self) -> str:
        """One clause with the figures: ``resnet18 at 32 px: total stride 32, last feature map 1x1, ...``."""
        return (
            f"{self.label} at {self.resolution} px: total stride {self.total_stride}, last feature map "
            f"{self.last_map}x{self.last_map}, one more pixel costs {self.step_ratio:.2f}x FLOPs "
            f"(the r^2 law says {self.formula_step:.2f}x)"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline, "stem": self.stem, "resolution": self.resolution,
            "total_stride": self.total_stride, "last_map": self.last_map, "flops": self.flops,
            "step_flops": self.step_flops, "step_ratio": self.step_ratio, "formula_step": self.formula_step,
            "degenerate": self.degenerate, "min_last_map": MIN_LAST_MAP, "max_step_ratio": MAX_STEP_RATIO,
        }


def measure_regime(
    baseline: str | Baseline, resolution: int, *, depth: float = 1.0, width: float = 1.0, num_classes: int = 1000
) -> Regime:
    """The regime of ``baseline`` scaled by (depth, width) at ``resolution``, measured."""
    base = get_baseline(baseline)
    resolution = check_resolution(resolution, base.min_resolution)
    here = measure_cost(base, resolution, depth=depth, width=width, num_classes=num_classes)
    step = measure_cost(base, resolution + 1, depth=depth, width=width, num_classes=num_classes)
    return Regime(
        baseline=base.name, stem=base.stem, label=base.label, resolution=resolution,
        total_stride=total_stride(base, depth=depth, width=width),
        last_map=last_feature_map(base, resolution, depth=depth, width=width),
        flops=here.flops, step_flops=step.flops,
    )


def total_stride(baseline: str | Baseline, *, depth: float = 1.0, width: float = 1.0) -> int:
    """The factor by which the network shrinks its input: measured at 1024 px (shapes only)."""
    base = get_baseline(baseline)
    side = last_feature_map(base, _STRIDE_PROBE, depth=depth, width=width)
    return max(1, round(_STRIDE_PROBE / side)) if side else base.min_resolution


def last_feature_map(baseline: str | Baseline, resolution: int, *, depth: float = 1.0, width: float = 1.0) -> int:
    """The side of the smallest feature map a spatial layer (a convolution with a kernel or stride
    above 1, or a windowed pooling) produces at ``resolution``: the map the last stage works on.

    Read from a forward on the ``meta`` device (shapes, no arithmetic); a user network that cannot
    run there is run on the CPU at batch 1. Cached by architecture and resolution.
    """
    base = get_baseline(baseline)

    def read() -> int:
        try:
            with torch.device("meta"):
                model = base.build(depth, width, 10)
            return _smallest_spatial_output(model, resolution, torch.device("meta"))
        except Exception:  # noqa: BLE001 - a user network that needs real tensors: run it for real
            return _smallest_spatial_output(base.build(depth, width, 10), resolution, torch.device("cpu"))

    return probe.memo(("last-map", base.signature(depth, width), resolution), read)


def _is_spatial(module: nn.Module) -> bool:
    if isinstance(module, nn.Conv2d):
        return max(module.kernel_size) > 1 or max(module.stride) > 1
    return isinstance(module, (nn.MaxPool2d, nn.AvgPool2d))


def _smallest_spatial_output(model: nn.Module, resolution: int, device: torch.device) -> int:
    sides: list[int] = []

    def record(module: nn.Module, inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and output.ndim == 4:
            sides.append(int(min(output.shape[-2:])))

    handles = [m.register_forward_hook(record) for m in model.modules() if _is_spatial(m)]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, resolution, resolution, device=device))
    finally:
        for h in handles:
            h.remove()
    return min(sides) if sides else resolution


def healthy_resolution(
    baseline: str | Baseline, start: int, *, depth: float = 1.0, width: float = 1.0, num_classes: int = 1000,
    limit: int = 2048,
) -> Regime | None:
    """The regime at the smallest multiple of the total stride, at or above ``start``, that is not
    degenerate (None when none is up to ``limit``). Multiples of the stride are where the steps
    are steepest, so a multiple that passes is a size whose neighbours pass too."""
    base = get_baseline(baseline)
    stride = total_stride(base, depth=depth, width=width)
    resolution = max(stride * MIN_LAST_MAP, -(-start // stride) * stride)
    while resolution <= limit:
        regime = measure_regime(base, resolution, depth=depth, width=width, num_classes=num_classes)
        if not regime.degenerate:
            return regime
        resolution += stride
    return None
