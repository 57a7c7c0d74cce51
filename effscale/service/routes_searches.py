"""Launching and cancelling searches (bearer token), and their status."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Path, status
from fastapi.exceptions import RequestValidationError

from effscale.errors import UsageError
from effscale.service import serializers as ser
from effscale.service.deps import ServiceState, get_state, not_found, require_token
from effscale.service.launcher import LOG_TAIL_BYTES
from effscale.service.routes_studies import study_url
from effscale.service.schemas import (
    STUDY_NAME_PATTERN,
    Problem,
    SearchConfig,
    SearchLaunched,
    SearchList,
    SearchLog,
    SearchStatus,
)
from effscale.storage import TERMINAL_STATUSES

router = APIRouter(prefix="/api/searches", tags=["searches"])

AUTH = {
    401: {"model": Problem, "description": "missing or wrong bearer token"},
    403: {"model": Problem, "description": "the server has no token configured (EFFSCALE_TOKEN)"},
}
StudyName = Path(..., max_length=120, description="the search's study name")


def search_url(name: str) -> str:
    return f"/api/searches/{quote(name, safe='')}"


def _generated_name(baseline: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "-", baseline.split(":")[-1].split(".")[-1])[:60].strip("-.") or "search"
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stem}-{stamp}-{secrets.token_hex(2)}"


def _restricted(config: Any, state: ServiceState) -> Any:
    """``config`` under the server's `LaunchPolicy`: data paths made real and confined to the data
    root, user baselines only when allowed. A refusal is a 422 like any other bad field."""
    try:
        baseline = state.policy.check_baseline(config.baseline)
    except UsageError as exc:
        raise _field_error("baseline", exc) from None
    try:
        data = state.policy.confine_data(config.data)
    except UsageError as exc:
        raise _field_error("data", exc) from None
    return config.model_copy(update={"baseline": baseline, "data": data})


def _field_error(name: str, exc: UsageError) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", name), "msg": str(exc), "type": "value_error"}])


def _status(state: ServiceState, name: str) -> dict[str, Any] | None:
    record = state.store().get_search(name)
    launch = state.launcher.get(name)
    if record is None and launch is None:
        return None
    return ser.search_status(name, record=record, launch=launch, study_url=study_url(name),
                             driver=state.driver(name, record))


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SearchLaunched,
    responses={**AUTH, 409: {"model": Problem, "description": "a study with that name exists"}},
    dependencies=[Depends(require_token)],
    summary="Launch a search",
)
def launch_search(config: SearchConfig, state: ServiceState = Depends(get_state)) -> dict[str, Any]:
    """Start ``effscale search`` in the background on the server's Ray (local or cluster).

    The body takes the CLI's options; storage and Ray address are the server's. Data paths
    (``folder:``, ``cifar:``, ``npz:``) must lie inside the server's ``--data-root`` (relative ones
    resolve against it; without one only ``digits`` and ``synthetic``), and a
    ``package.module:function`` baseline needs ``--allow-user-baselines``. Poll ``status_url`` (or
    the study at ``study_url``) for progress.
    """
    config = _restricted(config, state)
    name = config.study or _generated_name(config.baseline)
    if not re.fullmatch(STUDY_NAME_PATTERN, name):  # a generated name always matches; belt and braces
        raise HTTPException(status_code=422, detail=f"study name {name!r} is not allowed")
    launch = state.launcher.get(name)
    if (
        state.study_id(name) is not None
        or state.store().get_search(name) is not None
        or (launch is not None and launch.get("returncode") is None)
    ):
        raise HTTPException(
            status_code=status.HTTP_409_CONFLICT,
            detail=f"study {name!r} already exists: choose another `study` name or omit it to get a fresh one",
        )
    argv = config.to_argv(study=name, ray_address=state.ray_address)  # the storage URL goes by environment
    try:
        launched = state.launcher.launch(name, argv)
    except RuntimeError as exc:
        raise HTTPException(status_code=status.HTTP_409_CONFLICT, detail=str(exc)) from None
    return {
        "study_name": name,
        "status": launched.get("status", "starting"),
        "status_url": search_url(name),
        "study_url": study_url(name),
        "pid": launched.get("pid"),
    }


@router.get("", response_model=SearchList, summary="Searches launched by this server")
def list_launched(state: ServiceState = Depends(get_state)) -> dict[str, Any]:
    searches = []
    for launch in state.launcher.list():
        found = _status(state, launch["study_name"])
        if found is not None:
            searches.append(found)
    return {"searches": searches}


@router.get("/{study_name}", response_model=SearchStatus, responses={404: {"model": Problem}}, summary="A search's status")
def get_search(study_name: str = StudyName, state: ServiceState = Depends(get_state)) -> dict[str, Any]:
    found = _status(state, study_name)
    if found is None:
        raise not_found(f"no search {study_name!r} in storage {state.redacted_url}: GET /api/studies lists them")
    return found


@router.get(
    "/{study_name}/log",
    response_model=SearchLog,
    responses={**AUTH, 404: {"model": Problem}},
    dependencies=[Depends(require_token)],
    summary="A launched search's output (bearer token)",
)
def get_search_log(study_name: str = StudyName, state: ServiceState = Depends(get_state)) -> dict[str, Any]:
    """The end of the output of a search this server launched (passwords as ``***``). It can name
    files and hosts, so unlike the status it needs the token."""
    text = state.launcher.log(study_name)
    if text is None:
        raise not_found(
            f"no log for {study_name!r}: only searches launched by this server (since it started) have one"
        )
    return {"study_name": study_name, "log": text, "max_bytes": LOG_TAIL_BYTES}


@router.post(
    "/{study_name}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SearchStatus,
    responses={**AUTH, 404: {"model": Problem}, 409: {"model": Problem, "description": "the search already finished"}},
    dependencies=[Depends(require_token)],
    summary="Cancel a running search",
)
def cancel_search(study_name: str = StudyName, state: ServiceState = Depends(get_state)) -> dict[str, Any]:
    """Ask the search to stop (its driver polls the flag); a search launched by this server is
    also terminated after a grace period."""
    store = state.store()
    record = store.get_search(study_name)
    launch = state.launcher.get(study_name)
    if record is None and launch is None:
        raise not_found(f"no search {study_name!r} in storage {state.redacted_url}: GET /api/studies lists them")
    running_here = launch is not None and launch.get("returncode") is None
    if not running_here and (record is None or record.status in TERMINAL_STATUSES):
        final = record.status if record is not None else launch.get("status") if launch else "unknown"
        raise HTTPException(
            status_code=status.HTTP_409_CONFLICT,
            detail=f"search {study_name!r} is not running (status {final}): nothing to cancel",
        )
    if record is not None:
        state.writer().request_cancel(study_name)
    state.launcher.cancel(study_name)
    # Report from fresh copies, keeping what we read above if one vanished meanwhile: the search
    # exists (we checked), so this never falls back to a 404.
    if record is not None:
        record = store.get_search(study_name) or record
    launch = state.launcher.get(study_name) or launch
    found = ser.search_status(study_name, record=record, launch=launch, study_url=study_url(study_name),
                              driver=state.driver(study_name, record))
    found["cancel_requested"] = True
    return found
