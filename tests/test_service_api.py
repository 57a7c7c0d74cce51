"""The REST API, in-process (`TestClient`), against real databases.

* Contract tests run on SQLite and PostgreSQL over a search written exactly as the data contract
  says (`make_fake_search`: every trial state, an alias, a family), so filters and counts are exact.
* A real small search (``effscale search tiny ...``, launched through ``POST /api/searches``) is
  checked against what Optuna and the store hold.
* A trial is one row under one set of names (`effscale.search.records.queries.trial_row`): the API's and
  ``effscale trials --json``'s rows are the same dicts.
* Auth: no token configured, no header, a wrong token, the right token. Launcher: process group
  terminated on cancel. optuna-dashboard reads the same storage and sees α, β, γ as parameters.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from _service_fixtures import (
    FAKE_STUDY,
    REAL_SEARCH_CONFIG,
    FakeLauncher,
    REAL_STUDY,
    make_fake_search,
    shared_search_db,
    summarize,
)
from effscale.search.records.queries import RUN_ATTRS, trial_row
from effscale.service import create_app
from effscale.service.launcher import SearchLauncher
from effscale.service.schemas import SearchConfig, TrialSummary
from effscale.storage import ProjectStore, dispose_engines

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def fake_db(storage_url: str) -> dict[str, Any]:
    """A fake search in a clean SQLite file or PostgreSQL schema."""
    facts = make_fake_search(storage_url)
    return {"url": storage_url, **facts}


@pytest.fixture
def quick_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The same fake search in SQLite, copied from a file built once per session (fast)."""
    url, study = shared_search_db(tmp_path_factory.getbasetemp(), kind="fake")
    yield {"url": url, "study": study}
    dispose_engines()


def _client(url: str) -> TestClient:
    launcher = FakeLauncher()
    c = TestClient(create_app(url, token=TOKEN, launcher=launcher))
    c.launcher = launcher  # type: ignore[attr-defined]
    return c


@pytest.fixture
def client(fake_db: dict[str, Any]) -> TestClient:
    """A client on the fake search, on each backend (contract tests)."""
    return _client(fake_db["url"])


@pytest.fixture
def qclient(quick_db: dict[str, Any]) -> TestClient:
    """A client on the fake search in SQLite only (validation and auth tests)."""
    return _client(quick_db["url"])


# ---------------------------------------------------------------------------------------------
# reading


def test_healthz(qclient: TestClient) -> None:
    body = qclient.get("/healthz").json()
    assert body["status"] == "ok" and body["version"]


def test_list_studies_reports_progress_best_and_status(client: TestClient, fake_db: dict[str, Any]) -> None:
    studies = client.get("/api/studies").json()["studies"]
    assert [s["name"] for s in studies] == [FAKE_STUDY]
    study = studies[0]
    assert study["status"] == "completed" and study["baseline"] == "tiny" and study["has_family"]
    assert study["n_trials"] == fake_db["n_trials"] == 6
    p = study["progress"]
    assert (p["done"], p["running"], p["left"]) == (5, 1, 1)  # unique 7 − 6 networks started
    assert (p["complete"], p["pruned"], p["fail"], p["networks_done"]) == (3, 1, 1, 5)
    assert (p["grid"], p["feasible"], p["unique"], p["aliases"]) == (8, 8, 7, 1)
    # No stored verdict (an older effscale's search): the best single trial, one repeat, said so.
    assert study["best_source"] == "single trial" and study["fidelity"] is None
    best = study["best"]
    assert math.isclose(best["val_top1_mean"], fake_db["best_top1"]) and (best["val_top1_stderr"], best["repeats"]) == (None, 1)
    assert "val_top1" not in best  # never a bare top-1


def test_study_detail_has_config_counts_and_direction(client: TestClient) -> None:
    body = client.get(f"/api/studies/{FAKE_STUDY}").json()
    assert body["config"]["grid"] == {"alpha": [1.0, 1.1], "beta": [1.0, 1.1], "gamma": [1.0, 1.15]}
    assert body["config"]["constraint"] == "formula"
    assert body["counts"] == {"grid": 8, "feasible": 8, "unique": 7, "aliases": 1}
    assert body["directions"] == ["maximize"]
    assert body["started_at"] and body["finished_at"] and body["cancel_requested"] is False


@pytest.mark.parametrize("state,count", [("complete", 3), ("pruned", 1), ("fail", 1), ("running", 1), ("waiting", 0)])
def test_trials_filtered_by_state(client: TestClient, state: str, count: int) -> None:
    body = client.get(f"/api/studies/{FAKE_STUDY}/trials", params={"state": state}).json()
    assert body["total"] == count == len(body["trials"])
    assert all(t["state"] == state for t in body["trials"])


def test_trials_sorted_and_paginated(client: TestClient) -> None:
    url = f"/api/studies/{FAKE_STUDY}/trials"
    by_value = client.get(url, params={"sort": "-value"}).json()["trials"]
    values = [t["val_top1"] for t in by_value if t["val_top1"] is not None]
    assert values == sorted(values, reverse=True) and by_value[-1]["val_top1"] is None  # nulls last
    by_flops = [t["flops"] for t in client.get(url, params={"sort": "flops"}).json()["trials"]]
    assert by_flops == sorted(by_flops)
    numbers = [t["number"] for t in client.get(url, params={"sort": "-number"}).json()["trials"]]
    assert numbers == [5, 4, 3, 2, 1, 0]
    page = client.get(url, params={"limit": 2, "offset": 2}).json()
    assert page["total"] == 6 and [t["number"] for t in page["trials"]] == [2, 3]
    assert client.get(url, params={"offset": 10}).json()["trials"] == []


def _add_awkward_trials(url: str) -> None:
    """Trials whose sort keys are edge cases: an infinite objective, a tie, NaN and missing
    attributes, a last epoch that is NaN, and a trial waiting with no attributes at all."""
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from effscale.storage import open_storage

    storage = open_storage(url)
    study = optuna.load_study(study_name=FAKE_STUDY, storage=storage)
    dist = {"alpha": FloatDistribution(0.5, 2.0)}
    add = lambda **kw: study.add_trial(create_trial(params={"alpha": 1.0}, distributions=dist, **kw))  # noqa: E731
    add(state=TrialState.COMPLETE, value=float("inf"), user_attrs={"val_top1": 0.99, "flops": 5})
    add(state=TrialState.COMPLETE, value=0.62, user_attrs={"flops": 1_609_375})  # ties trial 1 on both keys
    add(state=TrialState.PRUNED, user_attrs={"flops": float("nan"), "val_top1": float("nan")},
        intermediate_values={1: 0.3, 2: 0.35})
    add(state=TrialState.FAIL, user_attrs={"flops": 10**12}, intermediate_values={1: 0.5, 2: float("nan")})
    add(state=TrialState.FAIL, user_attrs={"flops": -3, "val_top1": True})
    study.enqueue_trial({"alpha": 1.0})


def _reference_order(rows: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    """The documented order: by the row's field, ties by number (both in the sort's direction),
    rows without the field last, in number order."""
    from effscale.search.records.queries import SORT_FIELDS

    field = SORT_FIELDS[sort.lstrip("-")]
    present = sorted((r for r in rows if r[field] is not None), key=lambda r: (r[field], r["number"]),
                     reverse=sort.startswith("-"))
    return present + sorted((r for r in rows if r[field] is None), key=lambda r: r["number"])


def test_trial_pages_come_from_sql_in_the_documented_order(client: TestClient, fake_db: dict[str, Any]) -> None:
    """Every sort, filter and page of the SQL query equals sorting all `trial_row`s in Python."""
    from effscale.storage import open_storage

    _add_awkward_trials(fake_db["url"])
    storage = open_storage(fake_db["url"])
    every = [trial_row(t) for t in storage.get_all_trials(storage.get_study_id_from_name(FAKE_STUDY))]
    assert len(every) == 12
    url = f"/api/studies/{FAKE_STUDY}/trials"
    for state in (None, "complete", "pruned", "fail", "running", "waiting"):
        rows = [r for r in every if state is None or r["state"] == state]
        for sort in ("number", "-number", "value", "-value", "flops", "-flops"):
            expected = _reference_order(rows, sort)
            for limit, offset in ((100, 0), (3, 2), (5, 10)):
                params = {"sort": sort, "limit": limit, "offset": offset, **({"state": state} if state else {})}
                body = client.get(url, params=params).json()
                assert body["total"] == len(rows)
                assert body["trials"] == expected[offset : offset + limit], (state, sort, limit, offset)


def test_trial_row_has_the_table_columns(client: TestClient) -> None:
    row = client.get(f"/api/studies/{FAKE_STUDY}/trials/3").json()
    for key in ("alpha", "beta", "gamma", "depth", "width", "resolution", "flops_ratio",
                "formula_ratio", "params", "flops", "val_top1", "val_loss", "train_seconds", "images_per_s",
                "epochs", "duration_s", "arch_id", "state", "aliases", "representative_rule"):
        assert row[key] is not None, key
    assert row["state"] == "complete"
    # The response model documents every field the row builder sends, and nothing else.
    assert set(row) == set(TrialSummary.model_fields)
    for key in RUN_ATTRS:  # absent in this search
        assert row[key] is None, key


def test_trial_row_passes_run_attributes_through_and_is_json_safe() -> None:
    import optuna
    from optuna.distributions import FloatDistribution

    dist = FloatDistribution(0.5, 2.0)
    trial = optuna.trial.create_trial(
        state=optuna.trial.TrialState.FAIL,
        params={"alpha": 1.1, "beta": 1.0, "gamma": 1.15},
        distributions={"alpha": dist, "beta": dist, "gamma": dist},
        user_attrs={
            "repeat": 2, "seed": 7, "confirmation": True, "node": "10.0.0.3", "fail_reason": "worker died",
            "batch_size": 64, "lr": 0.05, "flops": float("nan"), "val_loss": float("inf"),
            "aliases": [[1.1, 1.0, 1.15], [1.2, float("nan"), 1.15]], "train_seconds": 3.5,
        },
    )
    row = trial_row(trial)
    assert {k: row[k] for k in RUN_ATTRS} == {
        "repeat": 2, "seed": 7, "confirmation": True, "node": "10.0.0.3", "fail_reason": "worker died",
        "batch_size": 64, "lr": 0.05,
    }
    assert row["state"] == "fail" and row["alpha"] == 1.1 and row["train_seconds"] == 3.5
    assert row["flops"] is None and row["val_loss"] is None and row["val_top1"] is None
    assert row["aliases"] == [[1.1, 1.0, 1.15], [1.2, None, 1.15]]
    json.dumps(row, allow_nan=False)  # raises on a NaN that slipped through
    TrialSummary.model_validate(row)
    # A wrong type is dropped rather than passed on under a promised type.
    odd = optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, user_attrs={"confirmation": "yes", "node": 3, "seed": "x"})
    assert (trial_row(odd)["confirmation"], trial_row(odd)["node"], trial_row(odd)["seed"]) == (None, None, None)


def test_cli_trials_json_prints_the_api_rows(qclient: TestClient, quick_db: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from effscale.cli import TRIAL_COLUMNS, main

    api_rows = qclient.get(f"/api/studies/{FAKE_STUDY}/trials", params={"sort": "number"}).json()["trials"]
    assert main(["trials", "--storage", quick_db["url"], "--study", FAKE_STUDY, "--sort", "number", "--json"]) == 0
    # the same rows, less the API's `budget` (not among `effscale trials --json`'s documented keys)
    assert json.loads(capsys.readouterr().out) == [{k: v for k, v in r.items() if k != "budget"} for r in api_rows]
    # best first: the CLI's `--sort value` is the API's `-value` for these (distinct) values
    assert main(["trials", "--storage", quick_db["url"], "--study", FAKE_STUDY, "--json"]) == 0
    cli_best = [r["val_top1"] for r in json.loads(capsys.readouterr().out)]
    api_best = [t["val_top1"] for t in qclient.get(f"/api/studies/{FAKE_STUDY}/trials", params={"sort": "-value"}).json()["trials"]]
    assert cli_best == api_best
    # the table shows a subset of the same fields, under the same names
    assert main(["trials", "--storage", quick_db["url"], "--study", FAKE_STUDY]) == 0
    table = capsys.readouterr().out
    assert set(TRIAL_COLUMNS) <= set(api_rows[0]) and "val_top1" in table and "train_seconds" in table


def test_trial_curve(client: TestClient) -> None:
    curve = client.get(f"/api/studies/{FAKE_STUDY}/trials/0/curve").json()
    assert [p["epoch"] for p in curve["points"]] == [1, 2, 3]
    assert all(0 <= p["val_top1"] <= 1 and "val_loss" in p and "lr" in p for p in curve["points"])
    curves = client.get(f"/api/studies/{FAKE_STUDY}/curves").json()["curves"]
    assert len(curves) == 6 and [len(c["points"]) for c in curves] == [3, 3, 1, 3, 0, 2]


def test_candidates_join_val_top1_and_mark_aliases(client: TestClient) -> None:
    body = client.get(f"/api/studies/{FAKE_STUDY}/candidates").json()
    cands = body["candidates"]
    assert len(cands) == 8 and body["grid"]["gamma"] == [1.0, 1.15]
    assert sum(c["alias"] for c in cands) == 1 and all(c["feasible"] for c in cands)
    alias = next(c for c in cands if c["alias"])
    twin = next(c for c in cands if c["representative"] and c["arch_id"] == alias["arch_id"])
    assert alias["trial_number"] == twin["trial_number"] is not None
    assert alias["val_top1"] == twin["val_top1"] is not None and "top1" not in alias
    # one repeat per network here: a mean of one, no standard error
    assert (alias["repeats"], alias["val_top1_stderr"], alias["trial_numbers"]) == (1, None, [alias["trial_number"]])
    assert body["constraint"] == "formula" and body["target_ratio"] == 2.0


def test_family_as_json_and_as_a_file(client: TestClient) -> None:
    family = client.get(f"/api/studies/{FAKE_STUDY}/family").json()
    assert family["format"] == "effscale.family/1"
    assert [m["name"] for m in family["members"]] == [f"B{i}" for i in range(8)]
    res = client.get(f"/api/studies/{FAKE_STUDY}/family/download")
    assert res.status_code == 200
    assert res.headers["content-disposition"] == f'attachment; filename="family-{FAKE_STUDY}.json"'
    assert json.loads(res.content) == family


def test_a_family_member_exports_as_a_zip_behind_the_token(qclient: TestClient) -> None:
    """`effscale export`'s files for one member, checked, zipped: only with the launch token."""
    import io
    import zipfile

    url = f"/api/studies/{FAKE_STUDY}/family/B1/export/python"
    assert qclient.get(url).status_code == 401
    assert qclient.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    res = qclient.get(url, headers=AUTH)
    assert res.status_code == 200, res.text
    assert res.headers["content-disposition"] == 'attachment; filename="tiny-B1.python.zip"'
    files = zipfile.ZipFile(io.BytesIO(res.content))
    assert sorted(files.namelist()) == ["tiny-B1.pt", "tiny-B1.py", "tiny-B1.python.json"]
    sidecar = json.loads(files.read("tiny-B1.python.json"))
    assert sidecar["member"] == "B1" and sidecar["coefficients"]["gamma"] == 1.15 and "matches" in sidecar["check"]
    assert "import effscale" not in files.read("tiny-B1.py").decode()
    res = qclient.get(f"/api/studies/{FAKE_STUDY}/family/B9/export/python", headers=AUTH)
    assert res.status_code == 404 and "no member 'B9'; it has B0, B1" in res.json()["detail"]
    assert qclient.get(f"/api/studies/{FAKE_STUDY}/family/B1/export/tflite", headers=AUTH).status_code == 422


def test_unknown_things_are_404_with_a_clear_detail(client: TestClient, fake_db: dict[str, Any]) -> None:
    res = client.get("/api/studies/nope")
    assert res.status_code == 404 and "study 'nope' not found" in res.json()["detail"]
    res = client.get(f"/api/studies/{FAKE_STUDY}/trials/99")
    assert res.status_code == 404 and "trial 99 not found" in res.json()["detail"]
    assert client.get(f"/api/studies/{FAKE_STUDY}/trials/99/curve").status_code == 404
    assert client.get("/api/searches/nope").status_code == 404
    # a study without a family
    import optuna

    from effscale.storage import open_storage

    optuna.create_study(storage=open_storage(fake_db["url"]), study_name="bare", direction="maximize")
    res = client.get("/api/studies/bare/family")
    assert res.status_code == 404 and "no family yet" in res.json()["detail"]
    assert client.get("/api/studies/bare").json()["status"] == "unknown"


@pytest.mark.parametrize(
    "params,field",
    [
        ({"state": "bogus"}, "state"),
        ({"sort": "alpha"}, "sort"),
        ({"limit": 0}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"limit": 10**6}, "limit"),
    ],
)
def test_bad_query_parameters_are_422(qclient: TestClient, params: dict[str, Any], field: str) -> None:
    res = qclient.get(f"/api/studies/{FAKE_STUDY}/trials", params=params)
    assert res.status_code == 422
    body = res.json()
    assert f"query.{field}" in body["message"] and body["detail"][0]["loc"] == ["query", field]


def test_bad_path_parameters_are_422(qclient: TestClient) -> None:
    assert qclient.get(f"/api/studies/{FAKE_STUDY}/trials/abc").status_code == 422
    assert qclient.get(f"/api/studies/{FAKE_STUDY}/trials/-1").status_code == 422


# ---------------------------------------------------------------------------------------------
# launching and cancelling


GOOD = dict(REAL_SEARCH_CONFIG, study="launched-1")


def test_launch_needs_a_configured_token(quick_db: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EFFSCALE_TOKEN", raising=False)
    launcher = FakeLauncher()
    c = TestClient(create_app(quick_db["url"], launcher=launcher))
    for res in (c.post("/api/searches", json=GOOD, headers=AUTH), c.post(f"/api/searches/{FAKE_STUDY}/cancel"),
                c.get(f"/api/searches/{FAKE_STUDY}/log", headers=AUTH)):
        assert res.status_code == 403
        assert "EFFSCALE_TOKEN" in res.json()["detail"] and "Authorization: Bearer" in res.json()["detail"]
    assert launcher.launched == [] and launcher.cancelled == []


def test_token_comes_from_the_environment(quick_db: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EFFSCALE_TOKEN", "from-env")
    c = TestClient(create_app(quick_db["url"], launcher=FakeLauncher()))
    assert c.post("/api/searches", json=GOOD, headers={"Authorization": "Bearer from-env"}).status_code == 202


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer "}],
    ids=["no-header", "wrong-token", "wrong-scheme", "empty-token"],
)
def test_launch_and_cancel_refuse_without_the_right_token(qclient: TestClient, headers: dict[str, str]) -> None:
    for res in (qclient.post("/api/searches", json=GOOD, headers=headers),
                qclient.post(f"/api/searches/{FAKE_STUDY}/cancel", headers=headers),
                qclient.get(f"/api/searches/{FAKE_STUDY}/log", headers=headers)):
        assert res.status_code == 401, res.text
        assert res.headers["www-authenticate"] == "Bearer"
    assert qclient.launcher.launched == [] and qclient.launcher.cancelled == []  # type: ignore[attr-defined]


def test_launch_with_the_right_token(qclient: TestClient, quick_db: dict[str, Any]) -> None:
    res = qclient.post("/api/searches", json=GOOD, headers=AUTH)
    assert res.status_code == 202, res.text
    body = res.json()
    assert body == {"study_name": "launched-1", "status": "starting", "status_url": "/api/searches/launched-1",
                    "study_url": "/api/studies/launched-1", "pid": 4242}
    ((study, argv),) = qclient.launcher.launched  # type: ignore[attr-defined]
    assert study == "launched-1"
    assert argv[:3] == ["tiny", "--data", "synthetic:classes=3,size=16,n=120"]
    # The storage URL (a password, maybe) never rides on the command line: the launcher sets
    # EFFSCALE_STORAGE in the search's environment instead.
    assert "--storage" not in argv and argv[argv.index("--study") + 1] == "launched-1"
    assert argv[argv.index("--alpha") + 1] == "1.0,1.1,1.2" and argv[argv.index("--constraint") + 1] == "formula"
    assert argv[argv.index("--min-repeats") + 1] == "2" and argv[argv.index("--confirm-top") + 1] == "1"
    # status and the studies list know it before the search has written anything
    status = qclient.get(body["status_url"]).json()
    assert status["status"] == "starting" and status["launched_here"] and status["pid"] == 4242
    assert "launched-1" in [s["name"] for s in qclient.get("/api/studies").json()["studies"]]
    # the same name again is a conflict
    assert qclient.post("/api/searches", json=GOOD, headers=AUTH).status_code == 409
    res = qclient.post("/api/searches", json=dict(GOOD, study=FAKE_STUDY), headers=AUTH)
    assert res.status_code == 409 and "already exists" in res.json()["detail"]
    # without a name, one is generated from the baseline
    res = qclient.post("/api/searches", json={k: v for k, v in GOOD.items() if k != "study"}, headers=AUTH)
    assert res.status_code == 202 and res.json()["study_name"].startswith("tiny-")


def test_cancel_with_the_right_token(qclient: TestClient, quick_db: dict[str, Any]) -> None:
    store = ProjectStore(quick_db["url"])
    store.set_status(FAKE_STUDY, "running")
    res = qclient.post(f"/api/searches/{FAKE_STUDY}/cancel", headers=AUTH)
    assert res.status_code == 202, res.text
    assert res.json()["cancel_requested"] is True
    assert store.get_search(FAKE_STUDY).cancel_requested is True
    assert qclient.launcher.cancelled == [FAKE_STUDY]  # type: ignore[attr-defined]
    store.set_status(FAKE_STUDY, "cancelled")
    res = qclient.post(f"/api/searches/{FAKE_STUDY}/cancel", headers=AUTH)
    assert res.status_code == 409 and "not running" in res.json()["detail"]
    assert qclient.post("/api/searches/nope/cancel", headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"baseline": None}, "baseline"),
        ({"baseline": "rm -rf /"}, "baseline"),
        ({"data": "http://example.com/x"}, "unknown data source"),
        ({"data": "synthetic:classes=x"}, "is not an integer"),
        ({"alpha": "1.0:0.5:0.1"}, "--alpha '1.0:0.5:0.1' is not a grid"),
        ({"alpha": "0.5,1.0"}, "--alpha contains 0.5"),  # the CLI refuses it, so must the API
        ({"alpha": "1.0:2.0:0"}, "is not a grid"),
        ({"beta": "a,b"}, "is not a grid"),
        ({"gamma": "1:100000:0.0001"}, "use a coarser step"),
        ({"epochs": 2, "steps": 10}, "not both"),
        ({"epochs": 0}, "--epochs 0 must be >= 1"),
        ({"tolerance": -1}, "--tolerance -1 must be >= 0"),
        ({"target_ratio": 0}, "--target-ratio 0 must be > 0"),
        ({"label_smoothing": 1.0}, "--label-smoothing 1 must be < 1"),
        ({"constraint": "exact"}, "constraint"),
        ({"study": "../etc"}, "study"),
        ({"unknown_option": 1}, "unknown_option"),
        ({"gpus_per_trial": "lots"}, "gpus_per_trial"),
        ({"storage": "sqlite:///elsewhere.db"}, "storage"),  # the server's, never the caller's
    ],
)
def test_bad_search_configs_are_422_with_a_message(qclient: TestClient, change: dict[str, Any], needle: str) -> None:
    body = {**GOOD, **change}
    body = {k: v for k, v in body.items() if v is not None}
    res = qclient.post("/api/searches", json=body, headers=AUTH)
    assert res.status_code == 422, res.text
    assert needle in res.json()["message"], res.json()["message"]
    assert qclient.launcher.launched == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("raw", ['{"baseline": "tiny", "data": "digits", "target_ratio": NaN}', "not json", "[]", '"x"'])
def test_malformed_bodies_are_422(qclient: TestClient, raw: str) -> None:
    res = qclient.post("/api/searches", content=raw, headers={**AUTH, "Content-Type": "application/json"})
    assert res.status_code == 422, res.text


def test_grid_may_be_a_json_list() -> None:
    config = SearchConfig(baseline="tiny", data="digits", alpha=[1.0, 1.2], beta="1.0:1.2:0.1")
    argv = config.to_argv(study="s", ray_address="ray-head:6379")
    assert argv[argv.index("--alpha") + 1] == "1.0,1.2" and argv[argv.index("--beta") + 1] == "1.0:1.2:0.1"
    assert argv[argv.index("--ray-address") + 1] == "ray-head:6379"


def test_argv_parses_with_the_cli() -> None:
    from effscale.cli import build_parser

    parser = build_parser()
    config = SearchConfig(**{**GOOD, "seed": 3, "scheduler": "asha", "max_concurrent": 2, "cpus_per_trial": 1.0,
                             "gpus_per_trial": 0.5, "batch_size": 32, "target_ratio": 2.0, "max_phi": 3,
                             "lr": 0.1, "optimizer": "rmsprop", "grace_period": 1, "max_retries": 0,
                             "compile": True, "min_repeats": 1, "max_repeats": 1, "confirm_top": 0})
    argv = config.to_argv(study="s", ray_address="auto")
    args = parser.parse_args(["search", *argv])
    assert args.command == "search" and args.study == "s" and not hasattr(args, "storage")
    assert (args.alpha, args.epochs, args.lr, args.optimizer, args.max_retries) == ("1.0,1.1,1.2", 1, 0.1, "rmsprop", 0)
    assert (args.ray_address, args.scheduler, float(args.gpus_per_trial), args.compile) == ("auto", "asha", 0.5, True)
    parser.parse_args(["search", *SearchLauncher("sqlite:///x.db").command(argv)[4:]])  # with --json


def test_request_schema_is_the_cli_settings() -> None:
    """One source of truth: every search setting the API takes is a flag of `effscale search`, with
    the same default and help, and the server-owned ones (storage, Ray address, output file) are not
    in the API."""
    import dataclasses

    from effscale._settings import flag, settings_of
    from effscale.cli import build_parser
    from effscale.search.planning.options import SearchOptions
    from effscale.trainer.recipe import ProxyRecipe

    search = next(a for a in build_parser()._subparsers._group_actions[0].choices.items() if a[0] == "search")[1]
    cli_flags = {opt for action in search._actions for opt in action.option_strings} | {"baseline"}
    properties = SearchConfig.model_json_schema()["properties"]
    for cls in (SearchOptions, ProxyRecipe):
        for f, meta in settings_of(cls):
            assert (f.name if meta.positional else flag(f.name)) in cli_flags, f.name
            assert (f.name in properties) == meta.api, f.name
            if meta.api:
                assert properties[f.name]["description"] == meta.help
    assert {"storage", "ray_address", "out"}.isdisjoint(properties)
    assert {f.name for f in dataclasses.fields(ProxyRecipe)} <= set(properties)


# ---------------------------------------------------------------------------------------------
# secrets


def test_password_never_appears_in_responses_or_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cr3t-pw-xyz"
    url = f"postgresql+psycopg2://someone:{secret}@127.0.0.1:9/nodb"  # port 9: refused at once
    caplog.set_level(logging.DEBUG)
    c = TestClient(create_app(url, token=TOKEN, launcher=FakeLauncher()))
    responses = [
        c.get("/healthz"),
        c.get("/api/studies"),
        c.get("/api/studies/x"),
        c.get("/api/studies/x/trials"),
        c.post("/api/searches", json=GOOD, headers=AUTH),
        c.post("/api/searches/x/cancel", headers=AUTH),
        c.get("/openapi.json"),
    ]
    assert responses[0].status_code == 503 and responses[0].json()["storage"] == "postgresql+psycopg2://someone:***@127.0.0.1:9/nodb"
    for res in responses[1:-1]:
        assert res.status_code == 503, (res.request.url, res.text)
    for res in responses:
        assert secret not in res.text
    assert secret not in caplog.text
    launcher = SearchLauncher(url, state_dir=tmp_path)
    assert secret not in launcher.redacted(["tiny", "--storage", url])


def test_malformed_storage_url_is_refused_at_startup() -> None:
    from effscale.errors import UsageError

    with pytest.raises(UsageError) as info:
        create_app("mysql://u:hunter2@h/db")
    assert "hunter2" not in str(info.value)


# ---------------------------------------------------------------------------------------------
# the launcher's processes


class _SleepLauncher(SearchLauncher):
    """Runs a stand-in 'search' that starts a child and sleeps, ignoring the cancel flag."""

    def command(self, argv: list[str]) -> list[str]:
        script = (
            "import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
            "print('child', child.pid, flush=True)\n"
            "time.sleep(120)\n"
        )
        return [self.python, "-c", script]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def test_cancel_terminates_the_process_group_after_the_grace_period(sqlite_url: str, tmp_path: Path) -> None:
    store = ProjectStore(sqlite_url)
    store.create_search("sleepy", config={"baseline": "tiny"}, status="running")
    launcher = _SleepLauncher(sqlite_url, state_dir=tmp_path, grace_period_s=0.5, kill_after_s=5)
    c = TestClient(create_app(sqlite_url, token=TOKEN, launcher=launcher))
    info = launcher.launch("sleepy", ["tiny"])
    deadline = time.monotonic() + 20
    log_file = next(tmp_path.glob("runs/sleepy-*/search.log"))
    while "child" not in log_file.read_text():
        assert time.monotonic() < deadline, "stand-in search did not start"
        time.sleep(0.05)
    child = int(log_file.read_text().split()[1])
    assert _alive(info["pid"]) and _alive(child)
    res = c.post("/api/searches/sleepy/cancel", headers=AUTH)
    assert res.status_code == 202 and res.json()["status"] == "running"
    assert store.get_search("sleepy").cancel_requested
    while _alive(info["pid"]) or _alive(child):
        assert time.monotonic() < deadline, "process group still alive after cancel"
        time.sleep(0.05)
    while store.get_search("sleepy").status != "cancelled":
        assert time.monotonic() < deadline, "record not marked cancelled"
        time.sleep(0.05)
    status = c.get("/api/searches/sleepy").json()
    assert status["status"] == "cancelled" and status["launched_here"]


def test_a_failing_launch_reports_its_error_and_its_log_needs_the_token(sqlite_url: str, tmp_path: Path) -> None:
    launcher = SearchLauncher(sqlite_url, state_dir=tmp_path)
    script = "import sys; print('loading /srv/private/data.npz'); sys.exit('boom: bad option')"
    launcher.command = lambda argv: [sys.executable, "-c", script]  # type: ignore[method-assign]
    launcher.launch("broken", ["tiny"])
    deadline = time.monotonic() + 20
    while launcher.get("broken")["returncode"] is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    c = TestClient(create_app(sqlite_url, token=TOKEN, launcher=launcher))
    status = c.get("/api/searches/broken").json()
    assert status["status"] == "failed" and status["error"] == "search process exited with code 1"
    assert c.get("/api/studies/broken").json()["status"] == "failed"
    # No output in anything public: the status, the study, the lists.
    for url in ("/api/searches/broken", "/api/studies/broken", "/api/studies", "/api/searches"):
        text = c.get(url).text
        assert "boom" not in text and "/srv/private" not in text, url
    # The output is at .../log, with the token only.
    assert c.get("/api/searches/broken/log").status_code == 401
    assert c.get("/api/searches/broken/log", headers={"Authorization": "Bearer wrong"}).status_code == 401
    res = c.get("/api/searches/broken/log", headers=AUTH)
    assert res.status_code == 200 and "boom: bad option" in res.json()["log"] and "/srv/private" in res.json()["log"]
    assert c.get("/api/searches/nope/log", headers=AUTH).status_code == 404


def test_public_status_shows_only_the_stored_one_line_error(qclient: TestClient, quick_db: dict[str, Any]) -> None:
    store = ProjectStore(quick_db["url"])
    store.set_status(FAKE_STUDY, "failed", error="UsageError: no such file\n  more detail on a second line")
    for url in (f"/api/searches/{FAKE_STUDY}", f"/api/studies/{FAKE_STUDY}"):
        assert qclient.get(url).json()["error"] == "UsageError: no such file", url


def test_a_running_row_reads_interrupted_once_its_driver_is_dead(
    qclient: TestClient, quick_db: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One status rule (records/status.py) for the API and `effscale studies`: a row left "running"
    by a driver whose process is gone from this host, or whose heartbeat is stale, reads
    interrupted (nothing will finish it); a search's confirmation study reads its search's."""
    import socket
    import subprocess

    import optuna

    from effscale.search.records import liveness
    from effscale.search.records.optuna_access import set_study_system_attr
    from effscale.search.records.queries import list_studies
    from effscale.search.records.schema import CONFIRMATION_STUDY_ATTR, DRIVER_ATTR

    url = quick_db["url"]
    study = optuna.load_study(study_name=FAKE_STUDY, storage=url)
    confirm = optuna.create_study(study_name=f"{FAKE_STUDY}-confirm-3-epochs", storage=url, direction="maximize")
    confirm.set_user_attr(CONFIRMATION_STUDY_ATTR, {"search": FAKE_STUDY, "budget": {"epochs": 3}})
    ProjectStore(url).set_status(FAKE_STUDY, "running")  # a fresh heartbeat
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()

    def statuses() -> set[str]:
        rows = {r["study"]: r["status"] for r in list_studies(url)}
        return {qclient.get(f"/api/studies/{FAKE_STUDY}").json()["status"],
                qclient.get(f"/api/searches/{FAKE_STUDY}").json()["status"],
                qclient.get(f"/api/studies/{confirm.study_name}").json()["status"],
                rows[FAKE_STUDY], rows[confirm.study_name]}

    set_study_system_attr(study, DRIVER_ATTR, {"host": socket.gethostname(), "pid": os.getpid()})
    assert statuses() == {"running"}
    set_study_system_attr(study, DRIVER_ATTR, {"host": socket.gethostname(), "pid": gone.pid})
    assert statuses() == {"interrupted"}
    set_study_system_attr(study, DRIVER_ATTR, {"host": "elsewhere", "pid": 1})  # only its heartbeat tells
    assert statuses() == {"running"}
    monkeypatch.setattr(liveness, "STALE_AFTER_SECONDS", -1.0)
    assert statuses() == {"interrupted"}
    ProjectStore(url).set_status(FAKE_STUDY, "completed")
    assert statuses() == {"completed"}


# ---------------------------------------------------------------------------------------------
# a real small search, launched through the API


@pytest.mark.slow
def test_real_search_launched_through_the_api(tmp_path_factory: pytest.TempPathFactory) -> None:
    # shared_search_db builds the session's real search by POST /api/searches (run_real_search:
    # the service's launcher runs `effscale search tiny ...`, polled until completed); the
    # browser test reuses the same database.
    sqlite_url, _ = shared_search_db(tmp_path_factory.getbasetemp(), kind="real")
    c = TestClient(create_app(sqlite_url, token=TOKEN, launcher=FakeLauncher()))
    dispose_engines()
    truth = summarize(sqlite_url, REAL_STUDY)
    study = c.get(f"/api/studies/{REAL_STUDY}").json()
    assert study["status"] == "completed" and study["n_trials"] == truth["n_trials"] > 0
    assert c.get(f"/api/searches/{REAL_STUDY}").json()["status"] == "completed"
    assert study["counts"] == truth["counts"] and study["progress"]["left"] == 0
    assert study["progress"]["done"] == truth["n_trials"]
    # 3 candidates × 2 seeds in the race; the 2 confirmed × 2 seeds are the confirmation study's, named
    # in `confirmations` (test_service_results checks the verdict)
    assert study["best_source"] == "verdict" and study["best"]["repeats"] == 2 and truth["n_trials"] == 6
    assert [(x["budget"], x["n_trials"]) for x in study["confirmations"]] == [({"epochs": 2}, 4)]
    # B0's regime, measured and stored with the verdict: tiny at 16 px, total stride 8, a 2x2 last map.
    regime = study["regime"]
    assert (regime["total_stride"], regime["last_map"], regime["resolution"]) == (8, 2, 16)
    assert regime["degenerate"] and study["warnings"][0] == regime["warning"] and regime["ways_out"]
    page = c.get(f"/api/studies/{REAL_STUDY}/trials", params={"state": "complete", "sort": "-value"}).json()
    assert page["total"] == truth["states"].get("complete", 0)
    assert page["trials"][0]["val_top1"] == pytest.approx(truth["best_top1"])
    first = page["trials"][0]
    assert first["alpha"] in (1.0, 1.1, 1.2) and first["beta"] in (1.0, 1.1) and first["gamma"] == 1.0
    assert first["repeat"] in (0, 1) and isinstance(first["seed"], int) and isinstance(first["confirmation"], bool)
    assert len(c.get(f"/api/studies/{REAL_STUDY}/candidates").json()["candidates"]) == truth["n_candidates"] == 6
    curve = c.get(f"/api/studies/{REAL_STUDY}/trials/{first['number']}/curve").json()
    # One point per epoch the trial trained (1; a confirmation run trains 2).
    assert first["epochs"] == (2 if first["confirmation"] else 1)
    assert [p["epoch"] for p in curve["points"]] == list(range(1, first["epochs"] + 1))
    family = c.get(f"/api/studies/{REAL_STUDY}/family").json()
    assert family == truth["family"] and len(family["members"]) == 8
    _check_optuna_dashboard(sqlite_url, REAL_STUDY, n_trials=truth["n_trials"], n_complete=page["total"])


# ---------------------------------------------------------------------------------------------
# optuna-dashboard reads the same storage


def _check_optuna_dashboard(url: str, study: str, *, n_trials: int, n_complete: int) -> None:
    """optuna-dashboard (the real package, through its WSGI app) lists ``study`` with α, β, γ."""
    import optuna_dashboard  # a dev dependency (make test installs it): missing is a failure, not a skip
    from werkzeug.test import Client

    from effscale.storage import normalize_url

    client = Client(optuna_dashboard.wsgi(normalize_url(url)))
    res = client.get("/api/studies")
    assert res.status_code == 200
    summaries = {s["study_name"]: s for s in res.get_json()["study_summaries"]}
    assert study in summaries and summaries[study]["directions"] == ["maximize"]
    res = client.get(f"/api/studies/{summaries[study]['study_id']}")
    assert res.status_code == 200
    detail = res.get_json()
    assert {p["name"] for p in detail["union_search_space"]} == {"alpha", "beta", "gamma"}
    assert {p["name"] for p in detail["intersection_search_space"]} == {"alpha", "beta", "gamma"}
    assert len(detail["trials"]) == n_trials
    complete = [t for t in detail["trials"] if t["state"] == "Complete"]
    assert len(complete) == n_complete
    assert all({p["name"] for p in t["params"]} == {"alpha", "beta", "gamma"} for t in complete)
    assert detail["has_intermediate_values"] is True
    assert client.get("/").status_code in (200, 302, 303)


def test_optuna_dashboard_shows_alpha_beta_gamma(fake_db: dict[str, Any]) -> None:
    _check_optuna_dashboard(fake_db["url"], FAKE_STUDY, n_trials=6, n_complete=3)


def test_serve_runs_uvicorn_on_the_given_address(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import socket

    import uvicorn

    from effscale.service.server import serve

    calls: list[tuple[Any, list[socket.socket]]] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: calls.append((self.config, sockets)))
    monkeypatch.delenv("EFFSCALE_TOKEN", raising=False)
    caplog.set_level(logging.INFO)
    state_dir = tmp_path / "state" / "effscale"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve(sqlite_url, host="127.0.0.1", port=port, ray_address="auto", state_dir=state_dir, workers=1)
    ((config, sockets),) = calls
    try:
        assert config.host == "127.0.0.1" and config.port == port
        assert sockets[0].getsockname() == ("127.0.0.1", port)  # bound by serve, before uvicorn
        assert config.app.state.effscale.ray_address == "auto" and config.app.state.effscale.token is None
    finally:
        sockets[0].close()
    assert state_dir.is_dir() and (state_dir.stat().st_mode & 0o777) == 0o700
    assert "EFFSCALE_TOKEN is not set" in caplog.text


def test_serve_runs_several_workers_by_default_on_sqlite_in_wal(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import os

    import uvicorn.supervisors

    from effscale.service.server import APP_ENV, default_workers, serve

    started: list[Any] = []

    class Supervisor:
        def __init__(self, config: Any, sockets: list[Any]) -> None:
            started.append((config, sockets))

        def run(self) -> None:
            pass

    monkeypatch.setattr(uvicorn.supervisors, "Multiprocess", Supervisor)
    monkeypatch.delenv("EFFSCALE_TOKEN", raising=False)
    monkeypatch.setenv(APP_ENV, "")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    serve(sqlite_url, port=_free_port(), state_dir=tmp_path / "state")
    ((config, sockets),) = started
    sockets[0].close()
    assert config.workers == default_workers() == 2 and config.app == "effscale.service.server:worker_app"
    assert json.loads(os.environ[APP_ENV])["storage_url"] == sqlite_url


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
