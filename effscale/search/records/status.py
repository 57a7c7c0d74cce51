"""A stored study's status, derived in one place for `effscale studies`, the REST API and the dashboard.

A search's driver keeps its status in its ``effscale_searches`` row (`effscale.storage.STATUSES`),
and so does a comparison's (both run on one engine, `effscale.search.execution.session`); that row
is the truth once it exists, with one exception: a row still "running" whose driver is dead (its
heartbeat stale, or its process gone from this host: `effscale.search.records.liveness`) reads
"interrupted", since nothing will ever finish it (the same command resumes it). A search's
confirmation round (`CONFIRMATION_STUDY_ATTR`) is a study without a row of its own: its status is
its search's row (`status_row`).

Without a row: a comparison stored before comparisons had one is "completed" once its result is
stored, "running" while a trial runs, else "incomplete" (stopped; the same command resumes it).
Before a search has written its row, the service's launch says how it stands ("starting",
"failed", ...). A study effscale did not make is "running" while it has unfinished trials, else
"unknown".
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from effscale.search.records.liveness import recorded_driver_alive
from effscale.search.records.schema import (
    COMPARE_ATTR,
    CONFIRMATION_STUDY_ATTR,
    FRONTIER_ATTR,
    FRONTIER_RESULT_ATTR,
    PROPOSALS_STUDY_ATTR,
    RESULT_ATTR,
)

UNKNOWN = "unknown"  # a study effscale did not make, that runs nothing
INTERRUPTED = "interrupted"  # what a "running" row reads once its driver is dead


def is_comparison(user_attrs: dict[str, Any]) -> bool:
    """Whether a study's user attributes are a comparison's (`effscale compare`)."""
    return isinstance(user_attrs.get(COMPARE_ATTR), dict)


def confirmation_of(user_attrs: dict[str, Any]) -> str | None:
    """The search whose confirmation round a study is (`CONFIRMATION_STUDY_ATTR`); None when it is not one."""
    link = user_attrs.get(CONFIRMATION_STUDY_ATTR)
    search = link.get("search") if isinstance(link, dict) else None
    return search if isinstance(search, str) else None


def is_confirmation(user_attrs: dict[str, Any]) -> bool:
    """Whether a study is a search's confirmation round (its own study, linked to the search)."""
    return isinstance(user_attrs.get(CONFIRMATION_STUDY_ATTR), dict)


def side_kind(user_attrs: dict[str, Any]) -> str | None:
    """What a study that is not a search is: "comparison", "confirmation", "proposals" (a drawing
    sampler's points, `effscale.search.planning.sampling`) or "frontier"; None for a search."""
    for kind, attr in (("comparison", COMPARE_ATTR), ("confirmation", CONFIRMATION_STUDY_ATTR),
                       ("proposals", PROPOSALS_STUDY_ATTR), ("frontier", FRONTIER_ATTR)):
        if isinstance(user_attrs.get(attr), dict):
            return kind
    return None


def status_row(study_name: str, user_attrs: dict[str, Any]) -> str:
    """The name of the ``effscale_searches`` row that holds the study's status: its own, or for a
    confirmation round (or a sampler's proposals) its search's."""
    proposals = user_attrs.get(PROPOSALS_STUDY_ATTR)
    linked = proposals.get("search") if isinstance(proposals, dict) else None
    return confirmation_of(user_attrs) or (linked if isinstance(linked, str) else None) or study_name


def study_status(
    *,
    record: Any = None,
    launch: dict[str, Any] | None = None,
    user_attrs: dict[str, Any] | None = None,
    states: Collection[str] = (),
    driver: dict[str, Any] | None = None,
) -> str:
    """The status of one study from what is stored about it: its status row (``record``, an
    `effscale.storage.SearchRecord`, the one `status_row` names), the driver recorded on the study
    that row belongs to (``driver``, `effscale.search.records.liveness.stored_driver`; None: the
    heartbeat alone says whether it lives), the service's ``launch``, its user attributes and the
    states its trials are in (``states``: "running", "waiting", ...; see the module docstring for
    the rule)."""
    if record is not None:
        if record.status == "running" and not recorded_driver_alive(driver, record.heartbeat_at):
            return INTERRUPTED
        return record.status
    attrs = user_attrs or {}
    if is_comparison(attrs) or isinstance(attrs.get(FRONTIER_ATTR), dict):
        if isinstance(attrs.get(RESULT_ATTR), dict) or isinstance(attrs.get(FRONTIER_RESULT_ATTR), dict):
            return "completed"
        return "running" if "running" in states else "incomplete"
    if launch is not None:
        return str(launch.get("status", "starting"))
    if "running" in states or "waiting" in states:
        return "running"
    return UNKNOWN
