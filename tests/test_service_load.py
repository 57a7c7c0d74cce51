"""A bounded load on a real ``effscale serve``: 20 clients paging through a 2,000-trial study's
trials while a writer keeps adding trials to it.

The study is written in bulk straight into Optuna's tables (`make_large_study`: Optuna's
``add_trials`` takes about two minutes for 2,000 trials on two cores), with effscale's per-trial
attributes, per-epoch history included, and read back through Optuna to check it. The server is the real
command in a subprocess; the writer adds trials through Optuna's API while the clients run.
Asserted: every response is a 200 that matches the published schema, each page is sorted and
filtered as asked and is as full as the total allows, and nothing ran past a hard time limit.
Latencies (p50/p95) are printed, not asserted: `benchmarks/bench_service_load.py` compares them.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from _large_study import add_trials_until, make_large_study, trial_state
from effscale.search.records.queries import SORT_FIELDS

pytestmark = pytest.mark.slow

STUDY = "load-2000"
N_TRIALS = 2000
CLIENTS, REQUESTS_EACH = 20, 10  # a fixed count; benchmarks/bench_service_load.py compares latencies
HARD_LIMIT_S = 300.0
WRITER_PAUSE_S = 0.05  # a trial every 50 ms: a search far busier than any real one, whose each trial a page repairs
SORTS = ("number", "-number", "value", "-value", "flops", "-flops")
STATES = (None, None, "complete", "pruned", "fail")
LIMITS = (10, 25, 50)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(url: str, tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``effscale serve`` on a free local port; returns the process and its base URL once it answers."""
    import httpx

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("EFFSCALE_TOKEN", "EFFSCALE_STORAGE")}
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "effscale.cli", "serve", "--storage", url, "--port", str(port),
         "--state-dir", str(tmp_path / "state")],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
    )
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, (tmp_path / "serve.log").read_text()
        try:
            if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "effscale serve did not answer /healthz in 120 s"
        time.sleep(0.2)


def _check_page(body: dict[str, Any], params: dict[str, Any], floor: int) -> None:
    """A page as asked: the schema, the filter, the order, and as full as the total allows."""
    from effscale.service.schemas import TrialPage

    page = TrialPage.model_validate(body)
    rows = body["trials"]
    assert page.total >= floor and page.limit == params["limit"] and page.offset == params["offset"]
    # Trials are only added, so the page (read after the count) is at least as full as the count says.
    assert min(params["limit"], max(page.total - params["offset"], 0)) <= len(rows) <= params["limit"]
    if "state" in params:
        assert all(r["state"] == params["state"] for r in rows)
    sort = params["sort"]
    field, descending = SORT_FIELDS[sort.lstrip("-")], sort.startswith("-")
    keys = [(r[field] is None, (-1 if descending else 1) * (r[field] or 0), r["number"]) for r in rows]
    present = [k for k in keys if not k[0]]
    assert all(a[1] < b[1] or (a[1] == b[1] and (a[2] > b[2] if descending else a[2] < b[2]))
               for a, b in zip(present, present[1:])), (sort, keys)
    assert keys == sorted(keys, key=lambda k: k[0])  # nulls last, in number order
    missing = [k[2] for k in keys if k[0]]
    assert missing == sorted(missing)


def _client(base: str, study_totals: dict[Any, int], seed: int, deadline: float, out: dict[str, list[Any]]) -> None:
    import httpx

    rng = random.Random(seed)
    with httpx.Client(base_url=base, timeout=120) as http:
        for _ in range(REQUESTS_EACH):
            if time.monotonic() > deadline:
                out["errors"].append(f"client {seed}: hard time limit reached")
                return
            state = rng.choice(STATES)
            params: dict[str, Any] = {"sort": rng.choice(SORTS), "limit": rng.choice(LIMITS)}
            params["offset"] = rng.randrange(0, study_totals[state] + 20)
            if state:
                params["state"] = state
            started = time.perf_counter()
            res = http.get(f"/api/studies/{STUDY}/trials", params=params)
            out["latency"].append(time.perf_counter() - started)
            out["status"].append(res.status_code)
            try:
                assert res.status_code == 200, res.text[:300]
                _check_page(res.json(), params, study_totals[state])
            except AssertionError as exc:
                out["errors"].append(f"{params}: {exc}")


@pytest.mark.timeout(int(HARD_LIMIT_S) + 300)
def test_trial_pages_under_concurrent_load_while_a_writer_adds_trials(tmp_path: Path) -> None:
    import httpx

    url = f"sqlite:///{tmp_path / 'load.db'}"
    make_large_study(url, N_TRIALS, study=STUDY)
    process, base = _serve(url, tmp_path)
    try:
        totals = {s: httpx.get(f"{base}/api/studies/{STUDY}/trials", params={"limit": 1, **({"state": s} if s else {})},
                               timeout=60).json()["total"] for s in set(STATES)}
        expected = {s: sum(trial_state(i, N_TRIALS) == s for i in range(N_TRIALS)) for s in ("complete", "fail")}
        assert totals[None] == N_TRIALS and totals["complete"] == expected["complete"] == 1489
        assert totals["fail"] == expected["fail"] == 198
        out: dict[str, list[Any]] = {"latency": [], "status": [], "errors": []}
        stop, added, writer_errors = threading.Event(), [], []
        writer = threading.Thread(target=add_trials_until, daemon=True,
                                  args=(url, STUDY, N_TRIALS, stop, added, writer_errors, WRITER_PAUSE_S))
        deadline = time.monotonic() + HARD_LIMIT_S
        clients = [threading.Thread(target=_client, args=(base, totals, seed, deadline, out), daemon=True)
                   for seed in range(CLIENTS)]
        started = time.monotonic()
        writer.start()
        for c in clients:
            c.start()
        for c in clients:
            c.join(timeout=max(1.0, deadline + 30 - time.monotonic()))
        elapsed = time.monotonic() - started
        stop.set()
        writer.join(timeout=60)
        assert not any(c.is_alive() for c in clients), "clients still running past the hard limit"
        final = httpx.get(f"{base}/api/studies/{STUDY}/trials", params={"limit": 1}, timeout=60).json()["total"]
    finally:
        process.terminate()
        process.wait(timeout=30)
    latencies = sorted(out["latency"])
    p50, p95 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.95)]
    print(f"\n{len(latencies)} requests from {CLIENTS} clients in {elapsed:.1f} s ({len(latencies) / elapsed:.1f}/s), "
          f"{len(added)} trials written meanwhile: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
          f"max {latencies[-1] * 1000:.0f} ms")
    assert not writer_errors and not out["errors"], (writer_errors + out["errors"])[:5]
    assert len(out["status"]) == CLIENTS * REQUESTS_EACH and set(out["status"]) == {200}
    assert added and final == N_TRIALS + len(added)  # the writer really wrote during the load
