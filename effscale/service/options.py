"""`ServeOptions`: how `effscale serve` listens and what it allows, declared once (see
`effscale._settings`). `effscale.service.server.serve` checks the values that depend on the
machine (the port free, the host and the token, the state directory, the data root) before it
starts. Nothing heavy here: the CLI reads this module to build ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass

from effscale._settings import check_settings, setting, text, whole
from effscale.service.server import DEFAULT_HOST, DEFAULT_PORT
from effscale.storage.url import storage_setting


@dataclass(frozen=True)
class ServeOptions:
    """Where the service listens, which database it serves, and what launched searches may use."""

    storage: str | None = storage_setting()
    host: str = setting(DEFAULT_HOST, check=text(what="a host"), metavar="HOST",
                        help=f"address to bind (default {DEFAULT_HOST}: this machine only)")
    port: int = setting(DEFAULT_PORT, kind=int, help=f"port, 1 to 65535 (default {DEFAULT_PORT})")
    workers: int | None = setting(
        None, kind=int, check=whole(1, example=4), metavar="N",
        help="worker processes answering requests (default: one per core, at most 4, where the storage allows "
             "several readers: PostgreSQL, or SQLite in WAL mode; else 1; and 1 while launching is enabled)",
    )
    ray_address: str | None = setting(None, check=text(what="a Ray address"), metavar="ADDR",
                                      help="Ray cluster for launched searches (default: a local Ray)")
    state_dir: str | None = setting(
        None, check=text(max_length=4096, what="a directory"), metavar="DIR",
        help="private directory (0700) for launched searches' runs and logs "
             "(default: $XDG_STATE_HOME/effscale, else ~/.local/state/effscale)",
    )
    data_root: str | None = setting(
        None, check=text(max_length=4096, what="a directory"), metavar="DIR",
        help="folder:, cifar: and npz: data given through the API must lie inside DIR "
             "(default: none, so only digits and synthetic)",
    )
    allow_user_baselines: bool = setting(
        False, kind=bool,
        help="accept package.module:function baselines through the API (importing one runs its code)",
    )

    def __post_init__(self) -> None:
        check_settings(self)
