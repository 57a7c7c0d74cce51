"""The FastAPI application: REST API under ``/api`` (ETags: `effscale.service.etags`), OpenAPI at
``/docs`` (its assets served here, so it works offline), dashboard at ``/``.

``create_app(storage_url)`` builds it (nothing is opened until the first request, so a server
can start before its database); `effscale.service.server.serve` runs it (``effscale serve``).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from effscale.errors import UsageError
from effscale.service import (
    routes_comparisons,
    routes_export,
    routes_frontiers,
    routes_health,
    routes_searches,
    routes_studies,
)
from effscale.service.deps import ServiceState
from effscale.service.etags import ETagMiddleware
from effscale.service.launcher import SearchLauncher, scrub
from effscale.service.policy import TOKEN_ENV, LaunchPolicy
from effscale.service.policy import data_root as confined_root
from effscale.storage import StorageError, normalize_url, redact_url, validate_url

log = logging.getLogger("effscale.service")

STATIC_DIR = Path(__file__).with_name("static")
DOCS_ASSETS = "/docs-assets"  # Swagger UI's script, style and icon (`_add_docs`)
ROUTE_THREADS = 4  # per worker process: see `_threads`

_DESCRIPTION = """\
effscale's compound-scaling searches: studies with their verdicts (mean ± se over repeats, ties,
proxy fidelity), trials, learning curves, candidate maps and rankings, the emitted B0..B7 families
and the comparisons against single-dimension scaling (read-only, open), and launching / cancelling searches and reading their
logs (bearer token: the server's `EFFSCALE_TOKEN`). The dashboard is at `/`.
"""


def _loc(loc: Any) -> str:
    return ".".join(str(part) for part in loc)


def _absolute_sqlite(url: str) -> str:
    """A SQLite URL with an absolute path, so launched searches (in their own directory) share it."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - validate_url explains what is wrong
        return url
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return url
    path = Path(database).expanduser()
    if path.is_absolute():
        return url
    return parsed.set(database=str(path.resolve())).render_as_string(hide_password=False)


def create_app(
    storage_url: str,
    *,
    token: str | None = None,
    ray_address: str | None = None,
    launcher: Any = None,
    state_dir: str | os.PathLike[str] | None = None,
    data_root: str | os.PathLike[str] | None = None,
    allow_user_baselines: bool = False,
) -> Any:
    """The effscale service for ``storage_url``.

    ``token`` guards launching, cancelling and search logs (default: env ``EFFSCALE_TOKEN``; none
    means those endpoints refuse). ``ray_address`` is passed to launched searches, which run in
    fresh private directories under ``state_dir`` (default `default_state_dir`). ``data_root`` and
    ``allow_user_baselines`` are the `LaunchPolicy`. ``launcher`` replaces the subprocess launcher
    (tests). A malformed URL or data root raises `UsageError` here, password redacted.
    """
    from effscale._version import __version__

    url = _absolute_sqlite(normalize_url(storage_url))
    validate_url(url)
    if token is None:
        token = os.environ.get(TOKEN_ENV) or None
    policy = LaunchPolicy(
        data_root=confined_root(data_root) if data_root is not None else None,
        allow_user_baselines=bool(allow_user_baselines),
    )
    state = ServiceState(
        storage_url=url,
        token=token or None,
        ray_address=ray_address or None,
        launcher=launcher if launcher is not None else SearchLauncher(url, state_dir=state_dir),
        policy=policy,
    )
    app = FastAPI(title="effscale", version=__version__, description=_DESCRIPTION, docs_url=None, redoc_url=None,
                  lifespan=_threads)
    app.state.effscale = state
    app.add_middleware(ETagMiddleware)
    _add_error_handlers(app, url)
    app.include_router(routes_health.router)
    app.include_router(routes_studies.router)
    app.include_router(routes_comparisons.router)
    app.include_router(routes_frontiers.router)
    app.include_router(routes_searches.router)
    app.include_router(routes_export.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _add_docs(app)

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    return app


@contextlib.asynccontextmanager
async def _threads(_: Any) -> AsyncIterator[None]:
    """Routes run in at most `ROUTE_THREADS` threads of a worker at once; the rest wait their turn
    in the event loop. More threads than that only contend for the worker's GIL: each of a route's
    database round trips then waits for it, and every answer gets slower."""
    import anyio.to_thread

    anyio.to_thread.current_default_thread_limiter().total_tokens = ROUTE_THREADS
    yield


def _add_docs(app: Any) -> None:
    """``/docs``: Swagger UI from the assets packaged with ``fastapi-offline``, served here (no CDN)."""
    from importlib.resources import files

    from fastapi.openapi.docs import get_swagger_ui_html

    app.mount(DOCS_ASSETS, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> Any:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="effscale API",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png")


def _add_error_handlers(app: Any, url: str) -> None:
    """Bad requests are 422 with a one-line ``message``; database trouble is 503, redacted."""

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        message = "; ".join(f"{_loc(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
        return JSONResponse(status_code=422, content={"detail": errors, "message": message})

    @app.exception_handler(UsageError)
    async def _usage(_: Request, exc: UsageError) -> JSONResponse:
        # Raised by the storage layer when the database is unreachable or refuses (message
        # redacted), and by the launcher when the state directory is unsafe: the server's to fix.
        return JSONResponse(status_code=503, content={"detail": scrub(str(exc), url)})

    @app.exception_handler(StorageError)
    async def _storage(_: Request, exc: StorageError) -> JSONResponse:
        log.error("storage error: %s", scrub(str(exc), url))
        return JSONResponse(status_code=503, content={"detail": scrub(str(exc), url)})

    @app.exception_handler(sa_exc.SQLAlchemyError)
    async def _sqlalchemy(_: Request, exc: sa_exc.SQLAlchemyError) -> JSONResponse:
        reason = scrub(" ".join(str(getattr(exc, "orig", None) or exc).split()), url)
        log.error("database error on %s: %s", redact_url(url), reason)
        return JSONResponse(
            status_code=503, content={"detail": f"storage {redact_url(url)} is unavailable: {reason}"}
        )
