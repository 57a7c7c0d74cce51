"""Searches launched by the service: ``effscale search ...`` as background processes.

Each search runs in a fresh private directory (`effscale.service.statedir.new_run_dir`), in its
own process group (so its Ray workers and data loaders go with it), its output in a log file there.
The storage URL goes by environment (`STORAGE_ENV`), never on the command line, which every local
user can read. The interpreter is started with ``-c`` and a bootstrap that drops the working
directory from ``sys.path`` before importing effscale (``python -m`` would put it first, and ``-P``
needs Python 3.11), so nothing in the run directory can shadow a module.

Cancelling asks the search to stop through the database (`ProjectStore.request_cancel`, which the
driver polls), then, after a grace period, terminates the process group (SIGTERM, then SIGKILL)
and marks the search cancelled if the driver did not.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import make_url

from effscale.service.statedir import default_state_dir, new_run_dir
from effscale.storage import TERMINAL_STATUSES, ProjectStore, redact_url
from effscale.storage.url import STORAGE_ENV  # read by `effscale search` when --storage is absent

log = logging.getLogger("effscale.service")

DEFAULT_GRACE_PERIOD_S = 30.0
KILL_AFTER_S = 10.0
LOG_TAIL_BYTES = 64 * 1024
LOG_NAME = "search.log"
# `python -c BOOTSTRAP search ...`: like `python -m effscale.cli`, minus the working directory on
# sys.path ('' for -c; site has already made every other entry absolute).
BOOTSTRAP = (
    "import os, sys; cwd = os.getcwd(); "
    "sys.path[:] = [p for p in sys.path if p not in ('', '.') and os.path.abspath(p) != cwd]; "
    "from effscale.cli import main; sys.exit(main())"
)


class Launcher(Protocol):
    """What the routes need; tests pass a fake with the same methods."""

    def launch(self, study: str, argv: list[str]) -> dict[str, Any]: ...

    def get(self, study: str) -> dict[str, Any] | None: ...

    def list(self) -> list[dict[str, Any]]: ...

    def cancel(self, study: str) -> bool: ...

    def log(self, study: str) -> str | None: ...


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def scrub(text: str, url: str) -> str:
    """``text`` with the password of ``url`` (if any) replaced by ``***``."""
    try:
        password = make_url(url).password
    except Exception:  # noqa: BLE001 - unparsable URL: nothing we can find in it
        password = None
    if password:
        text = text.replace(str(password), "***")
    return text


@dataclass
class _Launch:
    study: str
    argv: list[str]
    process: subprocess.Popen[bytes]
    run_dir: Path
    log_path: Path
    started_at: str = field(default_factory=_now)
    finished_at: str | None = None
    cancel_requested: bool = False
    killed: bool = False


class SearchLauncher:
    """Starts and tracks search processes for one storage URL."""

    def __init__(
        self,
        storage_url: str,
        *,
        python: str = sys.executable,
        state_dir: str | Path | None = None,
        grace_period_s: float = DEFAULT_GRACE_PERIOD_S,
        kill_after_s: float = KILL_AFTER_S,
    ) -> None:
        self.storage_url = storage_url
        self.python = python
        self.grace_period_s = float(grace_period_s)
        self.kill_after_s = float(kill_after_s)
        # Checked (and created 0700) at each launch, not here: building an app touches no files.
        self.state_dir = Path(state_dir).expanduser().absolute() if state_dir else default_state_dir()
        self._launches: dict[str, _Launch] = {}
        self._lock = threading.Lock()

    # -- public -------------------------------------------------------------------------

    def command(self, argv: list[str]) -> list[str]:
        """The full command for ``effscale search`` arguments ``argv``."""
        return [self.python, "-c", BOOTSTRAP, "search", *argv, "--json"]

    def new_run_dir(self, study: str) -> Path:
        """A fresh private directory (0700) under ``STATE_DIR/runs`` for one run of ``study``."""
        return new_run_dir(self.state_dir, study)

    def redacted(self, argv: list[str]) -> str:
        """``argv`` as one line, the storage URL's password shown as ``***``."""
        return scrub(
            " ".join(redact_url(a) if a == self.storage_url else a for a in argv), self.storage_url
        )

    def launch(self, study: str, argv: list[str]) -> dict[str, Any]:
        """Start ``effscale search ARGV`` for ``study`` in the background; return its status dict."""
        with self._lock:
            existing = self._launches.get(study)
            if existing is not None and existing.process.poll() is None:
                raise RuntimeError(f"search {study!r} is already running (pid {existing.process.pid})")
            run_dir = self.new_run_dir(study)
            log_path = run_dir / LOG_NAME
            out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                process = subprocess.Popen(  # noqa: S603 - argv built from a validated model
                    self.command(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=self._environment(),
                    cwd=run_dir,
                    start_new_session=True,  # own process group: cancel kills the whole tree
                    close_fds=True,
                )
            finally:
                os.close(out)
            launch = _Launch(study=study, argv=list(argv), process=process, run_dir=run_dir, log_path=log_path)
            self._launches[study] = launch
        log.info("launched search %s (pid %d) in %s: effscale search %s", study, process.pid, run_dir, self.redacted(argv))
        threading.Thread(target=self._reap, args=(launch,), name=f"reap-{study}", daemon=True).start()
        return self._describe(launch)

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("EFFSCALE_TOKEN", None)  # the search does not need the API's secret
        # The URL may hold a password: the environment keeps it out of `ps` (argv is public).
        env[STORAGE_ENV] = self.storage_url
        return env

    def get(self, study: str) -> dict[str, Any] | None:
        with self._lock:
            launch = self._launches.get(study)
        return self._describe(launch) if launch is not None else None

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            launches = list(self._launches.values())
        return [self._describe(launch) for launch in launches]

    def cancel(self, study: str) -> bool:
        """Terminate the process of ``study`` after the grace period; False when not ours or done.

        The caller has already set the database's cancel flag (the driver's polite exit).
        """
        with self._lock:
            launch = self._launches.get(study)
        if launch is None or launch.process.poll() is not None:
            return False
        launch.cancel_requested = True
        threading.Thread(
            target=self._terminate_later, args=(launch,), name=f"cancel-{study}", daemon=True
        ).start()
        return True

    def log(self, study: str) -> str | None:
        """The last `LOG_TAIL_BYTES` of the search's output (password scrubbed); None when this
        server did not launch ``study``. Logs can hold paths and data details: the route that
        serves this needs the token."""
        with self._lock:
            launch = self._launches.get(study)
        if launch is None:
            return None
        try:
            with open(launch.log_path, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - LOG_TAIL_BYTES))
                data = f.read(LOG_TAIL_BYTES)
        except OSError:
            return ""
        return scrub(data.decode("utf-8", "replace"), self.storage_url)

    def shutdown(self, *, timeout_s: float = 5.0) -> None:
        """Terminate every search still running (the server is stopping)."""
        with self._lock:
            launches = [l for l in self._launches.values() if l.process.poll() is None]
        for launch in launches:
            self._signal(launch, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for launch in launches:
            try:
                launch.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._signal(launch, signal.SIGKILL)

    # -- internals ----------------------------------------------------------------------

    def _describe(self, launch: _Launch) -> dict[str, Any]:
        code = launch.process.poll()
        if code is None:
            status = "cancelling" if launch.cancel_requested else "starting"
        elif launch.cancel_requested or launch.killed:
            status = "cancelled"
        else:
            status = "completed" if code == 0 else "failed"
        error = None
        if code not in (None, 0) and not launch.cancel_requested:
            # No log text here: the status is public, the log (GET .../log) needs the token.
            error = f"search process exited with code {code}"
        return {
            "study_name": launch.study,
            "status": status,
            "pid": launch.process.pid,
            "returncode": code,
            "started_at": launch.started_at,
            "finished_at": launch.finished_at,
            "cancel_requested": launch.cancel_requested,
            "error": error,
        }

    def _reap(self, launch: _Launch) -> None:
        code = launch.process.wait()
        launch.finished_at = _now()
        log.info("search %s (pid %d) exited with code %s", launch.study, launch.process.pid, code)
        self._settle_record(launch, code)

    def _settle_record(self, launch: _Launch, code: int) -> None:
        """After the process is gone, make sure its record is not left ``running``."""
        try:
            store = ProjectStore(self.storage_url)
            record = store.get_search(launch.study)
            if record is None or record.status in TERMINAL_STATUSES:
                return
            if launch.cancel_requested or launch.killed:
                store.set_status(launch.study, "cancelled", error="cancelled through the API")
            else:
                store.set_status(
                    launch.study,
                    "failed",
                    error=f"search process exited with code {code} without finishing",
                )
        except Exception as exc:  # noqa: BLE001 - best effort; never crash the reaper thread
            log.warning("could not update search %s after exit: %s", launch.study, scrub(str(exc), self.storage_url))

    def _terminate_later(self, launch: _Launch) -> None:
        try:
            launch.process.wait(timeout=self.grace_period_s)
            return  # the driver saw the cancel flag and exited by itself
        except subprocess.TimeoutExpired:
            pass
        launch.killed = True
        self._signal(launch, signal.SIGTERM)
        try:
            launch.process.wait(timeout=self.kill_after_s)
        except subprocess.TimeoutExpired:
            self._signal(launch, signal.SIGKILL)

    @staticmethod
    def _signal(launch: _Launch, sig: signal.Signals) -> None:
        try:
            os.killpg(launch.process.pid, sig)  # the group id is the pid (start_new_session)
        except ProcessLookupError:
            pass
        except PermissionError:
            launch.process.send_signal(sig)
