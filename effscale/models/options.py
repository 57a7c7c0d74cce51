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


@dataclass(frozen=True)
class CostOptions:
    """One scaled network to build and measure: params, fvcore FLOPs and the regime."""

    baseline: str = baseline_setting()
    stem: str = stem_setting()
    depth: float = setting(1.0, kind=float, help="depth multiplier d (default 1)")
    width: float = setting(1.0, kind=float, help="width multiplier w (default 1)")
    resolution: int | None = setting(None, kind=int, metavar="R", help="input size R (default: the baseline's own)")
    num_classes: int = setting(1000, kind=int, check=whole(0, above=True, example=1000),
                               help="classifier outputs (default 1000, as the paper counts)")

    def __post_init__(self) -> None:
        check_settings(self)
        ScaleFactors(self.depth, self.width, 1.0)  # a bad depth or width in one line, before any build
