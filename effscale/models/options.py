"""`CostOptions`: what `effscale cost` measures, declared once (see `effscale._settings`).

Also the two settings every command that builds a baseline shares: the baseline itself and its
stem. No torch here: the CLI reads this module to build ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from effscale._settings import check_settings, setting, text, whole
from effscale.models.scaling import ScaleFactors
from effscale.models.specs import STEMS

BASELINE_HELP = "registered name (see `effscale baselines`) or package.module:function"
STEM_HELP = "standard: the baseline's own stem (default); small: a stride-1 stem (total stride 8)"


def baseline_setting(*, required: bool = True, help: str = BASELINE_HELP, **options: Any) -> Any:
    """A command's BASELINE argument: a registered name or ``package.module:function``."""
    return setting(None, positional=True, required=required, check=text(what="a baseline name"), help=help, **options)


def stem_setting(**options: Any) -> Any:
    """``--stem``: the baseline's own stem, or the small-image one (part of the network built)."""
    return setting("standard", choices=STEMS, help=STEM_HELP, **options)


LATENCY_DEVICES = ("cpu", "cuda")  # `effscale.models.latency.DEVICES`, without importing torch
_LATENCY = "latency"


@dataclass(frozen=True)
class LatencyOptions:
    """Where and how a latency is measured (`effscale.models.latency`): every command that measures
    one takes these, so a figure always names the device, batch and threads it was measured at."""

    latency_device: str = setting("cpu", choices=LATENCY_DEVICES, group=_LATENCY,
                                  help="measure latency on this device: cpu (default) or cuda")
    latency_batch: int = setting(1, kind=int, check=whole(1, example=1), group=_LATENCY, metavar="N",
                                 help="images per timed forward pass (default 1)")
    latency_threads: int | None = setting(None, kind=int, check=whole(1, example=1), group=_LATENCY, metavar="N",
                                          help="CPU threads for the timed passes (default: torch's, all cores)")

    def __post_init__(self) -> None:
        check_settings(self)

    def measure(self, baseline: Any, resolution: int, **network: Any) -> Any:
        """`effscale.models.latency.measure_latency` with these settings."""
        from effscale.models.latency import measure_latency

        return measure_latency(baseline, resolution, device=self.latency_device, batch=self.latency_batch,
                               threads=self.latency_threads, **network)


@dataclass(frozen=True)
class CostOptions:
    """One scaled network to build and measure: params, fvcore FLOPs and activations, the regime,
    and on request its latency."""

    baseline: str = baseline_setting()
    stem: str = stem_setting()
    depth: float = setting(1.0, kind=float, help="depth multiplier d (default 1)")
    width: float = setting(1.0, kind=float, help="width multiplier w (default 1)")
    resolution: int | None = setting(None, kind=int, metavar="R", help="input size R (default: the baseline's own)")
    num_classes: int = setting(1000, kind=int, check=whole(0, above=True, example=1000),
                               help="classifier outputs (default 1000, as the paper counts)")
    latency: bool = setting(False, kind=bool, help="also time the forward pass (--latency-device, --latency-batch, "
                                                   "--latency-threads): median of 20 runs, with its spread")

    def __post_init__(self) -> None:
        check_settings(self)
        ScaleFactors(self.depth, self.width, 1.0)  # a bad depth or width in one line, before any build
