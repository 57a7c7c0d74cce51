"""What a search concluded, through the REST API and ``effscale studies``, on real stored data.

The session's real search (`_service_fixtures.REAL_SEARCH_CONFIG`: 3 candidates on 2 paired seeds,
2 of them confirmed at a longer budget, launched through ``POST /api/searches``) and a real
``effscale compare`` of its winner are checked against what the search stored (`ProjectStore`,
the comparison's study attribute) and against statistics recomputed here from Optuna's own trials.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterator
from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient

from _service_fixtures import (
    FAKE_STUDY,
    REAL_COMPARISON,
    REAL_STUDY,
    FakeLauncher,
    make_fake_search,
    shared_search_db,
)
from effscale.search.records.schema import CONFIRMATION_STUDY_ATTR, RESULT_ATTR
from effscale.service import create_app
from effscale.storage import ProjectStore, dispose_engines, open_storage

pytestmark = pytest.mark.slow  # the session's real search and comparison


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A copy of the real search's database, read-only here, with a client on it."""
    url, study = shared_search_db(tmp_path_factory.getbasetemp(), kind="real")
    client = TestClient(create_app(url, token="t", launcher=FakeLauncher()))
    yield {"url": url, "study": study, "client": client}
    dispose_engines()


@pytest.fixture
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A private copy of the real search's database, for tests that change it."""
    url, study = shared_search_db(tmp_path_factory.getbasetemp(), kind="real")
    yield {"url": url, "study": study, "client": TestClient(create_app(url, token="t", launcher=FakeLauncher()))}
    dispose_engines()


def _key(d: dict[str, Any]) -> tuple[float, float, float]:
    return tuple(round(float(d[p]), 6) for p in ("alpha", "beta", "gamma"))  # type: ignore[return-value]


def _by_stage(url: str, study: str) -> dict[tuple[bool, tuple], dict[int, float]]:
    """(confirmation, candidate) -> repeat -> top-1, straight from Optuna's COMPLETE trials: the
    search's study (the race) and the study its confirmation round links to it."""
    storage = open_storage(url)
    names = [study] + [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
                       if (s.user_attrs.get(CONFIRMATION_STUDY_ATTR) or {}).get("search") == study]
    assert len(names) == 2, names
    values: dict[tuple[bool, tuple], dict[int, float]] = {}
    for t in (t for name in names for t in optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)):
        if t.state.name == "COMPLETE":
            values.setdefault((bool(t.user_attrs["confirmation"]), _key(t.params)), {})[t.user_attrs["repeat"]] = t.value
    return values


def _mean_se(values: dict[int, float]) -> tuple[float, float | None, int]:
    v = list(values.values())
    return statistics.fmean(v), (statistics.stdev(v) / math.sqrt(len(v)) if len(v) > 1 else None), len(v)


def _close(a: float | None, b: float | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, abs_tol=1e-12))


# ---------------------------------------------------------------------------------------------
# the verdict


def test_study_detail_shows_the_stored_verdict(real: dict[str, Any]) -> None:
    c, url = real["client"], real["url"]
    stored = ProjectStore(url).load_result(REAL_STUDY)
    assert stored is not None and stored["fidelity"] is not None, "the fixture search must store a verdict with fidelity"
    detail = c.get(f"/api/studies/{REAL_STUDY}").json()
    best = detail["best"]
    assert detail["best_source"] == "verdict" and best["number"] is None
    for field in ("alpha", "beta", "gamma", "val_top1_mean", "val_top1_stderr", "repeats", "chosen_by", "tie_break",
                  "separation_rule", "flops", "flops_ratio", "formula_ratio", "confirmed", "tied_with"):
        assert best[field] == stored["best"][field], field
    assert best["chosen_by"] == "confirmation" and best["repeats"] == 2 and best["confirmed"]["repeats"] == 2
    assert detail["fidelity"] == stored["fidelity"]
    assert detail["warnings"] == stored["warnings"] and detail["failures"] == stored["failures"]
    # The winner's figures are the means of its own trials, recomputed from Optuna.
    values = _by_stage(url, REAL_STUDY)
    race, confirm = _mean_se(values[(False, _key(best))]), _mean_se(values[(True, _key(best))])
    assert _close(best["val_top1_mean"], race[0]) and _close(best["val_top1_stderr"], race[1])
    assert _close(best["confirmed"]["val_top1_mean"], confirm[0]) and best["confirmed"]["repeats"] == confirm[2]
    for tied in best["tied_with"]:
        assert _close(tied["val_top1_mean"], _mean_se(values[(True, _key(tied))])[0])  # chosen by confirmation
    # The list shows the same verdict.
    (summary,) = [s for s in c.get("/api/studies").json()["studies"] if s["name"] == REAL_STUDY]
    assert {k: summary[k] for k in ("best", "best_source", "fidelity", "warnings")} == {
        k: detail[k] for k in ("best", "best_source", "fidelity", "warnings")}
    assert detail["progress"]["networks_done"] == detail["progress"]["unique"] == 3
    # The confirmation round is a study of its own, linked to the search and read back through it.
    (confirmation,) = detail["confirmations"]
    assert confirmation["name"] == f"{REAL_STUDY}-confirm-2-epochs" and confirmation["budget"] == {"epochs": 2}
    assert c.get(confirmation["url"] + "/trials").json()["total"] == confirmation["n_trials"] == 4


def test_ranking_is_the_stored_aggregates_and_the_trials_agree(real: dict[str, Any]) -> None:
    c, url = real["client"], real["url"]
    body = c.get(f"/api/studies/{REAL_STUDY}/candidates/ranking").json()
    assert body["source"] == "verdict"
    assert body["candidates"] == json.loads(json.dumps(ProjectStore(url).load_candidates(REAL_STUDY)))
    values = _by_stage(url, REAL_STUDY)
    for row in body["candidates"]:
        mean, se, n = _mean_se(values[(False, _key(row))])
        assert (row["n"], _close(row["mean"], mean), _close(row["stderr"], se)) == (n, True, True), row
        confirm = values.get((True, _key(row)))
        assert row["confirm_n"] == (len(confirm) if confirm else 0)
        if confirm:
            assert _close(row["confirm_mean"], _mean_se(confirm)[0])
    standings = [r["standing"] for r in body["candidates"]]
    assert standings.count("winner") == 1 and len(body["candidates"]) == 3
    winner = next(r for r in body["candidates"] if r["standing"] == "winner")
    best = c.get(f"/api/studies/{REAL_STUDY}").json()["best"]
    assert _key(winner) == _key(best)
    # "tied" is tied in the stage that decided (the confirmation here: best.tied_with), or, for a
    # candidate the confirmation did not retrain, tied in the race (schedule.Outcome._standing).
    tied = {_key(r) for r in body["candidates"] if r["standing"] == "tied" and r["confirm_n"] > 0}
    assert tied == {_key(t) for t in best["tied_with"]}
    # two confirmed (the top one and one spread), as the fidelity says
    assert sum(r["confirm_n"] > 0 for r in body["candidates"]) == c.get(
        f"/api/studies/{REAL_STUDY}").json()["fidelity"]["candidates"] == 2


def test_candidate_map_top1_is_the_race_mean_over_repeats(real: dict[str, Any]) -> None:
    c = real["client"]
    ranking = {r["arch_id"]: r for r in c.get(f"/api/studies/{REAL_STUDY}/candidates/ranking").json()["candidates"]}
    cands = c.get(f"/api/studies/{REAL_STUDY}/candidates").json()["candidates"]
    trials = {t["number"]: t for t in c.get(f"/api/studies/{REAL_STUDY}/trials", params={"limit": 100}).json()["trials"]}
    trained = [x for x in cands if x["feasible"]]
    assert len(cands) == 6 and len(trained) == 4 and sum(x["alias"] for x in cands) == 1
    for cand in trained:
        agg = ranking[cand["arch_id"]]  # an alias shows its network's figures
        assert (cand["val_top1"], cand["val_top1_stderr"], cand["repeats"]) == (agg["mean"], agg["stderr"], agg["n"]) != (None, None, 0)
        assert len(cand["trial_numbers"]) == 2 and cand["trial_number"] == min(cand["trial_numbers"])
        assert all(trials[n]["confirmation"] is False and trials[n]["arch_id"] == cand["arch_id"] for n in cand["trial_numbers"])
    # Off the band: no figures, unless the grid point builds a network trained for another point.
    untrained = [x for x in cands if x["arch_id"] not in ranking]
    assert untrained and all((x["val_top1"], x["repeats"], x["trial_numbers"]) == (None, 0, []) for x in untrained)


def test_a_study_without_a_stored_verdict_falls_back_to_its_trials(fresh: dict[str, Any]) -> None:
    """A search still running (or made by an effscale that stored no verdict): the best single
    trial, marked as such, and aggregates computed from the trials, equal to what the search stores."""
    from effscale.storage.tables import SearchRow

    url, c = fresh["url"], fresh["client"]
    stored = json.loads(json.dumps(ProjectStore(url).load_candidates(REAL_STUDY)))
    with ProjectStore(url).session() as session:
        session.get(SearchRow, REAL_STUDY).result_json = None
    ProjectStore(url).set_status(REAL_STUDY, "interrupted", error="interrupted with 1 trials running")
    detail = c.get(f"/api/studies/{REAL_STUDY}").json()
    assert detail["status"] == "interrupted" and detail["best_source"] == "single trial"
    assert detail["fidelity"] is None and detail["best"]["tied_with"] == []
    # No verdict's warnings, but the regime's, which the search stored before it trained (tiny at 16 px).
    assert detail["regime"]["last_map"] == 2 and detail["warnings"] == [detail["regime"]["warning"]]
    study = optuna.load_study(study_name=REAL_STUDY, storage=open_storage(url))
    top = max(t.value for t in study.trials if t.state.name == "COMPLETE")
    best = detail["best"]
    assert (best["val_top1_mean"], best["val_top1_stderr"], best["repeats"]) == (top, None, 1)
    assert study.trials[best["number"]].value == top and best["chosen_by"] is None
    body = c.get(f"/api/studies/{REAL_STUDY}/candidates/ranking").json()
    assert body["source"] == "trials"
    for live, kept in zip(body["candidates"], stored):
        assert live["standing"] is None
        assert {k: v for k, v in live.items() if k != "standing"} == {k: v for k, v in kept.items() if k != "standing"}


def test_a_search_made_before_verdicts_has_single_trial_best(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    facts = make_fake_search(url)  # one trial per network, no stored result: an older effscale's search
    c = TestClient(create_app(url, token="t", launcher=FakeLauncher()))
    detail = c.get(f"/api/studies/{FAKE_STUDY}").json()
    assert detail["best_source"] == "single trial" and detail["comparisons"] == []
    assert math.isclose(detail["best"]["val_top1_mean"], facts["best_top1"]) and detail["best"]["repeats"] == 1
    ranking = c.get(f"/api/studies/{FAKE_STUDY}/candidates/ranking").json()
    assert ranking["source"] == "trials" and [r["n"] for r in ranking["candidates"]] == [1, 1, 1, 0, 0, 0]
    dispose_engines()


# ---------------------------------------------------------------------------------------------
# comparisons


def test_comparisons_are_listed_with_their_search_and_served_whole(real: dict[str, Any]) -> None:
    c, url = real["client"], real["url"]
    document = optuna.load_study(study_name=REAL_COMPARISON, storage=open_storage(url)).user_attrs[RESULT_ATTR]
    (link,) = c.get("/api/comparisons").json()["comparisons"]
    assert (link["name"], link["search"], link["status"], link["phi_values"], link["repeats"]) == (
        REAL_COMPARISON, REAL_STUDY, "completed", [1], 2)
    assert link["n_trials"] == 10 and link["verdicts"] == [{"phi": e["phi"], "verdict": e["verdict"]} for e in document["phis"]]
    detail = c.get(link["url"]).json()
    for key, value in document.items():
        assert detail[key] == value, key
    (entry,) = detail["phis"]
    assert {a["arm"] for a in entry["arms"]} == {"compound", "depth", "width", "resolution", "fast"}
    assert detail["cost"] == "flops" and detail["arms"] == ["compound", "depth", "width", "resolution", "fast"]
    assert all(a["activations"] > 0 and a["activations_vs_compound"] > 0 for a in entry["arms"])
    assert all(a["repeats"] == 2 and a["val_top1_stderr"] is not None for a in entry["arms"])
    # linked from its search, never listed as a search, and a search is not a comparison
    study = c.get(f"/api/studies/{REAL_STUDY}").json()
    assert [x["name"] for x in study["comparisons"]] == [REAL_COMPARISON] and study["comparisons"][0] == link
    assert [s["name"] for s in c.get("/api/studies").json()["studies"]] == [REAL_STUDY]  # nor its confirmation
    for name in ("nope", REAL_STUDY):
        res = c.get(f"/api/comparisons/{name}")
        assert res.status_code == 404 and f"comparison {name!r} not found" in res.json()["detail"]


# ---------------------------------------------------------------------------------------------
# effscale studies


def test_cli_studies_prints_tau_and_the_winners_mean_se(real: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from effscale.cli import main

    url, c = real["url"], real["client"]
    assert main(["studies", "--storage", url, "--json"]) == 0
    rows = {r["study"]: r for r in json.loads(capsys.readouterr().out)}
    detail = c.get(f"/api/studies/{REAL_STUDY}").json()
    search, comparison = rows[REAL_STUDY], rows[REAL_COMPARISON]
    assert search["kind"] == "search" and comparison["kind"] == "comparison" and comparison["best"] is None
    assert search["best"] == {k: detail["best"][k] for k in ("alpha", "beta", "gamma", "val_top1_mean", "val_top1_stderr", "repeats")}
    assert (search["kendall_tau"], search["tau_interval"]) == (detail["fidelity"]["kendall_tau"], detail["fidelity"]["tau_interval"])
    assert main(["studies", "--storage", url]) == 0
    table = _table_rows(capsys.readouterr().out)
    best, fidelity = detail["best"], detail["fidelity"]
    lo, hi = fidelity["tau_interval"]
    row = table[REAL_STUDY]
    assert row[6:] == [f"({best['alpha']:g}, {best['beta']:g}, {best['gamma']:g})",
                       f"{best['val_top1_mean']:.4f} ± {best['val_top1_stderr']:.4f} (n=2)", "verdict",
                       f"{fidelity['kendall_tau']:.2f} [{lo:.2f}, {hi:.2f}]"]
    assert table[REAL_COMPARISON][1] == "comparison" and table[REAL_COMPARISON][6:] == ["-", "-", "-", "-"]


def _table_rows(text: str) -> dict[str, list[str]]:
    """The cells of a printed table by first cell, a wrapped cell's lines joined with spaces."""
    rows: list[list[str]] = []
    for line in text.splitlines():
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line.strip("│").split("│")]
        if cells[0] or not rows:
            rows.append(cells)
        else:  # a wrapped cell goes on under an empty first cell
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells)]
    return {r[0]: r for r in rows}
