"""`CompareOptions`: every setting of a comparison, declared once (the CLI's `effscale compare`
flags come from it). Where and how trials run (Ray, the database, CPUs, GPUs, retries, timeouts)
are the search's own settings (`SearchOptions`), shared field by field: the same flags, checks
and help in both commands, because a comparison runs on the search's engine
(`effscale.search.execution.session`).

No torch here: the CLI reads this module to build ``--help``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from effscale._settings import check_settings, number, path, setting, settings_of, text, whole
from effscale.errors import UsageError
from effscale.models.measures import COSTS
from effscale.models.specs import STEMS
from effscale.search.planning.options import SearchOptions

_WHAT, _RUN = "what to compare", "execution and storage"


def _phis_check(value: Any, name: str) -> str:
    parse_phis(value)
    return str(value)


def parse_phis(text_value: Any) -> tuple[int, ...]:
    """``"1,2,3"`` into sorted unique integers, each 1..7 (the family's B1..B7)."""
    items = [p.strip() for p in str(text_value).split(",") if p.strip()]
    try:
        phis = sorted({int(p) for p in items})
    except ValueError:
        raise UsageError(f"--phi {text_value!r} is not a list of whole numbers; pass e.g. 1,2,3") from None
    if not phis or any(not 1 <= p <= 7 for p in phis):
        raise UsageError(f"--phi {text_value!r} must list values from 1 to 7 (B1..B7); pass e.g. 1,2")
    return tuple(phis)


# The arms a comparison can train, in the order every table lists them: compound; the three
# single-dimension arms and Dollár et al.'s fast scaling, each matched to compound in the chosen
# cost; and, for efficientnet_b0 only, the paper's triple and the published row.
ARM_NAMES = ("compound", "depth", "width", "resolution", "fast", "paper", "published")
MATCHED_ARMS = ("depth", "width", "resolution", "fast")
EFFICIENTNET_ARMS = ("paper", "published")
# What a comparison trained before --arms existed (with EFFICIENTNET_ARMS for efficientnet_b0):
# still the default, so that the same command resumes a comparison stored then.
DEFAULT_ARMS = ("compound", "depth", "width", "resolution")


def parse_arms(text_value: Any) -> tuple[str, ...]:
    """``"compound,depth,fast"`` into known arm names in `ARM_NAMES` order, compound always among
    them (every difference is taken against it)."""
    items = {a.strip() for a in str(text_value).split(",") if a.strip()}
    unknown = sorted(items - set(ARM_NAMES))
    if unknown or not items:
        named = f"names an unknown arm {', '.join(map(repr, unknown))}" if unknown else "is empty"
        raise UsageError(f"--arms {text_value!r} {named}; pass some of {','.join(ARM_NAMES)}")
    return tuple(a for a in ARM_NAMES if a in items | {"compound"})


def arms_for(baseline: str, arms: str | None) -> tuple[str, ...]:
    """The arms a comparison of ``baseline`` trains: ``arms`` (`parse_arms`), or the default set."""
    b0 = baseline == "efficientnet_b0"
    if arms is None:
        return DEFAULT_ARMS + (EFFICIENTNET_ARMS if b0 else ())
    chosen = parse_arms(arms)
    if not b0 and set(chosen) & set(EFFICIENTNET_ARMS):
        raise UsageError(f"--arms {arms!r}: paper and published are efficientnet_b0's arms, not {baseline}'s; "
                         "drop them")
    return chosen


def _arms_check(value: Any, name: str) -> str:
    parse_arms(value)
    return str(value)


def _as_search(name: str) -> Any:
    """The search's execution setting ``name``, as `SearchOptions` declares it (default, check,
    flag, help), in this command's execution group."""
    found, meta = next((f, m) for f, m in settings_of(SearchOptions) if f.name == name)
    declared = {f.name: getattr(meta, f.name) for f in dataclasses.fields(meta)}
    return setting(found.default, **{**declared, "group": _RUN})


@dataclass(frozen=True)
class CompareOptions:
    """A comparison: of a finished search's winner (``study``), or of given coefficients; ``name``
    is the comparison's own study."""

    baseline: str | None = setting(None, positional=True, check=text(what="a baseline name"), group=_WHAT,
                                   help="with --data and --alpha/--beta/--gamma: compare without a search")
    study: str | None = setting(None, check=text(max_length=512, what="a study name"), group=_WHAT, metavar="NAME",
                                help="a finished search: its baseline, data, recipe and winner")
    data: str | None = setting(None, check=text(what="a data source"), group=_WHAT, metavar="SPEC",
                               help="without --study: the data to train on")
    alpha: float | None = setting(None, kind=float, check=number(1.0, example=1.2), group=_WHAT, help="without --study")
    beta: float | None = setting(None, kind=float, check=number(1.0, example=1.1), group=_WHAT, help="without --study")
    gamma: float | None = setting(None, kind=float, check=number(1.0, example=1.15), group=_WHAT, help="without --study")
    base_resolution: int | None = setting(None, kind=int, check=whole(1, example=32), group=_WHAT, metavar="R",
                                          help="B0's input size (default: the search's; without --study, the data's, within "
                                               "the network's total stride and the baseline's own size)")
    stem: str | None = setting(None, choices=STEMS, group=_WHAT,
                               help="without --study: the baseline's stem, standard (default) or small; with --study: "
                                    "the search's")
    phi: str = setting("1", check=_phis_check, group=_WHAT, metavar="LIST", help="phi values to compare at (default 1)")
    repeats: int = setting(3, kind=int, check=whole(1, example=3), group=_WHAT,
                           help="paired seeds per arm (default 3)")
    arms: str | None = setting(None, check=_arms_check, group=_WHAT, metavar="LIST",
                               help=f"the arms to train, from {','.join(ARM_NAMES)} (compound always; paper and "
                                    f"published: efficientnet_b0 only); default {','.join(DEFAULT_ARMS)}, and "
                                    "paper,published for efficientnet_b0")
    cost: str | None = setting(None, choices=COSTS, group=_WHAT,
                               help="the cost the arms are matched to compound in: flops, activations or latency "
                                    "(default: the search's, else flops)")
    tolerance: float = setting(
        0.1, kind=float, check=number(0.0, above=True, below=1.0, example=0.1), group=_WHAT,
        help="relative tolerance of each matched arm's measured cost (--cost): within the compound member's "
             "x (1 ± this) (default 0.1 = 10%)",
    )
    bounds: str = setting("8", check=text(what="bounds"), group=_WHAT,
                          help="how far an arm may scale its dimension: 8, or depth=4,width=3,resolution=6")
    name: str | None = setting(None, check=text(max_length=512, what="a study name"), group=_RUN, metavar="NAME",
                               help="the comparison's own study name (default: derived; re-run to resume)")
    storage: str | None = _as_search("storage")
    ray_address: str | None = _as_search("ray_address")
    connect_timeout: float = _as_search("connect_timeout")
    cpus_per_trial: float = _as_search("cpus_per_trial")
    gpus_per_trial: Any = _as_search("gpus_per_trial")
    max_concurrent: int | None = _as_search("max_concurrent")
    max_retries: int = _as_search("max_retries")
    db_timeout: float = _as_search("db_timeout")
    out: str | None = setting(None, api=False, check=path(), group=_RUN, metavar="FILE",
                              help="also write the comparison as JSON to this file")

    def __post_init__(self) -> None:
        check_settings(self)
        if self.study is None and None in (self.baseline, self.data, self.alpha, self.beta, self.gamma):
            raise UsageError("compare needs --study NAME (a finished search), or BASELINE --data SPEC --alpha A "
                             "--beta B --gamma G")
        if self.study is not None and self.baseline is not None:
            raise UsageError(f"pass either --study {self.study} or a baseline ({self.baseline}), not both")

    @property
    def phis(self) -> tuple[int, ...]:
        return parse_phis(self.phi)
