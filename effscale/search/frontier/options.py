"""`FrontierOptions`: every setting of an accuracy-cost frontier, declared once (`effscale
frontier`'s flags come from it). Where and how trials run are the search's own settings, shared
field by field as a comparison shares them.

No torch here: the CLI reads this module to build ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from effscale._settings import check_settings, number, setting, text, whole
from effscale.models.measures import COSTS
from effscale.models.options import BASELINE_HELP
from effscale.models.specs import STEMS
from effscale.search.compare.options import _as_search
from effscale.trainer.options import DATA_HELP, check_data

FRONTIER_SAMPLERS = ("tpe", "nsga2")
_WHAT, _RUN = "what to search", "execution and storage"


def _bounds_check(value: Any, name: str) -> str:
    from effscale.search.compare.arms import ArmBounds  # here: it loads torch, which --help must not

    ArmBounds.parse(str(value))
    return str(value)


@dataclass(frozen=True)
class FrontierOptions:
    """A multi-objective search over depth, width and resolution factors: maximise mean top-1,
    minimise the measured cost ratio to the baseline, up to ``max_ratio``."""

    baseline: str = setting(None, positional=True, required=True, check=text(what="a baseline name"),
                            help=BASELINE_HELP)
    data: str = setting(None, required=True, check=check_data, help=DATA_HELP, metavar="SPEC")
    cost: str = setting("flops", choices=COSTS, group=_WHAT,
                        help="the cost minimised, measured on each built network: flops (default), activations or "
                             "latency (timed on the CPU)")
    max_ratio: float = setting(4.0, kind=float, check=number(1.0, example=4), group=_WHAT,
                               help="largest cost ratio to the baseline a point may have (default 4); a drawn point "
                                    "above it is infeasible (Optuna's constraint) and never trained")
    bounds: str = setting("2", check=_bounds_check, group=_WHAT,
                          help="the factors' upper bounds (each from 1): 2 (default, all three) or "
                               "depth=2,width=2,resolution=1.5")
    budget: int = setting(16, kind=int, check=whole(1, example=16), group=_WHAT, metavar="N",
                          help="distinct networks to train, the baseline and the family's members included "
                               "(default 16)")
    repeats: int = setting(2, kind=int, check=whole(2, example=2), group=_WHAT,
                           help="paired seeds every network trains on (default 2, at least 2)")
    sampler: str = setting("tpe", choices=FRONTIER_SAMPLERS, group=_WHAT,
                           help="Optuna's multi-objective sampler: tpe (default; models from few trials) or nsga2")
    search: str | None = setting(None, check=text(max_length=512, what="a study name"), group=_WHAT,
                                 metavar="STUDY",
                                 help="a finished search in the same storage: its compound family's members up to "
                                      "--max-ratio are trained on the same seeds and drawn against the front")
    base_resolution: int | None = setting(None, kind=int, check=whole(1, example=32), group=_WHAT, metavar="R",
                                          help="the baseline's input size (default: the --search's, else the data's)")
    stem: str = setting("standard", choices=STEMS, group=_WHAT, help="the baseline's stem (default standard)")
    name: str | None = setting(None, check=text(max_length=512, what="a study name"), group=_RUN, metavar="NAME",
                               help="the frontier's own study name (default: derived; re-run to resume)")
    storage: str | None = _as_search("storage")
    ray_address: str | None = _as_search("ray_address")
    connect_timeout: float = _as_search("connect_timeout")
    cpus_per_trial: float = _as_search("cpus_per_trial")
    gpus_per_trial: Any = _as_search("gpus_per_trial")
    max_concurrent: int | None = _as_search("max_concurrent")
    max_retries: int = _as_search("max_retries")
    db_timeout: float = _as_search("db_timeout")

    def __post_init__(self) -> None:
        check_settings(self)

    @property
    def arm_bounds(self) -> Any:
        """The bounds as `effscale.search.compare.arms.ArmBounds`."""
        from effscale.search.compare.arms import ArmBounds

        return ArmBounds.parse(self.bounds)
