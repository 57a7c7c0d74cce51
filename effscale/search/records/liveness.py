"""Is a search's driver alive? The heartbeat it beats, and how another driver reads it.

Optuna's own heartbeat covers ``optimize`` only, not the ask/tell a Ray searcher uses, so the
driver beats in effscale's ``effscale_searches`` row and records its host and pid on the study.
A second driver for the same study is refused while the first lives; a dead one's RUNNING trials
are orphans (`effscale.search.records.study.reap_orphans`), and a reader shows its "running" row
as interrupted (`effscale.search.records.status.study_status`). The same rule serves a search and
a comparison: both run on one engine (`effscale.search.execution.session`).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from effscale.search.records.schema import DRIVER_ATTR

LOGGER = logging.getLogger(__name__)

# A driver that has not beaten its heart for this long is taken to be dead.
HEARTBEAT_SECONDS = 5.0
STALE_AFTER_SECONDS = 60.0


def claim_driver(study: Any) -> None:
    """Record this process as the study's driver (host and pid, for `driver_alive`)."""
    from effscale.search.records.optuna_access import set_study_system_attr

    set_study_system_attr(study, DRIVER_ATTR, {"host": socket.gethostname(), "pid": os.getpid()})


def driver_alive(study: Any, heartbeat_at: Any) -> bool:
    """A fresh heartbeat says alive, unless the driver ran on this host and its process is gone
    (killed: its trials are orphans)."""
    from effscale.search.records.optuna_access import study_system_attrs

    if not heartbeat_fresh(heartbeat_at):
        return False
    return driver_process_alive(study_system_attrs(study).get(DRIVER_ATTR))


def recorded_driver_alive(driver: dict[str, Any] | None, heartbeat_at: Any) -> bool:
    """`driver_alive` from what is already read: the study's `DRIVER_ATTR` (None: not known, and
    the heartbeat alone decides) and its status row's ``heartbeat_at``."""
    return heartbeat_fresh(heartbeat_at) and driver_process_alive(driver)


def heartbeat_fresh(heartbeat_at: Any) -> bool:
    return heartbeat_at is not None and time.time() - heartbeat_at.timestamp() <= STALE_AFTER_SECONDS


def driver_process_alive(driver: dict[str, Any] | None) -> bool:
    """False only when ``driver`` ran on this host and its process is gone."""
    driver = driver if isinstance(driver, dict) else {}
    if driver.get("host") == socket.gethostname() and driver.get("pid"):
        try:
            os.kill(int(driver["pid"]), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return True


def stored_driver(storage: Any, study_id: int | None) -> dict[str, Any] | None:
    """The driver recorded on the study with id ``study_id`` (`claim_driver`), read through
    Optuna's public storage API; None when there is none."""
    if study_id is None:
        return None
    driver = storage.get_study_system_attrs(study_id).get(DRIVER_ATTR)
    return driver if isinstance(driver, dict) else None


class Heartbeat:
    """Called once per Ray Tune loop; every `HEARTBEAT_SECONDS` it beats and reads the cancel flag.
    Returns True once the search should stop (a cancel was requested)."""

    def __init__(self, store: Any, study_name: str) -> None:
        self.store = store
        self.study_name = study_name
        self._cancelled = False
        self._last = 0.0

    def __call__(self) -> bool:
        now = time.time()
        if self._cancelled or now - self._last < HEARTBEAT_SECONDS:
            return self._cancelled
        self._last = now
        try:
            self.store.heartbeat(self.study_name)
            self._cancelled = bool(self.store.cancel_requested(self.study_name))
        except Exception as exc:  # noqa: BLE001 - a missed beat is harmless (stale only after 60 s)
            # The trials' own writes retry for --db-timeout and decide when the database is gone.
            LOGGER.warning("heartbeat skipped: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return self._cancelled
