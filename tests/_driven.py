"""A real `effscale` command driven from a test: started in its own session, signalled as a
terminal would signal it, and watched through its study's trials. Only what the test started is
ever signalled: the session's id is checked before the group kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna

from effscale.storage import open_storage

TESTS = Path(__file__).parent


def start(argv: list[str], cwd: Path) -> subprocess.Popen:
    """``python -m effscale.cli ARGV`` in a new session (its pid is its session's and group's id)."""
    return subprocess.Popen(
        [sys.executable, "-m", "effscale.cli", *argv],
        env={**os.environ, "PYTHONPATH": str(TESTS)}, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )


def signal_session(proc: subprocess.Popen, sig: signal.Signals) -> None:
    """Like a terminal's Ctrl-C: the whole process group of the session the test created (the
    driver and its local Ray)."""
    assert os.getsid(proc.pid) == proc.pid
    os.killpg(proc.pid, sig)


def trials(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=study, storage=open_storage(url)).get_trials(deepcopy=False)
    except KeyError:
        return []


def wait_for(url: str, study: str, proc: subprocess.Popen, *, complete: int, running: int) -> None:
    """Until ``study`` holds at least ``complete`` COMPLETE and ``running`` RUNNING trials (the
    process must stay alive meanwhile)."""
    deadline = time.time() + 300
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        states = Counter(t.state.name for t in trials(url, study))
        if states["COMPLETE"] >= complete and states["RUNNING"] >= running:
            return
        time.sleep(0.2)
    raise AssertionError(f"{study} did not reach {complete} complete and {running} running trials in time")
