"""`effscale frontier`: the front's rule on numbers, then one real frontier (tiny, 16 px, one epoch)
on the session's local Ray, read back by optuna-dashboard and resumed without training again."""

from __future__ import annotations

import json

import optuna
import pytest

import effscale
from effscale.search.frontier.points import Point
from effscale.search.frontier.summary import front_rows

DATA = "synthetic:classes=3,size=16,n=120"


def _point(index: int, cost: float) -> Point:
    return Point(index, "drawn", 1.0, 1.0, 1.0, 16, cost, 0, 0, 0, f"net{index}")


def test_front_is_non_dominated_by_mean_and_noise_is_marked() -> None:
    points = [_point(0, 1.0), _point(1, 2.0), _point(2, 3.0), _point(3, 3.5)]
    values = {0: {0: 0.50, 1: 0.52}, 1: {0: 0.70, 1: 0.72},
              2: {0: 0.60, 1: 0.71},  # below #1 by mean, but not consistently: within noise
              3: {0: 0.30, 1: 0.31}}  # below #1 by 0.40 and 0.41: beyond noise
    rows = {r["index"]: r for r in front_rows(points, values)}
    assert [rows[i]["standing"] for i in range(4)] == ["front", "front", "near", "behind"]
    assert rows[2]["dominated_beyond_noise_by"] == [] and rows[2]["dominated_by"] == ["#1"]
    assert "#1" in rows[3]["dominated_beyond_noise_by"]
    assert rows[1]["no_better_than"] == []  # +0.20 on both seeds: separated from the cheaper #0
    front = [r for r in rows.values() if r["standing"] == "front"]
    for a in front:
        for b in front:
            assert not (b["top1_mean"] > a["top1_mean"] and b["cost_ratio"] < a["cost_ratio"])
    assert rows[1]["n"] == 2 and rows[1]["top1_stderr"] == pytest.approx(0.01)


@pytest.mark.ray
@pytest.mark.slow
def test_frontier_trains_on_paired_seeds_draws_the_family_and_resumes(local_ray: None, sqlite_url: str) -> None:
    from effscale.search.frontier.run import FrontierOptions, run_frontier

    effscale.run_search("tiny", data=DATA, alpha="1.2", beta="1.0", gamma="1.0", constraint="formula",
                        tolerance=1.0, epochs=1, min_repeats=1, max_repeats=1, confirm_top=0, max_phi=2,
                        progress=False, storage=sqlite_url, study="s")
    options = FrontierOptions(baseline="tiny", data=DATA, budget=4, search="s", storage=sqlite_url, name="f")
    document = run_frontier(options, {"epochs": 1}, progress=False)
    labels = [r["label"] for r in document["points"]]
    members = [label for label in labels if label.startswith("B")]
    assert "baseline" in labels and "B1" in members and len(labels) == 4  # the budget, the family's members in it
    assert labels.count("drawn") == 4 - 1 - len(members)
    assert all(r["n"] == 2 and r["top1_stderr"] is not None for r in document["points"])  # paired seeds
    assert all(r["cost_ratio"] <= 4.0 for r in document["points"])
    family = {m["name"]: m for m in document["family"]["members"]}
    assert set(family) >= set(members)
    # A member that builds a network already trained (tiny: B2's depth rounds to B1's) is not trained
    # again: it stands where that network stands.
    assert all(family[name]["same_network_as"] is not None for name in set(family) - set(members))
    assert all(m["standing"] in ("front", "near", "behind") for m in document["family"]["members"])
    storage = effscale.storage.open_storage(sqlite_url)
    study = optuna.load_study(study_name="f", storage=storage)
    assert len(study.directions) == 2 and len(study.trials) == 2 * len(document["points"])
    assert {t.number for t in study.best_trials}  # Optuna's own Pareto front of the trials
    _check_optuna_dashboard(sqlite_url, "f")
    _check_rest(sqlite_url, "f", document)
    again = run_frontier(options, {"epochs": 1}, progress=False)  # the same command: nothing trained twice
    assert len(optuna.load_study(study_name="f", storage=storage).trials) == len(study.trials)
    assert again["front"] == document["front"]


def _check_optuna_dashboard(url: str, study: str) -> None:
    import optuna_dashboard
    from werkzeug.test import Client

    from effscale.storage import normalize_url

    client = Client(optuna_dashboard.wsgi(normalize_url(url)))
    summaries = {s["study_name"]: s for s in client.get("/api/studies").get_json()["study_summaries"]}
    assert summaries[study]["directions"] == ["maximize", "minimize"]
    detail = client.get(f"/api/studies/{summaries[study]['study_id']}").get_json()
    assert {p["name"] for p in detail["union_search_space"]} == {"depth", "width", "resolution_factor"}
    assert detail["best_trials"] and all(len(t["values"]) == 2 for t in detail["best_trials"])


def _check_rest(url: str, name: str, document: dict) -> None:
    from fastapi.testclient import TestClient

    from effscale.service.app import create_app

    client = TestClient(create_app(url))
    (link,) = client.get("/api/frontiers").json()["frontiers"]
    assert (link["name"], link["status"], link["front"]) == (name, "completed", document["front"])
    detail = client.get(f"/api/frontiers/{name}").json()
    assert detail["result"]["points"] == json.loads(json.dumps(document["points"]))
    assert client.get("/api/frontiers/s").status_code == 404  # a search is not a frontier
    assert "f" not in {s["name"] for s in client.get("/api/studies").json()["studies"]}
    assert client.get("/api/studies/f").status_code == 200  # its status row; never the search views' 500
    assert client.get("/api/studies/f/trials").json()["total"] == 0


@pytest.mark.ray
@pytest.mark.slow
def test_ctrl_c_stops_a_frontier_as_interrupted(sqlite_url: str, tmp_path) -> None:
    # On the search's engine, as a comparison is (its resume after a kill: test_compare_faults.py).
    import signal

    from _driven import signal_session, start, trials, wait_for

    from effscale.storage import ProjectStore

    argv = ["frontier", "tiny", "--data", "synthetic:classes=3,size=16,n=600", "--budget", "2", "--epochs", "2",
            "--batch-size", "32", "--max-concurrent", "1", "--storage", sqlite_url, "--name", "fc"]
    proc = start(argv, tmp_path)
    wait_for(sqlite_url, "fc", proc, complete=1, running=1)
    signal_session(proc, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    assert ProjectStore(sqlite_url).get_search("fc").status == "interrupted"
    stopped = [t for t in trials(sqlite_url, "fc") if t.state.name != "COMPLETE"]
    assert stopped and all(t.state.name == "FAIL" for t in stopped)  # nothing left RUNNING
