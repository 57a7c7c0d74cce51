"""A comparison runs on the search's engine, so it survives what a search survives. Real faults on
a real local Ray: the driver SIGKILLed mid-trial and the same command run again (exactly one
COMPLETE trial per (arm, φ, seed), nothing left RUNNING), and Ctrl-C (exit 130, status
``interrupted`` where the REST API reads it). Each test drives a real `effscale compare` process it
started in its own session and signals only that session."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from _driven import signal_session as _signal_session
from _driven import start, wait_for as _wait
from _driven import trials as _trials
from _service_fixtures import FakeLauncher
from effscale.service import create_app
from effscale.storage import ProjectStore, dispose_engines

pytestmark = [pytest.mark.slow, pytest.mark.ray]

ARMS = ("compound", "depth", "width", "resolution")
# Given coefficients (no search first): four arms at phi=1, one seed each, one trial at a time, each
# a few seconds long, so that a signal lands mid-trial.
ARGS = ["compare", "tiny", "--data", "synthetic:classes=3,size=16,n=600", "--alpha", "1.2", "--beta", "1.1",
        "--gamma", "1.15", "--phi", "1", "--repeats", "1", "--tolerance", "0.3", "--epochs", "2",
        "--batch-size", "32", "--max-concurrent", "1"]






def _start(url: str, name: str, cwd: Path) -> subprocess.Popen:
    return start([*ARGS, "--storage", url, "--name", name], cwd)


def _api_status(url: str, name: str) -> str:
    client = TestClient(create_app(url, token="t", launcher=FakeLauncher()))
    response = client.get(f"/api/comparisons/{name}")
    assert response.status_code == 200, response.text
    return response.json()["status"]


def test_a_killed_comparison_resumes_with_one_complete_trial_per_arm_and_seed(sqlite_url: str, tmp_path: Path) -> None:
    proc = _start(sqlite_url, "killed-cmp", tmp_path)
    try:
        _wait(sqlite_url, "killed-cmp", proc, complete=1, running=1)
    finally:
        _signal_session(proc, signal.SIGKILL)  # the driver and its whole local Ray, no goodbye
        proc.communicate()
    before = Counter(t.state.name for t in _trials(sqlite_url, "killed-cmp"))
    assert 1 <= before["COMPLETE"] < 4
    assert ProjectStore(sqlite_url).get_search("killed-cmp").status == "running"  # as a killed search's
    assert _api_status(sqlite_url, "killed-cmp") == "interrupted"  # its driver is gone: not "running" forever

    again = _start(sqlite_url, "killed-cmp", tmp_path)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    trials = _trials(sqlite_url, "killed-cmp")
    complete = [(t.user_attrs["arm"], t.user_attrs["phi"], t.user_attrs["seed"]) for t in trials
                if t.state.name == "COMPLETE"]
    assert sorted(a for a, _, _ in complete) == sorted(ARMS) and len(set(complete)) == 4  # one per (arm, phi, seed)
    assert not [t for t in trials if t.state.name == "RUNNING"]
    # What the dead driver left RUNNING was failed as orphaned and trained again.
    orphans = [t for t in trials if t.state.name == "FAIL"]
    assert len(orphans) == before["RUNNING"] and all(t.user_attrs["fail_kind"] == "interrupted" for t in orphans)
    assert f"{len(orphans)} orphaned trials re-queued" in err or not orphans
    assert _api_status(sqlite_url, "killed-cmp") == "completed"
    dispose_engines()


def test_ctrl_c_stops_a_comparison_as_interrupted(sqlite_url: str, tmp_path: Path) -> None:
    proc = _start(sqlite_url, "ctrl-c-cmp", tmp_path)
    _wait(sqlite_url, "ctrl-c-cmp", proc, complete=0, running=1)
    _signal_session(proc, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err.strip().splitlines()[-1] and "Traceback" not in err
    trials = _trials(sqlite_url, "ctrl-c-cmp")
    assert not [t for t in trials if t.state.name == "RUNNING"]
    assert all(t.user_attrs["fail_reason"] == "interrupted" for t in trials if t.state.name == "FAIL")
    assert _api_status(sqlite_url, "ctrl-c-cmp") == "interrupted"
    assert ProjectStore(sqlite_url).get_search("ctrl-c-cmp").status == "interrupted"
    dispose_engines()
