"""``GET /healthz``: is the server up and its database reachable."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from effscale.service.deps import ServiceState, get_state
from effscale.service.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}}, summary="Liveness and database check")
def healthz(state: ServiceState = Depends(get_state)) -> Any:
    from effscale._version import __version__

    try:
        state.storage()
        state.store()
    except Exception as exc:  # noqa: BLE001 - any failure is "unavailable", redacted
        from effscale.service.launcher import scrub

        return JSONResponse(
            status_code=503,
            content={
                "status": "unavailable",
                "storage": state.redacted_url,
                "version": __version__,
                "detail": scrub(str(exc), state.storage_url),
            },
        )
    return {"status": "ok", "storage": state.redacted_url, "version": __version__, "detail": None}
