"""The coefficient search end to end: real Optuna storage, real local Ray, real training.

A search here is tiny on purpose (the `tiny` baseline, 16 px synthetic data, 1-2 epochs), so the
whole stack runs in seconds per trial on two cores.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import psutil
import pytest
import torch

import effscale
from effscale.errors import UsageError
from effscale.models import scale_resolution
from effscale.search.records.study import candidate_key
from effscale.storage import ProjectStore

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TESTS = Path(__file__).parent
DATA = "synthetic:classes=3,size=16,n=120"
# One seed per candidate and no confirmation round: these tests are about the machinery (storage,
# resume, faults); tests/test_race.py is about the repeats, the race and the confirmation.
SMALL = dict(data=DATA, alpha="1.0,1.3", beta="1.0", gamma="1.0,1.3", constraint="formula", tolerance=1.0, epochs=2,
             batch_size=32, progress=False, min_repeats=1, max_repeats=1, confirm_top=0)


def _states(url: str, study: str) -> dict[str, int]:
    trials = optuna.load_study(study_name=study, storage=effscale.storage.open_storage(url)).get_trials(deepcopy=False)
    out: dict[str, int] = {}
    for t in trials:
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def run_cli(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen | subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(TESTS), **(env or {})}
    return subprocess.run([sys.executable, "-m", "effscale.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=600, **kwargs)


def test_search_end_to_end(local_ray: None, storage_url: str, tmp_path: Path) -> None:
    out = tmp_path / "family.json"
    result = effscale.run_search("tiny", **SMALL, storage=storage_url, study="e2e", out=out, max_phi=3)
    doc = result.to_dict()
    assert doc["study"] == "e2e"
    assert set(doc["best"]) >= {"alpha", "beta", "gamma", "val_top1_mean", "val_top1_stderr", "repeats", "tied_with",
                                "flops_ratio"}
    assert doc["best"]["repeats"] == 1 and doc["best"]["val_top1_stderr"] is None  # one seed: no error bar
    assert any("fewer than 2 seeds" in w for w in doc["warnings"])  # and the output says so
    assert doc["candidates"] == {"grid": 4, "feasible": 4, "unique": 4, "aliases": 0}
    assert doc["trials"] == {"complete": 4, "pruned": 0, "failed": 0}
    assert [m["name"] for m in doc["family"]["members"]] == ["B0", "B1", "B2", "B3"]
    assert json.loads(out.read_text())["coefficients"] == doc["family"]["coefficients"]
    # The calibrated family beside it: the same d and w, the input size nearest 2^phi x B0's FLOPs.
    calibrated = doc["calibrated_family"]
    for plain, cal in zip(doc["family"]["members"], calibrated["members"]):
        assert (cal["depth"], cal["width"]) == (plain["depth"], plain["width"])
        target = 2.0 ** plain["phi"]
        assert abs(math.log(cal["flops_ratio"] / target)) <= abs(math.log(plain["flops_ratio"] / target)) + 1e-9
    member = calibrated["members"][3]
    model = effscale.build_member(result.calibrated, "B3").eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, member["resolution"], member["resolution"])).shape == (1, 3)

    # Optuna's own view of it: alpha, beta, gamma are the trials' parameters.
    study = optuna.load_study(study_name="e2e", storage=effscale.storage.open_storage(storage_url))
    config = study.user_attrs["effscale"]
    assert config["baseline"] == "tiny" and config["data"] == DATA and config["budget"] == {"epochs": 2}
    assert config["base_resolution"] == 16  # the data's own size, within tiny's [8, 32]
    assert {"grid", "constraint", "base_resolution", "seed", "version"} <= config.keys()
    assert len(study.user_attrs["candidates"]) == 4
    for trial in study.trials:
        assert set(trial.params) == {"alpha", "beta", "gamma"}
        attrs = trial.user_attrs
        for key in ("depth", "width", "resolution", "flops", "params", "flops_ratio", "formula_ratio",
                    "val_top1", "train_seconds", "images_per_s", "aliases", "representative_rule", "repeat",
                    "seed", "confirmation", "node"):
            assert key in attrs, key
        assert sorted(trial.intermediate_values) == [1, 2]
        assert trial.value == pytest.approx(attrs["val_top1"])
        assert attrs["resolution"] == scale_resolution(config["base_resolution"], trial.params["gamma"])
    # One seed each: nothing can be told apart, so the single highest top-1 stands.
    best = max(study.trials, key=lambda t: (t.value, -t.user_attrs["flops"]))
    assert (doc["best"]["alpha"], doc["best"]["gamma"]) == (best.params["alpha"], best.params["gamma"])
    assert doc["best"]["val_top1_mean"] == best.value

    store = ProjectStore(storage_url)
    record = store.get_search("e2e")
    assert record.status == "completed" and record.finished_at is not None
    assert store.load_family("e2e")["coefficients"] == doc["family"]["coefficients"]

    # Resume: the same command again trains nothing; --phi only changes the members emitted.
    again = effscale.run_search("tiny", **SMALL, storage=storage_url, study="e2e", phi="-1,0.5,1")
    assert len(optuna.load_study(study_name="e2e", storage=effscale.storage.open_storage(storage_url)).trials) == 4
    assert again.best == result.best
    assert [m.name for m in again.family.members] == ["phi-1", "phi0.5", "B1"]
    assert again.family.members[2].flops == result.family.members[1].flops

    # Another configuration under the same name is refused, and nothing is written.
    with pytest.raises(UsageError, match="already holds a search with another configuration.*budget"):
        effscale.run_search("tiny", **{**SMALL, "epochs": 3}, storage=storage_url, study="e2e")
    assert _states(storage_url, "e2e") == {"COMPLETE": 4}


def test_query_commands(local_ray: None, sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from effscale.cli import main

    def cli(*args: str) -> tuple[int, str, str]:  # in this process: the queries read what the search stored
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    effscale.run_search("tiny", **SMALL, storage=sqlite_url, study="q")
    code, out, err = cli("trials", "--storage", sqlite_url, "--study", "q", "--json", "--limit", "3")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 3
    assert set(rows[0]) == {"number", "state", "alpha", "beta", "gamma", "depth", "width", "resolution", "flops",
                            "params", "flops_ratio", "formula_ratio", "activations", "activations_ratio",
                            "latency_ms", "latency_ratio", "val_top1", "val_loss", "train_seconds",
                            "images_per_s", "epochs", "duration_s", "arch_id", "aliases", "representative_rule",
                            "datetime_start", "datetime_complete", "repeat", "seed", "confirmation", "node",
                            "fail_reason", "batch_size", "lr"}
    assert rows[0]["val_top1"] >= rows[1]["val_top1"] >= rows[2]["val_top1"]
    studies = json.loads(cli("studies", "--storage", sqlite_url, "--json")[1])
    assert [s["study"] for s in studies] == ["q"] and studies[0]["status"] == "completed"
    family = json.loads(cli("family", "--storage", sqlite_url, "--study", "q", "--json")[1])
    assert len(family["members"]) == 8
    code, _, err = cli("trials", "--storage", sqlite_url, "--study", "nope")  # one line, exit 2: test_bad_inputs.py
    assert code == 2 and "no study 'nope'" in err


def test_aliases_train_once_and_are_recorded(local_ray: None, sqlite_url: str) -> None:
    # tiny's repeats (1, 2, 2): depth 1.1 and 1.2 both round up to (2, 3, 3).
    result = effscale.run_search("tiny", **{**SMALL, "alpha": "1.1,1.2", "gamma": "1.0", "epochs": 1},
                             storage=sqlite_url, study="alias")
    assert result.counts == {"grid": 2, "feasible": 2, "unique": 1, "aliases": 1}
    (trial,) = optuna.load_study(study_name="alias", storage=effscale.storage.open_storage(sqlite_url)).trials
    assert sorted(trial.user_attrs["aliases"]) == [[1.1, 1.0, 1.0], [1.2, 1.0, 1.0]]
    assert trial.params["alpha"] == 1.2  # its formula ratio (1.2) is nearer the target 2.0 than 1.1
    assert "formula ratio closest" in trial.user_attrs["representative_rule"]


def test_user_function_baseline(local_ray: None, sqlite_url: str) -> None:
    result = effscale.run_search("user_baselines:small_cnn", **{**SMALL, "alpha": "1.0,1.5", "gamma": "1.0"},
                             storage=sqlite_url, study="user", max_phi=2)
    assert result.trials["complete"] == 2
    assert result.family.baseline == "user_baselines:small_cnn"
    model = effscale.build_member(result.family, "B2")
    assert sum(p.numel() for p in model.parameters()) == result.family.member("B2").params


def _kill_first_training_worker(killed: list[int], stop: threading.Event) -> None:
    """Fault injection from outside, as Ray's chaos tests do: SIGKILL the first Ray worker process
    of this test's own local Ray (a descendant of this process, chosen by pid) seen training."""
    me = psutil.Process()
    while not stop.is_set() and not killed:
        for proc in me.children(recursive=True):
            try:
                title = " ".join(proc.cmdline())
            except psutil.Error:
                continue
            if "ImplicitFunc.train" in title:
                time.sleep(0.5)  # mid-trial, not at its first instruction
                proc.send_signal(signal.SIGKILL)
                killed.append(proc.pid)
                return
        time.sleep(0.1)


def test_worker_killed_mid_trial_is_retried(local_ray: None, sqlite_url: str) -> None:
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_first_training_worker, args=(killed, stop), daemon=True)
    killer.start()
    try:
        result = effscale.run_search("tiny", **SMALL, storage=sqlite_url, study="crash-worker")
    finally:
        stop.set()
        killer.join(timeout=5)
    assert len(killed) == 1, "the test should have killed exactly one training worker"
    assert result.trials["complete"] == 4 and result.trials["failed"] == 0
    assert _states(sqlite_url, "crash-worker") == {"COMPLETE": 4}


def test_asha_prunes_weak_trials(local_ray: None, sqlite_url: str) -> None:
    result = effscale.run_search(
        "tiny", data="synthetic:classes=4,size=16,n=200", alpha="1.0,1.3,1.6", beta="1.0,1.3", gamma="1.0",
        constraint="formula", tolerance=10.0, epochs=4, batch_size=32, scheduler="asha", grace_period=1,
        max_concurrent=1, storage=sqlite_url, study="asha", progress=False, min_repeats=1, max_repeats=1, confirm_top=0,
    )
    assert result.trials["complete"] + result.trials["pruned"] == 6
    assert result.trials["pruned"] >= 1
    study = optuna.load_study(study_name="asha", storage=effscale.storage.open_storage(sqlite_url))
    for t in study.trials:
        if t.state == optuna.trial.TrialState.PRUNED:
            assert t.user_attrs["epochs"] < 4 and len(t.intermediate_values) == t.user_attrs["epochs"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"alpha": "1.0", "beta": "1.0", "gamma": "1.0", "constraint": "measured", "tolerance": 0.05}, "no feasible candidate"),
        ({"epochs": 0}, "--epochs 0 must be >= 1"),
        ({"scheduler": "asha", "max_repeats": 3}, "--scheduler asha stops trials early"),
        ({"min_repeats": 3, "max_repeats": 2}, "--max-repeats 2 is below --min-repeats 3"),
        ({"confirm_top": 5}, "--confirm-top 5 but the grid has 4 distinct feasible candidates"),
        ({"confirm_top": 1, "confirm_epochs": 2}, "--confirm-epochs 2 is not above the proxy's 2 epochs"),
        ({"gpus_per_trial": 1}, "--gpus-per-trial 1 but no node has 1 GPUs"),
        ({"ray_address": "127.0.0.1:1"}, "cannot reach the Ray cluster at 127.0.0.1:1"),
        ({"data": "nope:x"}, "nope"),
    ],
)
def test_bad_input_writes_nothing(local_ray: None, sqlite_url: str, overrides: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        effscale.run_search("tiny", **{**SMALL, **overrides}, storage=sqlite_url, study="bad")
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()


def test_storage_urls_fail_in_one_line_without_password() -> None:
    # A server that does not answer is an outage (exit 1); a scheme effscale cannot use is bad input (2).
    proc = run_cli("search", "tiny", "--data", DATA, "--storage", "postgresql://u:s3cret@127.0.0.1:1/db", "--epochs", "1",
                   "--alpha", "1.0", "--beta", "1.0", "--gamma", "1.0,1.3", "--constraint", "formula", "--tolerance", "1")
    assert proc.returncode == 1 and "s3cret" not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli("studies", "--storage", "mysql://u:s3cret@h/db")
    assert proc.returncode == 2 and "s3cret" not in proc.stderr and "sqlite" in proc.stderr


def _wait_for_complete(url: str, study: str, n: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if _states(url, study).get("COMPLETE", 0) >= n:
                return
        except KeyError:
            pass
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(1)
    raise AssertionError("no trial completed in time")


def test_driver_killed_then_resumed(sqlite_url: str, tmp_path: Path) -> None:
    args = ["search", "tiny", "--data", DATA, "--alpha", "1.0,1.3,1.6", "--beta", "1.0", "--gamma", "1.0,1.3",
            "--constraint", "formula", "--tolerance", "10", "--epochs", "3", "--batch-size", "32",
            "--max-concurrent", "1", "--storage", sqlite_url, "--study", "killed", "--out", str(tmp_path / "f.json"),
            "--min-repeats", "1", "--max-repeats", "1", "--confirm-top", "0"]
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    proc = subprocess.Popen([sys.executable, "-m", "effscale.cli", *args], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_for_complete(sqlite_url, "killed", 1, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its whole local Ray
        proc.wait()
    before = _states(sqlite_url, "killed")
    assert before.get("COMPLETE", 0) >= 1 and before.get("COMPLETE", 0) < 6

    done = run_cli(*args, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(study_name="killed", storage=effscale.storage.open_storage(sqlite_url))
    complete = [candidate_key(t) for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 6 and len(set(complete)) == 6  # exactly one per unique candidate
    # Trials the dead driver left RUNNING were failed and their candidates ran again.
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL) for t in study.trials)
    assert json.loads(done.stdout)["trials"]["complete"] == 6


@pytest.mark.postgres
def test_two_searches_at_once_on_postgres(postgres_clean_url: str, tmp_path: Path) -> None:
    common = ["tiny", "--data", DATA, "--alpha", "1.0,1.3", "--beta", "1.0", "--gamma", "1.0,1.3",
              "--constraint", "formula", "--tolerance", "10", "--epochs", "1", "--batch-size", "32",
              "--storage", postgres_clean_url, "--json", "--min-repeats", "1", "--max-repeats", "1", "--confirm-top", "0"]
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    procs = [
        subprocess.Popen([sys.executable, "-m", "effscale.cli", "search", *common, "--study", name],
                         env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("pg-a", "pg-b")
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        assert json.loads(out)["trials"] == {"complete": 4, "pruned": 0, "failed": 0}
    for name in ("pg-a", "pg-b"):
        assert _states(postgres_clean_url, name) == {"COMPLETE": 4}
    assert {r.study_name for r in ProjectStore(postgres_clean_url).list_searches()} == {"pg-a", "pg-b"}


def test_a_winner_and_a_family_decided_by_rounding_say_so(local_ray: None, sqlite_url: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from _service_fixtures import ROUNDED_SEARCH_ARGS, ROUNDED_STUDY  # the REST API and the dashboard: test_service_browser

    from effscale.cli import main

    args = [*ROUNDED_SEARCH_ARGS, "--storage", sqlite_url]
    assert main(args) == 0  # in this process, on the session's Ray
    text = capsys.readouterr()
    assert "warning: regime: tiny at 16 px: total stride 8, last feature map 2x2" in text.err  # with the plan
    out = text.out
    assert "warning: rounding decided the winner (1, 1, 1.1)" in out and "resolution rounding moved it" in out
    assert "warning: the alpha^phi family misses 1.6^phi" in out
    assert out.index("calibrated to 1.6^phi (use this one") < out.index("alpha^phi members")
    assert main([*args, "--json"]) == 0  # the same search again: resumed, nothing trained
    doc = json.loads(capsys.readouterr().out)
    assert doc["trials"]["complete"] == 1
    assert doc["regime"]["last_map"] == 2 and doc["regime"]["degenerate"] and doc["regime"]["ways_out"]
    warnings = doc["warnings"]
    assert warnings[0] == doc["regime"]["warning"] and doc["recommended_family"] == "calibrated"
    assert any(w.startswith("rounding decided the winner") for w in warnings)
    assert any(w.startswith("the alpha^phi family misses") for w in warnings)
    stored = ProjectStore(sqlite_url).load_result(ROUNDED_STUDY)
    assert stored["warnings"] == warnings and stored["regime"]["last_map"] == 2


@pytest.mark.parametrize("cost", ["activations", "latency"])
def test_a_search_constrained_in_activations_or_latency_says_so(local_ray: None, sqlite_url: str, cost: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    # Digits, a 2x1x2 grid, one seed each: the cost names the constraint, the candidates and the family.
    args = ["search", "tiny", "--data", "digits", "--base-resolution", "16", "--alpha", "1.0,1.3", "--beta", "1.0",
            "--gamma", "1.0,1.3", "--constraint", cost, "--target-ratio", "1.5", "--tolerance", "1", "--epochs", "1",
            "--min-repeats", "1", "--max-repeats", "1", "--confirm-top", "0", "--max-phi", "2",
            "--latency-threads", "1", "--storage", sqlite_url, "--study", f"in-{cost}", "--json"]
    from effscale.cli import main

    assert main(args) == 0  # in this process, on the session's Ray
    doc = json.loads(capsys.readouterr().out)
    assert doc["cost"] == cost and doc["constraint"]["kind"] == cost and doc["family"]["cost"] == cost
    assert all(row["cost"] == cost and row["cost_ratio"] > 0 for row in doc["ranking"])
    assert doc["best"]["cost"] == cost and doc["best"]["activations"] > 0
    members = doc["family"]["members"]
    assert all(m["activations"] > 0 and m["flops"] > 0 and m["params"] > 0 for m in members)
    if cost == "latency":
        assert doc["best"]["latency_ms"] > 0 and all(m["latency_ms"] > 0 for m in members)
        assert members[0]["latency_ratio"] == 1.0
    else:
        assert doc["best"]["cost_ratio"] == doc["best"]["activations_ratio"]
