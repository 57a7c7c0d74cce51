"""The per-trial summaries behind the trial pages never show anything but Optuna's record.

A driver SIGKILLed between a trial's result (in Optuna) and its summary leaves a stale summary
row; the next read repairs it. A trial written by plain Optuna (no summary at all) appears in the
pages with exactly the keys `trial_row` gives it. Also here, cheap and in-process: ETags, the
workers a storage allows, and /docs' assets served locally.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

STUDY = "summaries"

# The driver: loads the study, finishes trial ``tid`` through effscale's recorder, and stops dead
# at the summary write (it says so on stdout and waits to be killed).
WRITER = """
import sys, time, types, optuna
from effscale.search.execution import recording
from effscale.storage import open_storage

def killed_here(study, trial):
    print("told", flush=True)
    time.sleep(600)

recording.record_trial = killed_here
study = optuna.load_study(study_name=sys.argv[2], storage=open_storage(sys.argv[1]))
recorder = recording.TrialRecorder(study, int(sys.argv[3]), spec=types.SimpleNamespace(objectives=()))  # a search's
recorder.finish({"epoch": 3, "val_top1": 0.875, "val_loss": 0.4, "seconds": 2.0, "images_per_s": 100.0,
                 "final": True}, error=False, stopping=False)
"""


@pytest.fixture(autouse=True)
def _settle_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A trial a read has seen is settled at the next read (`SETTLE_S` waits for late commits), so
    that these tests read through the settled path: only the trials above and the pending ones."""
    from effscale.search.records import summary_reads

    monkeypatch.setattr(summary_reads, "SETTLE_S", 0.0)


def _study(url: str) -> tuple[str, Any]:
    import optuna

    from effscale.storage import ProjectStore, open_storage

    ProjectStore(url)  # effscale's tables (the summaries among them), as a search creates them
    study = optuna.create_study(study_name=STUDY, storage=open_storage(url), direction="maximize")
    return url, study


@pytest.fixture
def study_url(sqlite_url: str) -> tuple[str, Any]:
    return _study(sqlite_url)


@pytest.fixture
def each_backend(storage_url: str) -> tuple[str, Any]:
    return _study(storage_url)


def _page(url: str, **params: Any) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from effscale.service import create_app

    res = TestClient(create_app(url)).get(f"/api/studies/{STUDY}/trials", params=params)
    assert res.status_code == 200, res.text
    return res.json()


def _stored_state(url: str, number: int) -> str:
    import sqlalchemy as sa

    from effscale.storage.engine import get_engine

    with get_engine(url).connect() as connection:
        return connection.execute(sa.text("SELECT state FROM effscale_trial_summaries WHERE number = :n"),
                                  {"n": number}).scalar_one()


def test_a_driver_killed_between_the_result_and_the_summary_leaves_nothing_stale(
        each_backend: tuple[str, Any], tmp_path: Path) -> None:
    from optuna.distributions import FloatDistribution

    url, study = each_backend
    study.enqueue_trial({"alpha": 1.2})
    trial = study.ask({"alpha": FloatDistribution(0.5, 3.0)})
    trial.set_user_attr("seed", 7)
    study.tell(study.ask({"alpha": FloatDistribution(0.5, 3.0)}), 0.5)  # a settled neighbour, number 1
    before = _page(url)
    assert [(r["number"], r["state"]) for r in before["trials"]] == [(0, "running"), (1, "complete")]
    assert _stored_state(url, 0) == "running"  # the read wrote its summary: running, no value
    assert _page(url)["total"] == 2  # read again: trial 1 is settled now, trial 0 pending

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, url, STUDY, str(trial._trial_id)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        line = writer.stdout.readline()  # type: ignore[union-attr]
        assert line == b"told\n", writer.stderr.read()  # type: ignore[union-attr]
    finally:
        os.kill(writer.pid, signal.SIGKILL)  # our own child, by pid: the real fault
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    assert _stored_state(url, 0) == "running"  # Optuna has the result, the summary does not

    after = _page(url, sort="-value")
    rows = {r["number"]: r for r in after["trials"]}
    assert after["total"] == 2 and len(rows) == 2
    assert rows[0]["state"] == "complete" and rows[0]["val_top1"] == 0.875
    assert rows[0]["seed"] == 7 and rows[0]["epochs"] == 3
    assert [r["number"] for r in after["trials"]] == [0, 1]  # 0.875 sorts before 0.5
    assert _stored_state(url, 0) == "complete"  # repaired in place: one row per trial
    assert _page(url, state="running")["total"] == 0 and _page(url, state="complete")["total"] == 2


def test_a_trial_written_by_plain_optuna_appears_with_the_rows_keys(each_backend: tuple[str, Any]) -> None:
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from effscale.search.records.rows import trial_row
    from effscale.search.records.summary_reads import SummaryReader
    from effscale.storage import open_storage

    url, study = each_backend
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.61, params={"alpha": 1.1},
                                 distributions={"alpha": FloatDistribution(0.5, 3.0)},
                                 user_attrs={"flops": 1234, "activations": 99, "latency_ms": 1.5}))
    page = _page(url, sort="flops")
    (row,) = page["trials"]
    expected = trial_row(study.trials[0])
    assert row.keys() >= expected.keys() and {k: row[k] for k in expected} == expected
    assert row["flops"] == 1234 and row["activations"] == 99 and row["latency_ms"] == 1.5
    storage = open_storage(url, read_only=True)
    _, rows = SummaryReader(storage, url, write=False).page(study._study_id, state=None, sort="number", limit=10, offset=0)
    assert rows == [expected]  # the CLI's `effscale trials` rows: exactly trial_row's keys


@pytest.mark.parametrize("settle_s", [0.0, 3600.0], ids=["settled", "unsettled"])
def test_what_a_reader_remembers_follows_every_change(each_backend: tuple[str, Any], settle_s: float,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Counts and totals remembered under a study's signature are read again when a trial is added,
    when a pending (unfinished) trial finishes, and when the database is replaced: whether each read
    settles what it saw (its signature then changes with the settled id) or nothing settles (the
    trials above it change it)."""
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from effscale.search.records import summary_reads
    from effscale.search.records.summary_reads import SummaryReader

    monkeypatch.setattr(summary_reads, "SETTLE_S", settle_s)
    from effscale.storage import open_storage
    from effscale.storage.engine import dispose_engines

    url, study = each_backend
    dist = {"alpha": FloatDistribution(0.5, 3.0)}
    for value in (0.5, 0.6):
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=value, params={"alpha": 1.0}, distributions=dist))
    running = study.ask(dist)
    reader = SummaryReader(open_storage(url, read_only=True), url, write=True)

    def seen() -> tuple[dict[str, int], int, float | None]:
        facts = reader.facts(study._study_id)
        total, rows = reader.page(study._study_id, state="complete", sort="-value", limit=1, offset=0)
        return facts.states, total, rows[0]["val_top1"] if rows else None

    assert seen() == ({"complete": 2, "running": 1}, 2, 0.6)
    assert seen() == ({"complete": 2, "running": 1}, 2, 0.6)  # settled: the pending trial is the running one
    study.tell(running, 0.9)
    assert seen() == ({"complete": 3}, 3, 0.9)
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.95, params={"alpha": 1.0}, distributions=dist))
    assert seen() == ({"complete": 4}, 4, 0.95)
    dispose_engines()  # as a server's engine is replaced: it remembers nothing of the old one
    assert seen() == ({"complete": 4}, 4, 0.95)


def test_answers_carry_etags_and_a_match_is_304(study_url: tuple[str, Any]) -> None:
    from fastapi.testclient import TestClient

    from effscale.service import create_app

    url, _ = study_url
    client = TestClient(create_app(url))
    first = client.get(f"/api/studies/{STUDY}")
    tag = first.headers["etag"]
    assert first.status_code == 200 and first.headers["cache-control"] == "no-cache"
    again = client.get(f"/api/studies/{STUDY}", headers={"If-None-Match": f'W/{tag}, "other"'})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    assert client.get(f"/api/studies/{STUDY}", headers={"If-None-Match": '"other"'}).status_code == 200
    assert "etag" not in client.get("/api/studies/no-such").headers  # errors carry none
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text and "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_workers_where_the_storage_allows_them(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from effscale.errors import UsageError
    from effscale.service.server import check_workers, default_workers
    from effscale.storage import ProjectStore
    from effscale.storage.engine import get_engine

    ProjectStore(sqlite_url)
    assert check_workers(sqlite_url, None, launching=False) == default_workers() >= 1
    with get_engine(sqlite_url).connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert check_workers(sqlite_url, 3, launching=False) == 3
    assert check_workers(sqlite_url, None, launching=True) == 1
    with pytest.raises(UsageError, match="--workers 2 with EFFSCALE_TOKEN set"):
        check_workers(sqlite_url, 2, launching=True)
