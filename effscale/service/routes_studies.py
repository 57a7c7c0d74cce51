"""Read-only study endpoints: list, one study (with its verdict), its trials, curves, candidate map,
ranking and family."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Response

from effscale.search.records.optuna_access import trial_by_number
from effscale.service import serializers as ser
from effscale.service import trial_pages
from effscale.service.deps import (
    ServiceState,
    StudyData,
    StudyRef,
    find_study,
    get_state,
    load_study,
    not_found,
)
from effscale.service.schemas import (
    CandidateMap,
    CandidateRanking,
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


def comparison_url(name: str) -> str:
    return f"/api/comparisons/{quote(name, safe='')}"


def _has_family(state: ServiceState, name: str) -> bool:
    return state.store().load_family(name) is not None


@router.get("", response_model=StudyList, summary="List studies")
def list_studies(state: ServiceState = Depends(get_state)) -> dict[str, Any]:
    """Every study in the storage (and every search launched here), oldest first."""
    studies = []
    for name in state.study_names():
        data = state.load(name)
        studies.append(ser.study_summary(data, has_family=_has_family(state, name), url=study_url(name)))
    return {"studies": studies}


@router.get("/{study_name}", response_model=StudyDetail, responses=NOT_FOUND, summary="One study")
def get_study(data: StudyData = Depends(load_study), state: ServiceState = Depends(get_state)) -> dict[str, Any]:
    """Configuration, progress (done / running / left), status, the verdict (`best` as mean ± se
    over repeats with its ties, `best_source`, `fidelity`, `warnings`, `failures`) and the
    comparisons of its winner."""
    comparisons = [ser.comparison_link(c, url=comparison_url(c.name)) for c in state.comparisons(search=data.name)]
    confirmations = [ser.confirmation_link(c, url=study_url(c.name)) for c in state.confirmations(data.name)]
    return ser.study_detail(data, has_family=_has_family(state, data.name), url=study_url(data.name),
                            comparisons=comparisons, confirmations=confirmations)


MAX_PAGE = 1000


@router.get(
    "/{study_name}/trials",
    response_model=TrialPage,
    responses=NOT_FOUND,
    summary="Trials of a study",
    description=(
        "Trials filtered by `state`, sorted by `sort` and paginated by `limit` (1 to "
        f"{MAX_PAGE}, default 100) and `offset` (0 to 10^9); `total` counts the filtered trials. "
        "Sorting: `value` is each row's `val_top1` (the objective of a COMPLETE trial, else its "
        "last epoch's), `flops` the measured FLOPs, `number` the trial number; a `-` prefix "
        "sorts descending; nulls come last, ties go by trial number. A page is one indexed query on "
        "effscale's per-trial summaries (repaired first from Optuna's record where it is newer), "
        "so it costs the same in a study of ten trials or ten thousand. A search's trials are its race: its "
        "confirmation rounds train at a longer budget in studies of their own (listed as `confirmations` by "
        "GET /api/studies/{study_name}, their trials at /api/studies/{confirmation}/trials), so that one "
        "study holds one objective; a search stored before keeps its confirmation trials here."
    ),
)
def list_trials(
    ref: StudyRef = Depends(find_study),
    state: ServiceState = Depends(get_state),
    state_filter: TrialStateName | None = Query(None, alias="state", description="only trials in this state"),
    sort: TrialSort = Query("number", description="value, number or flops; '-' prefix for descending"),
    limit: int = Query(100, ge=1, le=MAX_PAGE, description=f"trials per page, at most {MAX_PAGE}"),
    offset: int = Query(0, ge=0, le=10**9, description="trials to skip"),
) -> dict[str, Any]:
    total, rows = 0, []
    if ref.study_id is not None:
        total, rows = trial_pages.trial_page(state, ref.study_id, state_filter=state_filter, sort=sort,
                                             limit=limit, offset=offset)
    return {"study": ref.name, "total": total, "limit": limit, "offset": offset, "trials": rows}


def _trial(state: ServiceState, ref: StudyRef, number: int) -> Any:
    """One trial by number, read alone (not the whole study)."""
    storage = state.storage()
    if ref.study_id is not None:
        try:
            return trial_by_number(storage, ref.study_id, number)
        except KeyError:
            pass
    n = trial_pages.count_trials(state.storage_url, ref.study_id) if ref.study_id is not None else 0
    raise not_found(f"trial {number} not found in study {ref.name!r} ({n} trials, numbered from 0)")


@router.get("/{study_name}/trials/{number}", response_model=TrialSummary, responses=NOT_FOUND, summary="One trial")
def get_trial(
    ref: StudyRef = Depends(find_study), state: ServiceState = Depends(get_state), number: int = TrialNumber
) -> dict[str, Any]:
    return ser.trial_row(_trial(state, ref, number))


@router.get("/{study_name}/trials/{number}/curve", response_model=Curve, responses=NOT_FOUND, summary="A trial's per-epoch curve")
def get_curve(
    ref: StudyRef = Depends(find_study), state: ServiceState = Depends(get_state), number: int = TrialNumber
) -> dict[str, Any]:
    """Per-epoch validation top-1 (and loss, learning rate, seconds when recorded)."""
    return ser.serialize_curve(ref.name, _trial(state, ref, number))


@router.get("/{study_name}/curves", response_model=CurveSet, responses=NOT_FOUND, summary="Learning curves")
def get_curves(
    ref: StudyRef = Depends(find_study),
    state: ServiceState = Depends(get_state),
    limit: int | None = Query(None, ge=1, le=10**6, description="curves per page (default: every trial's)"),
    offset: int = Query(0, ge=0, le=10**9, description="trials to skip"),
) -> dict[str, Any]:
    """Each trial's per-epoch curve, in trial-number order (`limit` and `offset` page them; `total`
    counts the study's trials)."""
    total, curves = 0, []
    if ref.study_id is not None:
        total, curves = trial_pages.curve_page(state.storage_url, ref.name, ref.study_id, limit=limit, offset=offset)
    return {"study": ref.name, "total": total, "curves": curves}


def _rows(state: ServiceState, *study_ids: int | None) -> Any:
    """The trial rows of these studies, read when called (`SummaryReader.rows`)."""
    return lambda: [row for i in study_ids if i is not None for row in state.trials().rows(i)]


@router.get("/{study_name}/candidates", response_model=CandidateMap, responses=NOT_FOUND, summary="The α–β–γ candidate map")
def get_candidates(data: StudyData = Depends(load_study), state: ServiceState = Depends(get_state)) -> dict[str, Any]:
    """Every grid point with its ratios, feasibility, alias flag and its network's race top-1
    (mean ± se over the COMPLETE repeats, n: the stored verdict's aggregates once there is one)."""

    def race() -> dict[str, dict[str, Any]]:
        if data.study_id is None:
            return {}
        stored = state.store().load_candidates(data.name) if data.result is not None else None
        networks, values = state.trials().race(data.study_id, values=stored is None)
        return ser.network_stats(networks, values, stored)

    return ser.candidate_map(data.name, data.user_attrs, race)


@router.get(
    "/{study_name}/candidates/ranking",
    response_model=CandidateRanking,
    responses=NOT_FOUND,
    summary="Per-candidate aggregates (the race's ranking)",
)
def get_ranking(data: StudyData = Depends(load_study), state: ServiceState = Depends(get_state)) -> dict[str, Any]:
    """One row per trained candidate: race mean ± se and n, confirmation mean ± se and n, and its
    standing in the verdict (winner, tied, separated, failed, pruned, untrained). Stored with the
    verdict (`source` "verdict"); before the search has one, computed from its trials so far
    (`source` "trials", standing null)."""
    if data.result is not None:
        return ser.candidate_ranking(data, state.store().load_candidates(data.name), lambda: [])
    rounds = [c.study_id for c in state.confirmations(data.name)]
    return ser.candidate_ranking(data, [], _rows(state, data.study_id, *rounds))


def _family(state: ServiceState, data: StudyData) -> dict[str, Any]:
    family = state.store().load_family(data.name)
    if family is None:
        raise not_found(
            f"study {data.name!r} has no family yet: it is emitted when the search completes "
            f"(status {data.status})"
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
