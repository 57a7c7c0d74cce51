"""`ConfirmOptions`: a later confirmation round of a finished search (`effscale confirm`), declared
once (see `effscale._settings`). Its flags are search's (``--confirm-top``, ``--confirm-epochs``);
``--top`` and ``--epochs`` are the older spellings, still accepted. No Optuna here: the CLI reads
this module to build ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass

from effscale._settings import check_settings, setting, text, whole
from effscale.storage.url import storage_setting


@dataclass(frozen=True)
class ConfirmOptions:
    """Which search to confirm, how many candidates and for how long, and where it runs."""

    study: str = setting(None, required=True, check=text(max_length=512, what="a study name"), metavar="NAME",
                         help="the search to confirm")
    storage: str | None = storage_setting()
    confirm_top: int | None = setting(
        None, kind=int, check=whole(0, above=True, example=3), metavar="K", aliases=("--top",),
        help="confirm the top K candidates and K others (default: the search's; --top is the deprecated spelling)",
    )
    confirm_epochs: int | None = setting(
        None, kind=int, check=whole(0, above=True, example=9), metavar="N", aliases=("--epochs",),
        help="epochs per confirmation run (default 3x the proxy's; --epochs is the deprecated spelling)",
    )
    ray_address: str | None = setting(None, check=text(what="a Ray address"), metavar="ADDR",
                                      help="join this Ray cluster (default: a local in-process Ray)")

    def __post_init__(self) -> None:
        check_settings(self)
