"""Where a search's full logs go, and the one line per kind of failure the user sees instead.

Ray and Tune log tracebacks and banners; a trial that fails sends its traceback with its result.
All of it goes to ``<state dir>/logs/<study>.log`` (``$EFFSCALE_STATE_DIR``, else
``$XDG_STATE_HOME/effscale``, else ``~/.local/state/effscale``); the terminal gets one summary
line per kind of failure and that path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

LOGGER = logging.getLogger("effscale.search")
_RAY_LOGGERS = ("ray", "ray.tune", "ray.train", "ray.data", "effscale.search")


def state_dir() -> Path:
    """effscale's per-user state directory (logs, service runs)."""
    env = os.environ.get("EFFSCALE_STATE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".local" / "state") / "effscale"


def search_log_path(study: str) -> Path | None:
    """The study's log file (created 0700/0600), or None when the state directory is not writable."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", study)[:120] or "search"
    directory = state_dir() / "logs"
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = directory / f"{safe}.log"
        path.touch(mode=0o600, exist_ok=True)
        return path
    except OSError:
        return None


@contextlib.contextmanager
def captured_logs(path: Path | None) -> Iterator[None]:
    """Ray's, Tune's and the trials' log records go to ``path``, none to the terminal."""
    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate,
                    logging.getLogger(name).level) for name in _RAY_LOGGERS}
    handler = None
    if path is not None:
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    for name in _RAY_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [handler] if handler is not None else [logging.NullHandler()]
        logger.propagate = False
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for name, (handlers, propagate, level) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers, logger.propagate, logger.level = handlers, propagate, level
        if handler is not None:
            handler.close()


def failure_summary(study: Any, log_path: Path | None, *, also: Any = ()) -> list[str]:
    """One line per kind of FAIL in the study and the studies ``also`` (a search's confirmation
    study; None skipped), step numbers folded, most frequent first."""
    from optuna.trial import TrialState

    from effscale.search.records.schema import FAIL_REASON_ATTR, REAPED_ATTR

    kinds: Counter[str] = Counter()
    failed = [t for s in (study, *also) if s is not None for t in s.get_trials(deepcopy=False, states=(TrialState.FAIL,))]
    for trial in failed:
        reason = trial.user_attrs.get(FAIL_REASON_ATTR) or ("orphaned by a driver that died" if
                                                            trial.system_attrs.get(REAPED_ATTR) else "failed")
        kinds[re.sub(r"\b\d+(\.\d+)?\b", "N", reason)] += 1
    where = f"; full logs: {log_path}" if log_path is not None else ""
    return [f"{n} trial{'s' if n > 1 else ''} failed: {reason}{where}" for reason, n in kinds.most_common()]
