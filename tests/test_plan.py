"""`effscale plan`: real cost, activation counts and time probes on a tiny baseline; nothing trained,
nothing written; a search that cannot fit is refused in one line before anything is allocated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from effscale.cli import main
from effscale.search.driver import plan_search
from effscale.search.planning.options import SearchOptions
from effscale.search.planning.resources import Node, _makespan, concurrency, local_node, make_plan, trial_footprints
from effscale.trainer.footprint import GiB, TrialFootprint, count_activations, cpu_trial_memory

GRID = ["--alpha", "1.0,1.2", "--beta", "1.0,1.1", "--gamma", "1.0,1.15", "--constraint", "formula", "--tolerance", "1"]
DATA = "synthetic:classes=3,size=16,n=120"


@pytest.fixture(autouse=True)
def _own_disk_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EFFSCALE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def test_plan_prints_each_network_with_memory_and_the_time_it_all_takes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "plan.db"
    assert main(["plan", "tiny", "--data", DATA, *GRID, "--epochs", "1", "--storage", f"sqlite:///{db}"]) == 0
    out = capsys.readouterr().out
    assert not db.exists()  # a plan writes nothing
    for header in ("(alpha, beta, gamma)", "measured", "formula", "params", "mem/trial", "batch", "s/trial"):
        assert header in out
    assert out.count(" GiB ") == 8  # one row per distinct network: the 2x2x2 grid builds 8
    assert "(1.2, 1.1, 1.15)" in out and "10-class head" not in out and "3-class head" in out
    summary = out.strip().splitlines()[-1]
    assert "8 distinct networks" in summary and "trials at once:" in summary and "estimated" in summary


def test_plan_json_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "plan.db"
    assert main(["plan", "tiny", "--data", DATA, *GRID, "--epochs", "1", "--storage", f"sqlite:///{db}", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert not db.exists()
    assert {"study", "device", "candidates", "flops_convention", "networks", "nodes", "concurrency", "slots",
            "trials", "seconds"} <= doc.keys()
    assert doc["device"] == "cpu" and doc["candidates"]["unique"] == len(doc["networks"]) == 8
    for network in doc["networks"]:
        assert {"alpha", "beta", "gamma", "depth", "width", "resolution", "aliases", "params", "flops", "flops_ratio",
                "formula_ratio", "memory_bytes", "memory_request_bytes", "gpu_memory_bytes", "step_seconds",
                "batch_size", "lr_scale", "trial_seconds"} <= network.keys()
        assert network["memory_request_bytes"] > network["memory_bytes"] > 0 and network["gpu_memory_bytes"] is None
        assert network["lr_scale"] == 1.0  # everything fits at the recipe's batch: none halved
        assert network["trial_seconds"] > network["step_seconds"] > 0
    node = doc["nodes"][0]
    assert node["name"] == "local" and doc["concurrency"]["local"] == doc["slots"] >= 1
    assert doc["slots"] <= node["cpus"]
    # Two seeds each for 8 networks, then the confirmation round (3 + 3, two seeds); up to 5 seeds.
    assert doc["trials"] == {"min": 8 * 2 + 6 * 2, "max": 8 * 5 + 6 * 2}
    assert 0 < doc["seconds"]["min"] < doc["seconds"]["max"]


def _peak_rss() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


def test_a_search_that_fits_no_node_is_refused_before_anything_is_allocated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # B0 at 2048-2663 px: even at batch 8 the resized digits and one training step need ~200 GiB
    # (more than any machine this suite runs on), so nothing halves its way in.
    before = _peak_rss()
    code = main(["plan", "efficientnet_b0", "--data", "digits", "--base-resolution", "2048", "--batch-size", "512",
                 "--alpha", "1.0", "--beta", "1.0", "--gamma", "1.0,1.3", "--constraint", "formula", "--tolerance", "1",
                 "--storage", f"sqlite:///{tmp_path / 'plan.db'}"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("effscale plan: error: candidate (1, 1, 1.3) at 2662 px needs ")
    # Even the smallest training step (and its 2x evaluation batch) is far beyond any node here.
    assert "GiB per trial even at batch 8 (asked: 512) (most of it the training step: " in err
    assert "but the largest node (local) has " in err and "lower --base-resolution" in err
    assert _peak_rss() - before < GiB  # shapes only: no image, activation or weight at that size
    assert not (tmp_path / "plan.db").exists()


def test_a_trial_that_fits_only_at_a_smaller_batch_gets_it_with_its_learning_rate(tmp_path: Path) -> None:
    options = SearchOptions.build("tiny", data="synthetic:classes=3,size=32,n=400", alpha="1.0", beta="1.0,1.1",
                                  gamma="1.0", constraint="formula", tolerance=1, batch_size=256, lr=0.2,
                                  storage=f"sqlite:///{tmp_path / 'plan.db'}")
    search_plan = plan_search(options)
    largest = max(search_plan.candidates.representatives, key=lambda c: c.flops)

    def request(batch: int) -> int:
        count = count_activations("tiny", depth=largest.depth, width=largest.width, resolution=largest.resolution,
                                  num_classes=3)
        parts = cpu_trial_memory(count, data=search_plan.data, resolution=largest.resolution, batch_size=batch,
                                 recipe=search_plan.recipe)
        return TrialFootprint(parts.total, None, 0.0, batch).memory_request_bytes

    assert request(256) > request(128)  # the training step, not a constant, decides at this size
    node = Node("small", 4.0, (request(128) + request(256)) // 2)
    plan = make_plan(search_plan, nodes=[node])
    by_arch = {n.candidate.arch_id: n.footprint for n in plan.networks}
    halved = by_arch[largest.arch_id]
    assert (halved.batch_size, halved.lr_scale) == (128, 0.5)
    recipe = halved.recipe(search_plan.recipe)
    assert (recipe.batch_size, recipe.lr) == (128, pytest.approx(0.1))
    assert plan.as_dict()["networks"][0]["batch_size"] == 128  # the largest is listed first
    assert trial_footprints(search_plan, nodes=[node]) == by_arch
    assert plan.concurrency == {"small": 1}  # two would not fit its memory
    assert not (tmp_path / "plan.db").exists()


def test_concurrency_is_the_tightest_of_cpus_memory_and_gpus() -> None:
    node = Node("n", cpus=16.0, memory_bytes=10 * GiB, gpus=2.0)
    assert concurrency(node, cpus_per_trial=2.0, gpus_per_trial=0.0, memory_request=3 * GiB) == 3
    assert concurrency(node, cpus_per_trial=8.0, gpus_per_trial=0.0, memory_request=GiB) == 2
    assert concurrency(node, cpus_per_trial=1.0, gpus_per_trial=0.5, memory_request=GiB) == 4
    assert concurrency(node, cpus_per_trial=1.0, gpus_per_trial=0.0, memory_request=11 * GiB) == 0


def test_the_local_node_is_this_machine_as_ray_would_offer_it() -> None:
    import os

    import psutil

    node = local_node()
    assert node.cpus == os.cpu_count()
    assert 0 < node.memory_bytes < psutil.virtual_memory().total


def test_trials_are_spread_longest_first_over_the_slots() -> None:
    assert _makespan([5.0, 4.0, 3.0, 3.0, 3.0], 2) == 10.0  # LPT: within 4/3 of the best (9)
    assert _makespan([1.0] * 4, 4) == 1.0 and _makespan([1.0] * 4, 8) == 1.0 and _makespan([], 3) == 0.0
