"""Real faults, each ending with exactly one COMPLETE trial per (candidate, repeat) and nothing lost:
Ctrl-C and SIGTERM (once, and twice), and PostgreSQL restarted mid-search or down for longer than
--db-timeout. Each test drives a real `effscale search` process it started in its own session and
signals only that session."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest

from _driven import signal_session as _signal_session
from _driven import start, wait_for as _wait
from _driven import trials as _trials
from conftest import in_ci
from effscale.storage import ProjectStore, dispose_engines

pytestmark = [pytest.mark.slow]

# Four candidates, one seed each, trials of a few seconds: long enough to be caught mid-trial.
ARGS = ["search", "tiny", "--data", "synthetic:classes=3,size=16,n=1200", "--alpha", "1.0,1.3", "--beta", "1.0",
        "--gamma", "1.0,1.3", "--constraint", "formula", "--tolerance", "10", "--epochs", "3", "--batch-size", "32",
        "--min-repeats", "1", "--max-repeats", "1", "--confirm-top", "0", "--max-concurrent", "1"]






def _start(url: str, study: str, cwd: Path, *extra: str) -> subprocess.Popen:
    return start([*ARGS, "--storage", url, "--study", study, *extra], cwd)


def _one_complete_each(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    trials = _trials(url, study)
    complete = [(t.params["alpha"], t.params["gamma"], t.user_attrs["repeat"]) for t in trials
                if t.state.name == "COMPLETE"]
    assert sorted(complete) == sorted({(a, g, 0) for a in (1.0, 1.3) for g in (1.0, 1.3)}), complete
    return trials


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_cleanly_and_the_same_command_resumes(sqlite_url: str, tmp_path: Path, sig, code) -> None:
    proc = _start(sqlite_url, "signalled", tmp_path)
    _wait(sqlite_url, "signalled", proc, complete=1, running=1)
    finished_before = {t.number for t in _trials(sqlite_url, "signalled") if t.state.name == "COMPLETE"}
    _signal_session(proc, sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "interrupted" in err and "Traceback" not in err
    record = ProjectStore(sqlite_url).get_search("signalled")
    assert record.status == "interrupted"
    assert ProjectStore(sqlite_url).load_family("signalled") is None  # nothing from a partial grid
    stopped = [t for t in _trials(sqlite_url, "signalled") if t.state.name == "FAIL"]
    assert stopped and all(t.user_attrs["fail_reason"] == "interrupted" for t in stopped)
    assert not [t for t in _trials(sqlite_url, "signalled") if t.state.name == "RUNNING"]
    if sig == signal.SIGTERM:
        return  # what a resume finds is the same after either signal: resumed once, after Ctrl-C

    again = _start(sqlite_url, "signalled", tmp_path)
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    trials = _one_complete_each(sqlite_url, "signalled")
    assert finished_before <= {t.number for t in trials if t.state.name == "COMPLETE"}  # nothing trained twice
    assert ProjectStore(sqlite_url).get_search("signalled").status == "completed"


def test_a_second_ctrl_c_exits_at_once(sqlite_url: str, tmp_path: Path) -> None:
    proc = _start(sqlite_url, "twice", tmp_path)
    _wait(sqlite_url, "twice", proc, complete=0, running=1)
    _signal_session(proc, signal.SIGINT)
    time.sleep(0.3)
    _signal_session(proc, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "exiting now" in err and "Traceback" not in err, err
    # What it may leave RUNNING is an orphan the next run reaps and trains again, as after a
    # SIGKILLed driver (test_search.py::test_driver_killed_then_resumed resumes that).
    from effscale.search.records.queries import list_studies

    assert [s["status"] for s in list_studies(sqlite_url) if s["study"] == "twice"] == ["interrupted"]


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def _pg(action: str) -> None:
    """Stop, start or restart the test server (scripts/start-postgres.sh's cluster). "start" makes
    sure it runs: pg_ctlcluster answers 2 to a start of a running cluster."""
    tool = shutil.which("pg_ctlcluster")
    if tool is None:
        if in_ci():
            pytest.fail("CI is set, so the PostgreSQL fault tests must not be skipped: pg_ctlcluster is missing")
        pytest.skip("pg_ctlcluster is not installed")
    command = [tool, "--skip-systemctl-redirect", os.environ.get("PG_VERSION", "15"), "main"]
    if action == "start" and subprocess.run([*command, "status"], capture_output=True, timeout=60).returncode == 0:
        return
    subprocess.run([*command, action], check=True, capture_output=True, timeout=120)


@pytest.mark.postgres
def test_postgres_restarted_mid_search_loses_nothing(postgres_clean_url: str, tmp_path: Path) -> None:
    proc = _start(postgres_clean_url, "pg-restart", tmp_path, "--db-timeout", "120")
    try:
        _wait(postgres_clean_url, "pg-restart", proc, complete=1, running=1)
        dispose_engines()
        _pg("restart")
        _, err = proc.communicate(timeout=600)
    finally:
        _pg("start")
    assert proc.returncode == 0, err
    trials = _one_complete_each(postgres_clean_url, "pg-restart")
    assert len(trials) == 4  # nothing duplicated, nothing failed
    assert ProjectStore(postgres_clean_url).get_search("pg-restart").status == "completed"


@pytest.mark.postgres
def test_postgres_down_longer_than_db_timeout_interrupts_then_resumes(postgres_clean_url: str, tmp_path: Path) -> None:
    proc = _start(postgres_clean_url, "pg-down", tmp_path, "--db-timeout", "5")
    try:
        _wait(postgres_clean_url, "pg-down", proc, complete=1, running=1)
        dispose_engines()
        _pg("stop")
        _, err = proc.communicate(timeout=300)
    finally:
        _pg("start")
    assert proc.returncode == 1, err
    lines = err.strip().splitlines()
    assert "interrupted" in lines[-1] and "--db-timeout" in lines[-1] and "Traceback" not in err
    again = _start(postgres_clean_url, "pg-down", tmp_path, "--db-timeout", "120")
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    _one_complete_each(postgres_clean_url, "pg-down")
