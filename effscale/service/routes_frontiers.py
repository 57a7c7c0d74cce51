"""Read-only frontier endpoints: `effscale frontier`'s multi-objective studies (top-1 against the
measured cost ratio over depth, width and resolution), listed and one by one.

The stored front (`effscale.search.frontier.summary.frontier_document`) is served as it is: each
point with its mean ± se (n), cost, standing (front, near, behind) and evidence, and the compound
family's members drawn against it. A frontier still running has no front yet: its trials so far
are served as points (one per network, the seeds' top-1 averaged) without standings.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends
from optuna.trial import TrialState
from pydantic import BaseModel, Field

from effscale.search.records import optuna_access
from effscale.search.records.schema import FRONTIER_ATTR, FRONTIER_POINT_ATTR, FRONTIER_RESULT_ATTR
from effscale.search.records.status import study_status
from effscale.service.deps import ServiceState, get_state, not_found
from effscale.service.schemas import Problem

router = APIRouter(prefix="/api/frontiers", tags=["frontiers"])


class FrontierLink(BaseModel):
    name: str
    url: str
    baseline: str | None = None
    data: str | None = None
    cost: str | None = None
    status: str
    n_trials: int
    front: list[str] | None = Field(None, description="the front's points, cheapest first, once it is stored")


class FrontierList(BaseModel):
    frontiers: list[FrontierLink]


class FrontierDetail(FrontierLink):
    identity: dict[str, Any]
    result: dict[str, Any] | None = Field(None, description="the stored front (`effscale frontier --json`)")
    points_so_far: list[dict[str, Any]] = Field(default_factory=list,
                                                description="while running: each network's seeds so far")


def _url(name: str) -> str:
    return f"/api/frontiers/{quote(name, safe='')}"


def _link(state: ServiceState, study: Any, trials: list[Any]) -> dict[str, Any]:
    identity, result = study.user_attrs.get(FRONTIER_ATTR) or {}, study.user_attrs.get(FRONTIER_RESULT_ATTR)
    record, driver = state.status_of(study.study_name, optuna_access.study_id(study), study.user_attrs)
    states = {t.state.name.lower() for t in trials}
    status = study_status(record=record, user_attrs=study.user_attrs, states=states, driver=driver)
    return {"name": study.study_name, "url": _url(study.study_name), "baseline": identity.get("baseline"),
            "data": identity.get("data"), "cost": identity.get("cost"), "status": status, "n_trials": len(trials),
            "front": result.get("front") if isinstance(result, dict) else None}


@router.get("", response_model=FrontierList, summary="List frontiers")
def list_frontiers(state: ServiceState = Depends(get_state)) -> dict[str, Any]:
    """Every frontier study in the storage, oldest first, with its status and, once done, its front."""
    storage = state.storage()
    found = []
    for study in storage.get_all_studies():
        if isinstance(study.user_attrs.get(FRONTIER_ATTR), dict):
            found.append(_link(state, study, storage.get_all_trials(optuna_access.study_id(study), deepcopy=False)))
    return {"frontiers": found}


@router.get("/{frontier_name}", response_model=FrontierDetail,
            responses={404: {"model": Problem, "description": "no such frontier"}}, summary="One frontier")
def get_frontier(frontier_name: str, state: ServiceState = Depends(get_state)) -> dict[str, Any]:
    """The stored front, or while it runs the points trained so far (mean top-1 over their seeds)."""
    storage = state.storage()
    study = next((s for s in storage.get_all_studies() if s.study_name == frontier_name), None)
    if study is None or not isinstance(study.user_attrs.get(FRONTIER_ATTR), dict):
        raise not_found(f"frontier {frontier_name!r} not found in storage {state.redacted_url}: GET /api/frontiers "
                        "lists them")
    trials = storage.get_all_trials(optuna_access.study_id(study), deepcopy=False)
    result = study.user_attrs.get(FRONTIER_RESULT_ATTR)
    return {**_link(state, study, trials), "identity": study.user_attrs[FRONTIER_ATTR],
            "result": result if isinstance(result, dict) else None,
            "points_so_far": [] if isinstance(result, dict) else _so_far(trials)}


def _so_far(trials: list[Any]) -> list[dict[str, Any]]:
    by_point: dict[int, dict[str, Any]] = {}
    for t in trials:
        point = t.user_attrs.get(FRONTIER_POINT_ATTR)
        if t.state != TrialState.COMPLETE or not t.values or not isinstance(point, dict):
            continue
        row = by_point.setdefault(point["index"], {**point, "top1": []})
        row["top1"].append(float(t.values[0]))
    return [{**r, "top1_mean": sum(r["top1"]) / len(r["top1"]), "n": len(r["top1"])}
            for _, r in sorted(by_point.items())]
