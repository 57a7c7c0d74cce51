"""Measured cost with real fvcore: counts, the cache by architecture signature, quiet output."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from effscale.errors import UsageError
from effscale.models import FLOPS_CONVENTION, build_model, get_baseline, measure_cost
from effscale.models import cost as cost_module
from effscale.models import diskcache
from effscale.models.cost import clear_cost_cache, cost_cache_info, count_flops, count_params, flops_convention


@pytest.fixture(autouse=True)
def _own_disk_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test measures into a fresh disk cache: none reads another's (or the user's) results."""
    monkeypatch.setenv("EFFSCALE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def test_b0_flops_match_the_paper_scale() -> None:
    cost = measure_cost("efficientnet_b0", 224)
    assert cost.params == 5_288_548
    # The paper lists 0.39B multiply-adds; fvcore adds BatchNorm/pooling/SE on top.
    assert 0.38e9 < cost.flops < 0.42e9
    assert cost.num_classes == 1000
    assert cost.flops_convention == flops_convention(1000) != FLOPS_CONVENTION
    assert cost.flops_convention.startswith(FLOPS_CONVENTION.split(";")[0]) and "1000-class head" in cost.flops_convention


def test_model_and_baseline_paths_agree() -> None:
    a = measure_cost("resnet18", 64, num_classes=10, use_cache=False)
    b = measure_cost(build_model("resnet18", num_classes=10), 64)
    assert (a.params, a.flops) == (b.params, b.flops)


def test_flops_grow_with_resolution_squared() -> None:
    small = measure_cost("resnet18", 112).flops
    large = measure_cost("resnet18", 224).flops
    # Convolutions grow 4x; the classifier does not, so a little under 4.
    assert 3.6 < large / small < 4.0


def test_paper_triple_measures_about_2_5x_not_1_92x() -> None:
    b0 = measure_cost("efficientnet_b0", 224)
    phi1 = measure_cost("efficientnet_b0", 258, depth=1.2, width=1.1)
    ratio = phi1.flops / b0.flops
    assert 2.45 < ratio < 2.65
    assert abs(ratio - 1.2 * 1.1**2 * 1.15**2) > 0.5


def test_cache_measures_each_network_once_and_exposes_aliases() -> None:
    clear_cost_cache()
    costs = [measure_cost("efficientnet_b0", 64, depth=d, width=1.0) for d in (1.05, 1.1, 1.2, 1.25)]
    info = cost_cache_info()
    assert info["misses"] == 1 and info["hits"] == 3
    assert len({c.arch_id for c in costs}) == 1
    other = measure_cost("efficientnet_b0", 64, depth=1.3)
    assert other.arch_id != costs[0].arch_id
    # Same network, other resolution: another measurement, another id.
    assert measure_cost("efficientnet_b0", 72, depth=1.1).arch_id != costs[0].arch_id


def test_user_baseline_is_measured_and_cached() -> None:
    clear_cost_cache()
    a = measure_cost("user_baselines:small_cnn", 32, depth=1.1)
    b = measure_cost("user_baselines:small_cnn", 32, depth=1.4)
    assert a == b and cost_cache_info()["misses"] == 1
    assert a.flops > 0 and a.params > 0


@pytest.mark.parametrize("use_cache", [False, True], ids=["direct-trace", "area-fit"])
def test_fvcore_stays_quiet(
    use_cache: bool, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    clear_cost_cache()  # with the cache on, a fresh fit: the two traces of the area path
    measure_cost("efficientnet_b0", 40, use_cache=use_cache)  # SiLU, sigmoid, mul: ops fvcore skips
    out, err = capfd.readouterr()
    assert "Unsupported operator" not in out + err + caplog.text
    assert "encountered" not in out + err + caplog.text


@pytest.mark.parametrize("resolution", [0, -5, 16])
def test_resolution_below_total_stride_is_refused(resolution: int) -> None:
    with pytest.raises(UsageError, match=f"resolution={resolution}"):
        measure_cost("efficientnet_b0", resolution)


def _fvcore(analysis: type, model: nn.Module, resolution: int) -> int:
    """fvcore's own count, run as its documentation runs it: the reference composed counts are pinned to."""
    with torch.no_grad():
        counted = analysis(model.eval(), torch.zeros(1, 3, resolution, resolution))
        counted.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
        return int(counted.total())


@pytest.mark.parametrize("name", ["efficientnet_b0", "resnet18", "resnet50", "mobilenet_v1", "mobilenet_v2",
                                  "resnet20_cifar"])
def test_composed_activations_equal_fvcores_whole_network_count(name: str) -> None:
    # Dollar et al.'s cost: fvcore's ActivationCountAnalysis of the network actually built, composed
    # per block from the probe like the FLOPs, and equal to a whole-network count at every setting.
    # (The FLOPs of the same composition are pinned by the rescaling tests below.)
    from fvcore.nn import ActivationCountAnalysis

    clear_cost_cache()
    base = get_baseline(name)
    for depth, width, resolution in ((1.0, 1.0, base.base_resolution), (1.3, 1.2, 2 * base.min_resolution + 3)):
        model = build_model(name, depth=depth, width=width, num_classes=10)
        cost = measure_cost(name, resolution, depth=depth, width=width, num_classes=10)
        assert cost.activations == _fvcore(ActivationCountAnalysis, model, resolution)
    if name == "efficientnet_b0":  # the figure PAPER.md quotes from Dollar et al.: about 6.7M at 224
        assert measure_cost(name, 224).activations == pytest.approx(6.7e6, rel=0.01)


@pytest.mark.parametrize("name", ["efficientnet_b0", "resnet18", "resnet50", "mobilenet_v1", "mobilenet_v2", "tiny"])
def test_resolution_rescaling_equals_a_direct_fvcore_trace(name: str) -> None:
    # One trace per architecture; other resolutions come from per-module counts x exact areas.
    clear_cost_cache()
    model = build_model(name, depth=1.2, width=1.1)
    # First at 32 (ResNet's last stage is 1x1 there, yet not resolution-independent), then others.
    for resolution in (32, 35, 64, 33, 37, 97, 224, 258):
        assert measure_cost(name, resolution, depth=1.2, width=1.1).flops == count_flops(model, resolution)


def _count_traces(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the resolution of every fvcore trace the cost path runs from now on."""
    traced: list[int] = []
    real_trace = cost_module._fvcore_trace

    def counting_trace(model: nn.Module, resolution: int) -> object:  # cost's private _Trace
        traced.append(resolution)
        return real_trace(model, resolution)

    monkeypatch.setattr(cost_module, "_fvcore_trace", counting_trace)
    return traced


def test_user_baselines_are_rescaled_by_area_after_two_traces(monkeypatch: pytest.MonkeyPatch) -> None:
    model = build_model("user_baselines:small_cnn", num_classes=10)
    resolutions = (32, 2, 7, 33, 64, 100)
    direct = [count_flops(model, r) for r in resolutions]
    clear_cost_cache()
    traced = _count_traces(monkeypatch)
    assert [measure_cost("user_baselines:small_cnn", r, num_classes=10).flops for r in resolutions] == direct
    # Fitted at 2 * min_resolution = 4, checked at 2 * 4 + 1 = 9; every other size was rescaled.
    assert traced == [4, 9]


def test_attention_fails_the_second_resolution_check_and_is_traced_directly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Self-attention's q·kᵀ costs (H*W)² * C: a multiple of the area at any one size, so a single
    # trace would "fit" it; the second trace must catch it, or every other resolution is wrong.
    model = build_model("user_baselines:attention_cnn", num_classes=10)
    resolutions = (16, 4, 12, 17, 33, 64)
    direct = [count_flops(model, r) for r in resolutions]
    clear_cost_cache()
    traced = _count_traces(monkeypatch)
    assert [measure_cost("user_baselines:attention_cnn", r, num_classes=10).flops for r in resolutions] == direct
    # The area path ran (fit at 2 * min_resolution = 8, check at 17) and refused the terms, so
    # every resolution asked was then traced directly.
    assert traced == [8, 17, *resolutions]


def test_a_user_network_that_runs_at_one_size_only_is_traced_there() -> None:
    # Its check trace (65 px) cannot run; rescaling is an optimisation, so it falls back.
    clear_cost_cache()
    model = build_model("user_baselines:fixed_size_cnn", num_classes=10)
    assert measure_cost("user_baselines:fixed_size_cnn", 32, num_classes=10).flops == count_flops(model, 32)


def test_one_split_rule_for_every_measure() -> None:
    from effscale.models.probe import split

    # (input area, output area) of a stride-2 layer at 64 px and at the check size, 129 px.
    fit, check = (64 * 64, 32 * 32), (129 * 129, 65 * 65)
    assert split(7, 7, fit, check) == (None, 7)  # the same at both sizes: a constant
    assert split(3 * 32 * 32, 3 * 65 * 65, fit, check) == (1, 3)  # 3 per output pixel
    assert split(3 * 64 * 64, 3 * 129 * 129, fit, check) == (0, 3)  # 3 per input pixel
    assert split((64 * 64) ** 2, (129 * 129) ** 2, fit, check) is None  # attention: quadratic in the area
    assert split(5, 6, (None, None), (None, None)) is None  # moves, but with no area to move with


def test_count_flops_restores_training_mode_and_the_fvcore_logger() -> None:
    model = build_model("tiny", num_classes=3).train()
    fv_logger = logging.getLogger("fvcore")
    level = fv_logger.level
    count_flops(model, 32)
    assert model.training and fv_logger.level == level


# ---------------------------------------------------------------------------------------------
# the classifier head, composed counts, and the disk cache


def test_the_head_is_measured_and_named() -> None:
    ten, thousand = measure_cost("resnet18", 64, num_classes=10), measure_cost("resnet18", 64)
    model = build_model("resnet18", num_classes=10)
    assert (ten.params, ten.flops) == (count_params(model), count_flops(model, 64))
    # The head is 512 x classes multiply-adds and (512 + 1) x classes parameters.
    assert thousand.flops - ten.flops == 512 * 990 and thousand.params - ten.params == 513 * 990
    assert ten.num_classes == 10 and ten.flops_convention == (
        "fvcore total, eval mode, batch 1, 3xRxR input, 10-class head; 1 multiply-add = 1 flop"
    )
    assert measure_cost(model, 64).num_classes is None  # a given module: its head is its own


@pytest.mark.parametrize(
    ("name", "depth", "width", "resolution"),
    [("efficientnet_b0", 2.0, 0.5, 97), ("efficientnet_b0", 1.45, 1.3, 33), ("resnet50", 1.7, 0.75, 64),
     ("mobilenet_v2", 1.0, 1.25, 50)],
)
def test_counts_composed_from_a_two_block_probe_equal_a_whole_model_trace(
    name: str, depth: float, width: float, resolution: int
) -> None:
    # Deep (up to 2x the blocks), narrow and wide networks at odd sizes: the probe's second block,
    # counted repeats - 1 times, must give fvcore's own total for the whole network, and its params.
    clear_cost_cache()
    model = build_model(name, depth=depth, width=width, num_classes=10)
    cost = measure_cost(name, resolution, depth=depth, width=width, num_classes=10)
    assert (cost.params, cost.flops) == (count_params(model), count_flops(model, resolution))


def test_every_depth_of_a_width_costs_one_probe_and_a_geometry_is_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_cost_cache()
    traced = _count_traces(monkeypatch)
    for depth in (1.0, 1.1, 1.2, 1.3, 1.4):
        for resolution in (224, 240, 258):
            measure_cost("efficientnet_b0", resolution, depth=depth, num_classes=10)
    # One probe for width 1.0: fitted at 2 x 32 = 64 px and checked at 129; 15 networks composed.
    assert traced == [64, 129]
    measure_cost("efficientnet_b0", 224, depth=1.2, width=1.3, num_classes=10)
    assert traced == [64, 129, 64]  # another width, the same strides: no second check


def _measure_in_a_new_process(cache_dir: Path, *, forbid_traces: bool) -> dict:
    """measure_cost in a fresh interpreter; with ``forbid_traces`` any fvcore trace is an error."""
    script = (
        "import json, sys\n"
        "from effscale.models import cost\n"
        "if sys.argv[1] == 'forbid':\n"
        "    def refuse(model, resolution): raise AssertionError('traced')\n"
        "    cost._fvcore_trace = refuse\n"
        "c = cost.measure_cost('efficientnet_b0', 240, depth=1.2, width=1.1, num_classes=10)\n"
        "print(json.dumps({'flops': c.flops, 'params': c.params, **cost.cost_cache_info()}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "forbid" if forbid_traces else "allow"], capture_output=True, text=True,
        env={**os.environ, "EFFSCALE_CACHE_DIR": str(cache_dir)}, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_second_process_reads_the_disk_cache_and_traces_nothing(tmp_path: Path) -> None:
    first = _measure_in_a_new_process(tmp_path, forbid_traces=False)
    assert first["traces"] == 2 and first["disk_hits"] == 0
    second = _measure_in_a_new_process(tmp_path, forbid_traces=True)
    assert second["traces"] == 0 and second["disk_hits"] == 1
    assert (second["flops"], second["params"]) == (first["flops"], first["params"])
    model = build_model("efficientnet_b0", depth=1.2, width=1.1, num_classes=10)
    assert first["flops"] == count_flops(model, 240)


def _cost_file(name: str, resolution: int, *, num_classes: int = 10) -> Path:
    from effscale.models import get_baseline

    key = (get_baseline(name).signature(1.0, 1.0), resolution, num_classes)
    return cost_module._COST_DISK.path(key)


def test_a_corrupt_cache_file_is_ignored_and_rewritten() -> None:
    clear_cost_cache()
    right = measure_cost("tiny", 40, num_classes=10)
    path = _cost_file("tiny", 40)
    assert json.loads(path.read_text())["value"] == {"params": right.params, "flops": right.flops, "activations": right.activations}
    for damage in ('{"key": "something else", "value": {"params": 1, "flops": 2}}', "{not json", ""):
        path.write_text(damage)
        clear_cost_cache()
        assert measure_cost("tiny", 40, num_classes=10) == right
        assert cost_cache_info()["disk_hits"] == 0 and cost_cache_info()["traces"] > 0
        assert json.loads(path.read_text())["value"] == {"params": right.params, "flops": right.flops, "activations": right.activations}


def test_another_torch_fvcore_or_effscale_version_misses(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_cost_cache()
    measure_cost("tiny", 40, num_classes=10)
    clear_cost_cache()
    measure_cost("tiny", 40, num_classes=10)
    assert cost_cache_info()["disk_hits"] == 1
    code = cost_module._COST_DISK.code
    for package in ("torch", "fvcore", "effscale", "code"):
        versions = {**diskcache.cache_versions(code), package: "another"}
        monkeypatch.setitem(diskcache._VERSIONS, code, versions)
        clear_cost_cache()
        measure_cost("tiny", 40, num_classes=10)
        assert cost_cache_info()["disk_hits"] == 0 and cost_cache_info()["traces"] > 0, package


def test_an_unwritable_cache_directory_only_costs_the_speed_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("EFFSCALE_CACHE_DIR", str(blocker))
    clear_cost_cache()
    model = build_model("tiny", num_classes=10)
    assert measure_cost("tiny", 40, num_classes=10).flops == count_flops(model, 40)


def test_cost_reports_activations_and_a_measured_latency_with_its_evidence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fvcore.nn import ActivationCountAnalysis

    from effscale.cli import main

    monkeypatch.setenv("EFFSCALE_CACHE_DIR", str(tmp_path))
    args = ["cost", "resnet18", "--resolution", "64", "--num-classes", "10", "--latency", "--latency-threads", "1",
            "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    model = build_model("resnet18", num_classes=10)
    assert first["activations"] == _fvcore(ActivationCountAnalysis, model, 64) and first["activations_ratio"] > 0
    latency = first["latency"]
    assert latency["median_ms"] > 0 and latency["q1_s"] <= latency["median_s"] <= latency["q3_s"]
    assert latency["runs"] >= 20 and latency["batch"] == 1 and latency["threads"] == 1
    assert latency["device"] == "cpu" and "cores" in latency["device_description"] and latency["torch"]
    assert (latency["warning"] is not None) == (latency["spread"] > 0.10)
    assert main(args) == 0  # the same network, device, batch, threads and torch: read back, not timed again
    assert json.loads(capsys.readouterr().out)["latency"] == latency
    assert list((tmp_path / "latency").glob("*.json"))
