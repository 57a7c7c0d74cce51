"""Read-only study endpoints: list, one study, its trials, curves, candidate map and family."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Response

from effscale.service import serializers as ser
from effscale.service.deps import ServiceState, StudyData, get_state, load_study, not_found
from effscale.service.schemas import (
    CandidateMap,
    Curve,
    CurveSet,
    Problem,
    StudyDetail,
    StudyList,
    TrialPage,
    TrialSort,
    TrialStateName,
    TrialSummary,
)

router = APIRouter(prefix="/api/studies", tags=["studies"])

NOT_FOUND = {404: {"model": Problem, "description": "no such study, trial or family"}}
TrialNumber = Path(..., ge=0, le=2**31 - 1, description="the trial's number within its study")


def study_url(name: str) -> str:
    return f"/api/studies/{quote(name, safe='')}"


def _has_family(state: ServiceState, name: str) -> bool:
    return state.store().load_family(name) is not None


def _summary(state: ServiceState, data: StudyData) -> dict[str, Any]:
    return ser.study_summary(
        data.name,
        record=data.record,
        user_attrs=data.user_attrs,
        trials=data.trials,
        launch=data.launch,
        has_family=_has_family(state, data.name),
        url=study_url(data.name),
    )


@router.get("", response_model=StudyList, summary="List studies")
def list_studies(state: ServiceState = Depends(get_state)) -> dict[str, Any]:
    """Every study in the storage (and every search launched here), oldest first."""
    return {"studies": [_summary(state, state.load(name)) for name in state.study_names()]}


@router.get("/{study_name}", response_model=StudyDetail, responses=NOT_FOUND, summary="One study")
def get_study(data: StudyData = Depends(load_study), state: ServiceState = Depends(get_state)) -> dict[str, Any]:
    """Configuration, progress (done / running / left), best trial so far and status."""
    return ser.study_detail(
        data.name,
        record=data.record,
        user_attrs=data.user_attrs,
        directions=data.directions,
        trials=data.trials,
        launch=data.launch,
        has_family=_has_family(state, data.name),
        url=study_url(data.name),
    )


@router.get("/{study_name}/trials", response_model=TrialPage, responses=NOT_FOUND, summary="Trials of a study")
def list_trials(
    data: StudyData = Depends(load_study),
    state_filter: TrialStateName | None = Query(None, alias="state", description="only trials in this state"),
    sort: TrialSort = Query("number", description="value, number or flops; '-' prefix for descending"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10**9),
) -> dict[str, Any]:
    """Trials filtered by state, sorted and paginated (``total`` counts the filtered trials)."""
    trials = data.trials
    if state_filter is not None:
        wanted = ser.STATES_BY_NAME[state_filter]
        trials = [t for t in trials if t.state == wanted]
    rows = ser.sort_trials([ser.trial_row(t) for t in trials], sort)
    return {
        "study": data.name,
        "total": len(rows),
        "limit": limit,
        "offset": offset,
        "trials": rows[offset : offset + limit],
    }


def _trial(data: StudyData, number: int) -> Any:
    for trial in data.trials:
        if trial.number == number:
            return trial
    raise not_found(
        f"trial {number} not found in study {data.name!r} ({len(data.trials)} trials, numbered from 0)"
    )


@router.get("/{study_name}/trials/{number}", response_model=TrialSummary, responses=NOT_FOUND, summary="One trial")
def get_trial(data: StudyData = Depends(load_study), number: int = TrialNumber) -> dict[str, Any]:
    return ser.trial_row(_trial(data, number))


@router.get("/{study_name}/trials/{number}/curve", response_model=Curve, responses=NOT_FOUND, summary="A trial's per-epoch curve")
def get_curve(data: StudyData = Depends(load_study), number: int = TrialNumber) -> dict[str, Any]:
    """Per-epoch validation top-1 (and loss, learning rate, seconds when recorded)."""
    return ser.serialize_curve(data.name, _trial(data, number))


@router.get("/{study_name}/curves", response_model=CurveSet, responses=NOT_FOUND, summary="All learning curves")
def get_curves(data: StudyData = Depends(load_study)) -> dict[str, Any]:
    return {"study": data.name, "curves": [ser.serialize_curve(data.name, t) for t in data.trials]}


@router.get("/{study_name}/candidates", response_model=CandidateMap, responses=NOT_FOUND, summary="The α–β–γ candidate map")
def get_candidates(data: StudyData = Depends(load_study)) -> dict[str, Any]:
    """Every grid point with its ratios, feasibility, alias flag and the top-1 of its network."""
    return ser.candidate_map(data.name, data.user_attrs, data.trials)


def _family(state: ServiceState, data: StudyData) -> dict[str, Any]:
    family = state.store().load_family(data.name)
    if family is None:
        raise not_found(
            f"study {data.name!r} has no family yet: it is emitted when the search completes "
            f"(status {ser.study_status(data.record, data.launch, data.trials)})"
        )
    return ser.json_safe(family)


@router.get("/{study_name}/family", responses=NOT_FOUND, summary="The emitted B0..B7 family")
def get_family(data: StudyData = Depends(load_study), state: ServiceState = Depends(get_state)) -> dict[str, Any]:
    return _family(state, data)


@router.get(
    "/{study_name}/family/download",
    responses={**NOT_FOUND, 200: {"content": {"application/json": {}}, "description": "family-<study>.json"}},
    summary="The family as a file",
)
def download_family(data: StudyData = Depends(load_study), state: ServiceState = Depends(get_state)) -> Response:
    family = _family(state, data)
    filename = "family-" + re.sub(r"[^A-Za-z0-9_.-]", "_", data.name) + ".json"
    return Response(
        content=json.dumps(family, indent=2) + "\n",
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
