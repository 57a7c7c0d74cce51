"""``effscale serve``: check everything it was given, then run the service with uvicorn.

Each refusal is one `UsageError` before the server starts (the CLI prints one line, exit 2):
a port outside 1..65535, a public host without ``EFFSCALE_TOKEN``, an unsafe state directory, a
missing data root, a taken port, a bad storage URL, ``--workers`` out of range or above 1 on a
server that launches searches. This module imports nothing heavy, so the cheap refusals come before
FastAPI, Optuna and torch are loaded.

Several workers (``--workers N``, `check_workers`) are separate processes sharing the listening
socket (uvicorn's `Multiprocess`, which restarts one that dies): a slow study view in one never
queues the requests the others answer.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import os
import socket
from typing import TYPE_CHECKING, Any

from effscale.errors import UsageError
from effscale.service.policy import TOKEN_ENV
from effscale.service.policy import data_root as confined_root
from effscale.service.statedir import RUNS_SUBDIR, default_state_dir, private_dir

if TYPE_CHECKING:
    from effscale.service.deps import ServiceState

log = logging.getLogger("effscale.service")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MAX_WORKERS = 64
DEFAULT_MAX_WORKERS = 4
APP_ENV = "EFFSCALE_SERVE_APP"  # create_app's arguments, as JSON, for each worker process


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (localhost, 127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_listen(host: str, port: int, *, token: str | None) -> None:
    """Refuse (`UsageError`) a port outside 1..65535, or a non-loopback host without a token."""
    if not 1 <= int(port) <= 65535:
        raise UsageError(f"--port {port} is not a TCP port: pass a number from 1 to 65535 (default {DEFAULT_PORT})")
    if not is_loopback(host) and not token:
        raise UsageError(
            f"--host {host} would serve the API beyond this machine without a token: set {TOKEN_ENV} "
            f"(e.g. `export {TOKEN_ENV}=$(openssl rand -hex 32)`) or bind to 127.0.0.1"
        )


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (here, so that a taken port is one `UsageError`, and
    uvicorn serves on this very socket: no window for another process to take the port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {host} is already in use: stop what listens there or pass another --port") from None
        if exc.errno == errno.EACCES:
            raise UsageError(f"port {port} on {host} needs privileges you lack: pass a --port above 1023") from None
        reason = exc.strerror or str(exc)
        raise UsageError(f"cannot listen on {host}:{port} ({reason}): pass another --host or --port") from None
    return sock


def serve(
    storage_url: str | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    ray_address: str | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    data_root: str | os.PathLike[str] | None = None,
    allow_user_baselines: bool = False,
    workers: int | None = None,
) -> None:
    """Run the service until interrupted (``storage_url`` None: `effscale.storage.resolve_storage`'s), in
    ``workers`` processes (None: `default_workers`); see the module docstring for what is refused first."""
    check_listen(host, port, token=os.environ.get(TOKEN_ENV))
    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        raise UsageError(f"--workers {workers} is out of range: pass 1 to {MAX_WORKERS} (default: one per core, at most 4)")
    state_dir = private_dir(state_dir if state_dir is not None else default_state_dir())
    root = confined_root(data_root) if data_root is not None else None
    sock = bind(host, port)
    try:
        import uvicorn

        from effscale.storage import open_storage, resolve_storage

        arguments = {"storage_url": resolve_storage(storage_url), "ray_address": ray_address, "state_dir": str(state_dir),
                     "data_root": str(root) if root is not None else None, "allow_user_baselines": allow_user_baselines}
        app = _app(arguments)
        open_storage(app.state.effscale.storage_url, read_only=True)  # reach the database now, not on a request
        workers = check_workers(app.state.effscale.storage_url, workers, launching=bool(app.state.effscale.token))
    except BaseException:
        sock.close()
        raise
    _log_start(app.state.effscale, host, port, state_dir, workers)
    if workers == 1:
        config = uvicorn.Config(app, host=host, port=port, log_level="info", proxy_headers=False)
        uvicorn.Server(config).run(sockets=[sock])
        return
    from uvicorn.supervisors import Multiprocess

    os.environ[APP_ENV] = json.dumps(arguments)  # the spawned workers build the same app (`worker_app`)
    config = uvicorn.Config("effscale.service.server:worker_app", factory=True, host=host, port=port,
                            workers=workers, log_level="info", proxy_headers=False)
    Multiprocess(config, sockets=[sock]).run()


def _app(arguments: dict[str, Any]) -> Any:
    from effscale.service.app import create_app

    return create_app(**arguments)


def worker_app() -> Any:
    """The app of one worker process (uvicorn's factory), from the arguments `serve` put in `APP_ENV`."""
    return _app(json.loads(os.environ[APP_ENV]))


def default_workers() -> int:
    """One worker per core, at most `DEFAULT_MAX_WORKERS`."""
    return max(1, min(DEFAULT_MAX_WORKERS, os.cpu_count() or 1))


def check_workers(url: str, workers: int | None, *, launching: bool) -> int:
    """How many worker processes may serve ``url``: several where readers never wait for a writer
    (PostgreSQL; SQLite in WAL mode, which this puts it in), else one. Launched searches are
    tracked by the process that started them, so a server that launches (``EFFSCALE_TOKEN`` set) has
    one unless more are asked for, which is refused."""
    if launching:
        if workers is not None and workers > 1:
            raise UsageError(f"--workers {workers} with {TOKEN_ENV} set: launched searches are tracked by one "
                             f"process, so a server that launches runs one worker: pass --workers 1, or unset "
                             f"{TOKEN_ENV} for a read-only server with several")
        return 1
    reason = _single_reader(url)
    if reason is None:
        return workers or default_workers()
    if workers is not None and workers > 1:
        log.warning("--workers %d: %s, so one worker serves", workers, reason)
    return 1


def _single_reader(url: str) -> str | None:
    """Why ``url`` takes one worker (None: it takes several)."""
    from effscale.storage.engine import get_engine, use_wal

    engine = get_engine(url)
    if engine.dialect.name != "sqlite":
        return None
    use_wal(engine)
    with engine.connect() as connection:
        mode = str(connection.exec_driver_sql("PRAGMA journal_mode").scalar()).lower()
    return None if mode == "wal" else f"the SQLite database is in {mode} mode, not WAL (another process holds it)"


def _log_start(state: ServiceState, host: str, port: int, state_dir: os.PathLike[str], workers: int) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    log.info("effscale serve: storage %s, dashboard http://%s:%d/, API docs /docs, %d worker%s", state.redacted_url,
             host, port, workers, "" if workers == 1 else "s")
    log.info("searches run under %s; data root: %s; user baselines: %s", os.path.join(state_dir, RUNS_SUBDIR),
             state.policy.data_root or "none (digits and synthetic only)",
             "allowed" if state.policy.allow_user_baselines else "refused")
    if not state.token:
        log.warning("%s is not set: launching and cancelling searches through the API is disabled", TOKEN_ENV)
    if not is_loopback(host):
        log.warning("listening on %s: the API is reachable from other machines", host)
