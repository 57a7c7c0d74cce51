"""The proxy's regime and the rounding warnings: measured on real networks with real fvcore counts.

What a user sees before anything trains (`effscale plan`, `effscale cost`, `effscale family`) and
what the search stores with its verdict. Searches that train are in tests/test_search.py (the CLI's
text and JSON) and the service tests (the REST API and the dashboard).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from effscale.cli import main
from effscale.models import Coefficients, get_baseline, measure_cost
from effscale.models.regime import MAX_STEP_RATIO, MIN_LAST_MAP, healthy_resolution, measure_regime, total_stride
from effscale.search.family.members import emit_family
from effscale.search.planning.grid import Constraint, Grid
from effscale.search.verdict.rounding import FAMILY_MISS, ROUNDING_GAP, family_miss_warning, winner_rounding_warning
from effscale.search.planning.candidates import enumerate_candidates

IMAGENET = ("efficientnet_b0", "mobilenet_v1", "mobilenet_v2", "resnet18", "resnet34", "resnet50")


@pytest.fixture(autouse=True)
def _own_disk_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EFFSCALE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def test_resnet18_at_32_px_is_stride_rounding_and_at_128_it_is_resolution() -> None:
    at32 = measure_regime("resnet18", 32, num_classes=10)
    assert (at32.total_stride, at32.last_map) == (32, 1)
    # One more pixel turns the 1x1 last map into 2x2: the step is fvcore's own count at 33 over 32.
    assert at32.step_ratio == measure_cost("resnet18", 33, num_classes=10).flops / at32.flops > 2
    assert at32.formula_step == pytest.approx((33 / 32) ** 2)
    assert at32.degenerate and at32.small_map and at32.steep_step
    at128 = measure_regime("resnet18", 128, num_classes=10)
    assert at128.last_map == MIN_LAST_MAP and at128.step_ratio <= MAX_STEP_RATIO and not at128.degenerate
    # 128 px is the first multiple of the stride that is sound: 96 still has a 3x3 last map.
    assert healthy_resolution("resnet18", 33, num_classes=10).resolution == 128
    assert measure_regime("resnet18", 96, num_classes=10).last_map == 3


@pytest.mark.parametrize("name", IMAGENET)
def test_measured_total_stride_equals_the_tables_and_the_small_stem_makes_it_8(name: str) -> None:
    standard, small = get_baseline(name), get_baseline(name, stem="small")
    assert total_stride(standard) == standard.spec.total_stride == 32
    assert total_stride(small) == small.spec.total_stride == 8
    regime = measure_regime(small, 32, num_classes=10)
    assert regime.last_map == 4 and regime.stem == "small"


def test_the_last_map_is_read_from_a_real_forward_for_a_user_network() -> None:
    # tests/user_baselines.py:small_cnn runs on the meta device; the answer must equal a real run's.
    import torch

    base = get_baseline("user_baselines:small_cnn")
    model = base.build(1.0, 1.0, 10).eval()
    sides = []
    hooks = [m.register_forward_hook(lambda m, i, o: sides.append(o.shape[-1]))
             for m in model.modules() if isinstance(m, torch.nn.Conv2d) and (m.stride[0] > 1 or m.kernel_size[0] > 1)]
    with torch.no_grad():
        model(torch.zeros(1, 3, 40, 40))
    for h in hooks:
        h.remove()
    assert measure_regime(base, 40, num_classes=10).last_map == min(sides)


def test_rounding_that_decides_a_winner_is_named() -> None:
    # ResNet-18 at 32 px: gamma 1.1 (35 px) builds a 2x2 last map and measures ~2.17x, where the
    # formula says 1.21x: resolution rounding, not resolution, made it feasible.
    cands = enumerate_candidates("resnet18", Grid.parse("1.0", "1.0", "1.1"), Constraint("measured", 2.0, 0.1),
                                 base_resolution=32, num_classes=10)
    (winner,) = cands.representatives
    assert abs(winner.flops_ratio / winner.formula_ratio - 1) > ROUNDING_GAP
    text = winner_rounding_warning(get_baseline("resnet18"), winner, base_resolution=32, num_classes=10)
    assert text is not None and "resolution rounding moved it" in text and "35 px alone measures 2.17x" in text
    assert "depth alone 1.00x against 1.00x" in text and f"{winner.formula_ratio:.2f}x" in text
    # Depth rounding: tiny's stages of 1, 2, 2 blocks become 2, 3, 3 at depth 1.1.
    cands = enumerate_candidates("tiny", Grid.parse("1.1", "1.0", "1.0"), Constraint("formula", 1.1, 0.1),
                                 base_resolution=16, num_classes=3)
    text = winner_rounding_warning(get_baseline("tiny"), cands.representatives[0], base_resolution=16, num_classes=3)
    assert text is not None and "depth rounding moved it" in text
    # The paper's triple at 224 px: 2.55x against 1.92x is +33%, width and depth rounding both.
    cands = enumerate_candidates("efficientnet_b0", Grid.parse("1.0", "1.1", "1.0"), Constraint("formula", 1.2, 0.1),
                                 base_resolution=224, num_classes=1000)
    assert winner_rounding_warning(get_baseline("efficientnet_b0"), cands.representatives[0], base_resolution=224,
                                   num_classes=1000) is None  # width 1.1 alone: 1.21x formula, within 25%


def test_a_family_that_misses_its_target_points_to_the_calibrated_one() -> None:
    family = emit_family("resnet18", Coefficients(1.0, 1.0, 1.1), base_resolution=32, num_classes=10)
    text = family_miss_warning(family, 2.0)
    assert text is not None and "B2 2.27x against 4x (-43%)" in text and "calibrated" in text
    assert "B1 " not in text  # B1 is within 25% of 2x (it is the search's own constraint)
    misses = [m for m in family.members if m.phi and abs(m.flops_ratio / 2**m.phi - 1) > FAMILY_MISS]
    assert len(misses) == 6
    # At a sound size the same coefficients grow as the formula says, and nothing is said.
    sound = emit_family("resnet20_cifar", Coefficients(1.2, 1.1, 1.15), base_resolution=32, num_classes=10)
    assert all(m.last_map >= MIN_LAST_MAP for m in sound.members)


PLAN_GRID = ["--alpha", "1.0,1.2", "--beta", "1.0,1.1", "--gamma", "1.0,1.15", "--constraint", "formula",
             "--tolerance", "1", "--epochs", "1"]


def _plan(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> dict:
    assert main(["plan", "resnet18", "--data", "digits", *PLAN_GRID, "--storage", f"sqlite:///{tmp_path / 'p.db'}",
                 "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_plan_says_the_regime_and_prices_each_way_out(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    doc = _plan(capsys, tmp_path, "--base-resolution", "32")
    regime = doc["regime"]
    assert (regime["total_stride"], regime["last_map"]) == (32, 1) and regime["step_ratio"] > 2
    assert regime["degenerate"] and regime["warning"] in doc["warnings"]
    assert "stride rounding, not resolution" in regime["warning"]
    ways = {w["flags"]: w for w in regime["ways_out"]}
    assert set(ways) == {"--base-resolution 128", "--stem small", "resnet20_cifar --base-resolution 32"}
    for flags, way in ways.items():
        assert way["refused"] is None and 0 < way["seconds"]["min"] <= way["seconds"]["max"], flags
        assert flags in regime["warning"] and not way["regime"]["degenerate"]
    # A plan four times the size costs more than the degenerate one it replaces.
    assert ways["--base-resolution 128"]["seconds"]["min"] > doc["seconds"]["min"]
    assert not (tmp_path / "p.db").exists()

    doc = _plan(capsys, tmp_path, "--base-resolution", "128")
    assert doc["regime"]["last_map"] == 4 and not doc["regime"]["degenerate"]
    assert doc["regime"]["warning"] is None and doc["warnings"] == [] and doc["regime"]["ways_out"] == []

    doc = _plan(capsys, tmp_path, "--base-resolution", "32", "--stem", "small")
    assert (doc["regime"]["total_stride"], doc["regime"]["last_map"], doc["regime"]["stem"]) == (8, 4, "small")


def test_cost_and_family_show_the_regime(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "resnet18", "--resolution", "32", "--num-classes", "10", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["regime"]["total_stride"], doc["regime"]["last_map"]) == (32, 1) and doc["stem"] == "standard"
    assert "--stem small" in doc["regime"]["warning"] and "resnet20_cifar" in doc["regime"]["warning"]
    assert main(["cost", "resnet18", "--resolution", "32", "--num-classes", "10"]) == 0
    text = capsys.readouterr().out
    assert "last feature map" in text and "1x1" in text and "warning: regime:" in text

    assert main(["family", "resnet18", "--alpha", "1", "--beta", "1", "--gamma", "1.1", "--base-resolution", "32",
                 "--num-classes", "10", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["regime"]["last_map"] == 1 and [m["last_map"] for m in doc["members"]][:3] == [1, 2, 2]
    assert any("misses 2^phi" in w and "--calibrate" in w for w in doc["warnings"])
    assert main(["family", "resnet18", "--alpha", "1", "--beta", "1", "--gamma", "1.1", "--base-resolution", "32",
                 "--num-classes", "10", "--calibrate"]) == 0
    text = capsys.readouterr().out
    first, second = text.index("calibrated to 2^phi (use this one"), text.index("alpha^phi members")
    assert first < second  # the calibrated family first, when the alpha^phi one misses
    assert "printed first" in text


def test_bad_stems_are_one_line_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["cost", "resnet18", "--stem", "huge"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "huge" in err
    assert main(["cost", "user_baselines:small_cnn", "--stem", "small"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot take --stem small" in err and "Traceback" not in err
