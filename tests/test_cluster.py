"""Joining a real multi-node Ray cluster from a separate driver process, fractional GPU scheduling,
a worker node lost mid-trial, and addresses that are not a cluster.

The cluster (tests/_ray_cluster.py, shared by these tests) is a 0-CPU head and two workers with 2
CPUs and 1 logical GPU each, all on 127.0.0.1: trials land on the workers only. The GPUs are
logical (scheduling only, no CUDA), so trials train on the CPU and record device "cpu".
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest

from conftest import CLUSTER_ENV
from effscale.storage import open_storage

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TESTS = Path(__file__).parent
DATA = "synthetic:classes=3,size=16,n=120"
ONE_SEED = ["--min-repeats", "1", "--max-repeats", "1", "--confirm-top", "0"]


def _search(*args: str) -> list[str]:
    return [sys.executable, "-m", "effscale.cli", "search", "tiny", "--data", DATA, "--constraint", "formula",
            "--tolerance", "10", "--batch-size", "32", *ONE_SEED, *args]


def _env() -> dict[str, str]:
    return {**os.environ, **CLUSTER_ENV, "PYTHONPATH": str(TESTS)}


def _trials(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=open_storage(url)).get_trials(deepcopy=False)


def _max_overlap(trials: list[optuna.trial.FrozenTrial]) -> int:
    """The most trials that ran at the same time, by the workers' own clocks."""
    events = sorted([(t.user_attrs["worker_started"], 1) for t in trials]
                    + [(t.user_attrs["worker_finished"], -1) for t in trials])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_search_joins_the_cluster_and_packs_fractional_gpus(ray_cluster, sqlite_url: str, tmp_path: Path) -> None:
    # Trials long enough (a few seconds each) that the four of them do overlap.
    proc = subprocess.run(
        _search("--alpha", "1.0,1.3", "--beta", "1.0,1.2", "--gamma", "1.0", "--epochs", "3",
                "--ray-address", ray_cluster.address, "--gpus-per-trial", "0.5", "--storage", sqlite_url,
                "--study", "on-cluster", "--json", "--data", "synthetic:classes=3,size=16,n=1500"),
        capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["trials"]["complete"] == 4
    trials = _trials(sqlite_url, "on-cluster")
    nodes = {t.user_attrs["node"].split("@")[0] for t in trials}
    workers = {w[:12] for w in ray_cluster.workers}
    assert nodes <= workers, (nodes, workers)  # never the 0-CPU head
    assert all(t.user_attrs["device"] == "cpu" for t in trials)  # logical GPUs: scheduling only
    # Half a GPU each: two trials share a worker's one GPU, so some worker ran two at once.
    by_node = {n: [t for t in trials if t.user_attrs["node"].startswith(n)] for n in nodes}
    assert max(_max_overlap(ts) for ts in by_node.values()) == 2


def test_a_worker_node_lost_mid_trial_is_retried_on_the_other(ray_cluster, sqlite_url: str, tmp_path: Path) -> None:
    # Trials of several seconds (1,500 images, 8 epochs), so the victim's trial is mid-training
    # when its node goes: one that had already finished would prove nothing.
    args = _search("--alpha", "1.0,1.3", "--beta", "1.0", "--gamma", "1.0", "--epochs", "8", "--gpus-per-trial", "1",
                   "--ray-address", ray_cluster.address, "--storage", sqlite_url, "--study", "node-lost", "--json",
                   "--data", "synthetic:classes=3,size=16,n=1500")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path,
                            start_new_session=True)
    try:
        victim, number = _wait_for_a_running_trial_node(sqlite_url, "node-lost", ray_cluster, proc)
        ray_cluster.command(f"remove {ray_cluster.workers.index(victim)}")
        at_removal = next(t for t in _trials(sqlite_url, "node-lost") if t.number == number).state.name
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
        ray_cluster.command("add")  # the next test gets two workers again
    assert at_removal == "RUNNING", f"trial {number} ended ({at_removal}) before its node was removed"
    assert proc.returncode == 0, err
    trials = _trials(sqlite_url, "node-lost")
    states = [t.state.name for t in trials]
    # Nothing lost, nothing duplicated: one COMPLETE per candidate, the lost one retried by Ray.
    assert states.count("COMPLETE") == 2 and len(trials) == 2, states
    assert {t.params["alpha"] for t in trials} == {1.0, 1.3}
    retried = next(t for t in trials if t.number == number)
    assert not retried.user_attrs["node"].startswith(victim[:12]), (retried.user_attrs["node"], victim)


def _wait_for_a_running_trial_node(url: str, study: str, cluster, proc: subprocess.Popen) -> tuple[str, int]:
    """The worker node on which a trial is training now, and that trial's number (each trial
    records its node at its first epoch, so a RUNNING trial says where it runs)."""
    deadline = time.time() + 300
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            running = [t for t in _trials(url, study) if t.state.name == "RUNNING" and t.user_attrs.get("node")]
        except KeyError:
            running = []
        if running:
            prefix = running[0].user_attrs["node"].split("@")[0]
            return next(w for w in cluster.workers if w.startswith(prefix)), running[0].number
        time.sleep(0.3)
    raise AssertionError("no trial started training on the cluster in time")


def test_an_address_that_is_not_ray_fails_within_the_connect_timeout(sqlite_url: str, tmp_path: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    stop = threading.Event()

    def accept() -> None:  # accepts TCP, answers nothing: not a Ray GCS
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except OSError:
                pass

    threading.Thread(target=accept, daemon=True).start()
    port = server.getsockname()[1]
    started = time.monotonic()
    try:
        proc = subprocess.run(
            _search("--alpha", "1.0", "--beta", "1.0", "--gamma", "1.0,1.3", "--epochs", "1",
                    "--ray-address", f"127.0.0.1:{port}", "--connect-timeout", "5", "--storage", sqlite_url),
            capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=180,
        )
    finally:
        stop.set()
        server.close()
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--connect-timeout 5" in lines[0] and "Traceback" not in proc.stderr
    assert elapsed < 60, elapsed  # a bound on hanging, not a speed target
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()  # nothing written
