"""The server's private state directory and the fresh directory each launched search runs in.

A launched search runs in a directory of its own (its family file and Ray Tune output land
there). A predictable, shared path such as ``/tmp/effscale-service-runs/STUDY`` lets another local
user create it first and plant files in it, so every run directory is made by ``mkdtemp`` (mode
0700, a random name) under ``STATE_DIR/runs``, and the state directory itself must belong to this
user and be writable by no one else.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from effscale.errors import UsageError

RUNS_SUBDIR = "runs"
PRIVATE_MODE = 0o700


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/effscale``, else ``~/.local/state/effscale`` (the XDG base-directory rule:
    a relative ``XDG_STATE_HOME`` is ignored)."""
    xdg = os.environ.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / "effscale"


def private_dir(path: str | os.PathLike[str], *, what: str = "--state-dir") -> Path:
    """``path`` as an absolute directory owned by this user and writable by no one else.

    A missing directory is created with mode 0700 (its missing parents with the usual mode). An
    existing one that another user owns, or that its group or others may write, raises
    `UsageError`: files planted there would end up in a search's working directory.
    """
    directory = Path(path).expanduser().absolute()
    try:
        directory.mkdir(mode=PRIVATE_MODE, parents=True)
        os.chmod(directory, PRIVATE_MODE)  # mkdir's mode is masked by the umask
    except FileExistsError:
        pass
    except OSError as exc:
        raise UsageError(f"{what} {str(directory)!r} cannot be created ({exc.strerror}): pass a directory you own") from None
    info = directory.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{what} {str(directory)!r} is not a directory: pass a directory you own")
    if info.st_uid != os.getuid():
        raise UsageError(
            f"{what} {str(directory)!r} is owned by uid {info.st_uid}, not by you (uid {os.getuid()}): "
            "pass a directory you own"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UsageError(
            f"{what} {str(directory)!r} is writable by its group or others (mode {stat.S_IMODE(info.st_mode):04o}): "
            f"run `chmod go-w {directory}` or pass another directory"
        )
    return directory


def new_run_dir(state_dir: str | os.PathLike[str], study: str) -> Path:
    """A fresh directory, mode 0700 and never used before, for one run of ``study``."""
    runs = private_dir(Path(private_dir(state_dir)) / RUNS_SUBDIR)
    return Path(tempfile.mkdtemp(prefix=f"{study}-", dir=runs))
