"""`effscale compare`: compound against single-dimension (and fast) scaling at a matched measured
cost, trained for real on paired seeds, stored as a plain Optuna study, resumable; and its bad
inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

import effscale
from effscale.models import measure_cost
from effscale.search.compare.run import CompareOptions, run_compare
from effscale.search.records.schema import RESULT_ATTR
from effscale.storage import open_storage

TESTS = Path(__file__).parent


@pytest.mark.ray
@pytest.mark.slow
def test_compare_a_search_winner_on_digits(local_ray: None, sqlite_url: str) -> None:
    effscale.run_search("tiny", data="digits", base_resolution=16, alpha="1.0,1.2", beta="1.0", gamma="1.0,1.15",
                        constraint="formula", tolerance=10.0, epochs=1, batch_size=64, min_repeats=1, max_repeats=1,
                        confirm_top=0, storage=sqlite_url, study="to-compare", progress=False)
    options = CompareOptions(study="to-compare", phi="1", repeats=2, tolerance=0.2, storage=sqlite_url, name="cmp")
    document = run_compare(options, progress=False)
    (entry,) = document["phis"]
    arms = {row["arm"]: row for row in entry["arms"]}
    assert set(arms) == {"compound", "depth", "width", "resolution"} and document["search"] == "to-compare"
    for row in arms.values():
        # The matched arms' FLOPs are measure_cost's, with the trained (10-class) head.
        cost = measure_cost("tiny", row["resolution"], depth=row["depth"], width=row["width"], num_classes=10)
        assert (row["flops"], row["params"]) == (cost.flops, cost.params)
        assert abs(row["ratio"] - 1) <= 0.2 and row["repeats"] == 2 and row["val_top1_stderr"] is not None
    assert arms["compound"]["delta_mean"] is None and arms["width"]["delta_half_width"] is not None
    assert entry["verdict"].startswith(("compound best", "tied", "depth-only", "width-only", "resolution-only"))
    assert "10-class head" in document["flops_convention"]

    # A plain Optuna study, linked to its search; a rerun trains nothing twice.
    study = optuna.load_study(study_name="cmp", storage=open_storage(sqlite_url))
    assert len(study.trials) == 8 and all(t.state.name == "COMPLETE" for t in study.trials)
    assert set(study.trials[0].params) == {"phi", "depth", "width", "resolution"}
    assert study.user_attrs["effscale_compare"]["search"] == "to-compare"
    assert study.user_attrs[RESULT_ATTR]["phis"][0]["verdict"] == entry["verdict"]
    again = run_compare(options, progress=False)
    assert len(optuna.load_study(study_name="cmp", storage=open_storage(sqlite_url)).trials) == 8
    assert again["phis"] == document["phis"]
    # The default arms in FLOPs: the identity a comparison stored before --arms and --cost (it resumes).
    assert set(study.user_attrs["effscale_compare"]) == OLD_IDENTITY
    assert document["cost"] == "flops" and document["arms"] == ["compound", "depth", "width", "resolution"]
    assert all(row["activations"] > 0 and row["cost_ratio"] == row["ratio"] for row in arms.values())

    _compare_fast_in_activations(sqlite_url)


OLD_IDENTITY = {"search", "baseline", "data", "coefficients", "base_resolution", "phis", "repeats", "tolerance",
                "bounds", "budget", "batch_size", "lr", "seed"}


def _compare_fast_in_activations(sqlite_url: str) -> None:
    """Fast scaling as a contender, every arm matched in activations: one seed each, one epoch."""
    from effscale.search.compare.arms import fast_settings

    names = ["compound", "depth", "width", "resolution", "fast"]
    options = CompareOptions("tiny", data="synthetic:classes=3,size=16,n=120", alpha=1.2, beta=1.1, gamma=1.15,
                             base_resolution=16, arms=",".join(names), cost="activations", repeats=1, tolerance=0.2,
                             storage=sqlite_url, name="cmp-fast")
    document = run_compare(options, {"epochs": 1}, progress=False)
    (entry,) = document["phis"]
    assert [row["arm"] for row in entry["arms"]] == document["arms"] == names
    assert document["cost"] == "activations" and document["cost_label"] == "activations"
    compound, fast = entry["arms"][0], entry["arms"][-1]
    for row in entry["arms"]:
        cost = measure_cost("tiny", row["resolution"], depth=row["depth"], width=row["width"], num_classes=3)
        assert (row["flops"], row["params"], row["activations"]) == (cost.flops, cost.params, cost.activations)
        assert row["cost_ratio"] == row["activations_vs_compound"] == cost.activations / compound["activations"]
        assert abs(row["cost_ratio"] - 1) <= 0.2 and row["repeats"] == 1 and row["val_top1_mean"] is not None
    assert (fast["depth"], fast["width"], fast["resolution"]) == fast_settings(fast["scale"], 16)
    # fast is a contender: its paired delta is taken, and with one seed (no interval) it is tied
    assert fast["delta_mean"] is not None and fast["delta_half_width"] is None
    assert entry["verdict"].startswith("tied") and "fast" in entry["verdict"]
    study = optuna.load_study(study_name="cmp-fast", storage=open_storage(sqlite_url))
    assert len(study.trials) == 5 and {t.user_attrs["arm"] for t in study.trials} == set(names)
    identity = study.user_attrs["effscale_compare"]
    assert set(identity) == OLD_IDENTITY | {"arms", "cost"} and identity["cost"] == "activations"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "effscale.cli", "compare", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(TESTS)}, timeout=300)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--study", "nope"], "no study 'nope'"),
        (["--study", "no-winner"], "has no winner yet"),
        (["tiny", "--data", "digits", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phi", "0"],
         "--phi '0' must list values from 1 to 7"),
        (["tiny", "--data", "digits", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phi", "1,8"],
         "must list values from 1 to 7"),
        (["tiny", "--data", "digits", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--repeats", "0"],
         "--repeats 0 must be >= 1"),
        (["tiny", "--data", "digits", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--tolerance", "0.01",
          "--bounds", "depth=1.1,width=1.1,resolution=1.1"], "-only arm cannot match B1's"),
        (["tiny", "--data", "digits", "--alpha", "1.2"], "compare needs --study NAME"),
        # the search's execution settings, checked as the search checks them
        (["tiny", "--data", "digits", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--gpus-per-trial", "many"],
         "--gpus-per-trial 'many' is neither auto nor a number"),
        (["tiny", "--data", "digits", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--db-timeout", "0"],
         "--db-timeout 0 must be > 0"),
        (["--study", "x", "tiny"], "not both"),
    ],
)
def test_bad_compare_input_is_one_line_before_any_training(tmp_path: Path, args: list[str], message: str) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    study = optuna.create_study(study_name="no-winner", storage=open_storage(url))
    study.set_user_attr("effscale", {"settings": {"baseline": "tiny", "data": "digits"}})
    study.add_trial(optuna.trial.create_trial(value=0.5))
    proc = _cli(*args, "--storage", url)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    trials = optuna.load_study(study_name="no-winner", storage=open_storage(url)).trials
    assert len(trials) == 1 and not [s for s in optuna.get_all_study_summaries(open_storage(url))
                                      if s.study_name.startswith("compare-")]


def test_compare_json_document_shape(tmp_path: Path) -> None:
    from effscale.search.compare.run import paired_delta, verdict

    assert verdict({"depth": paired_delta({0: 0.9, 1: 0.91, 2: 0.92}, {0: 0.5, 1: 0.52, 2: 0.5})}).startswith(
        "depth-only better by")
    assert verdict({"depth": paired_delta({0: 0.5, 1: 0.52, 2: 0.5}, {0: 0.9, 1: 0.91, 2: 0.92})}) == "compound best"
    assert verdict({"depth": paired_delta({0: 0.5, 1: 0.9}, {0: 0.9, 1: 0.5})}).startswith("tied")
    assert verdict({"fast": paired_delta({0: 0.9, 1: 0.91, 2: 0.92}, {0: 0.5, 1: 0.52, 2: 0.5})}).startswith(
        "fast scaling better by")
    json.dumps(paired_delta({0: 0.5}, {0: 0.4}).__dict__)  # one seed: a mean without an interval


def test_compare_takes_the_search_engine_settings() -> None:
    """A comparison runs on the search's engine: its execution flags are the search's own
    declarations (default, check, help), and --tolerance reads alike in both."""
    from effscale._settings import settings_of
    from effscale.search.planning.options import SearchOptions

    search = {f.name: (f.default, meta) for f, meta in settings_of(SearchOptions)}
    compare = {f.name: (f.default, meta) for f, meta in settings_of(CompareOptions)}
    for name in ("storage", "ray_address", "connect_timeout", "cpus_per_trial", "gpus_per_trial", "max_concurrent",
                 "max_retries", "db_timeout"):
        assert compare[name] == search[name], name
    assert search["tolerance"][1].help.startswith("relative tolerance of each candidate's FLOPs ratio")
    assert compare["tolerance"][1].help.startswith("relative tolerance of each matched arm's measured cost (--cost)")


def test_the_comparison_cost_defaults_to_its_search_cost() -> None:
    """--cost, else the search's stored cost, else its measured constraint, else FLOPs; latency is
    timed where the search timed it unless --latency-* says otherwise."""
    from effscale.models.options import LatencyOptions
    from effscale.search.compare.run import _measured

    study = CompareOptions(study="s")
    for settings, cost in (({}, "flops"), ({"constraint": "measured"}, "flops"), ({"constraint": "formula"}, "flops"),
                           ({"cost": None, "constraint": "activations"}, "activations"),
                           ({"cost": "activations", "constraint": "formula"}, "activations")):
        assert _measured(study, settings, "tiny", None)[:2] == (cost, ("compound", "depth", "width", "resolution"))
    assert _measured(CompareOptions(study="s", cost="flops"), {"cost": "activations"}, "tiny", None)[0] == "flops"
    cost, arms, latency = _measured(CompareOptions(study="s", arms="fast"), {"cost": "latency", "latency_threads": 1,
                                                                           "latency_batch": 2}, "tiny", None)
    assert (cost, arms, latency) == ("latency", ("compound", "fast"), LatencyOptions(latency_batch=2, latency_threads=1))
    given = LatencyOptions(latency_threads=2)
    assert _measured(study, {"cost": "latency", "latency_threads": 1}, "tiny", given)[2] is given
    assert _measured(study, {}, "efficientnet_b0", None)[1] == ("compound", "depth", "width", "resolution", "paper",
                                                                "published")
