"""Family emission: members, both cost figures, JSON round trip and the builder."""

from __future__ import annotations

import json

import pytest

from effscale import Coefficients, Family, build_member, emit_family, published_efficientnet_family
from effscale.errors import UsageError
from effscale.models import count_params


@pytest.fixture(scope="module")
def paper_family() -> Family:
    return emit_family("efficientnet_b0", Coefficients(1.2, 1.1, 1.15))


def test_members_b0_to_b7(paper_family: Family) -> None:
    assert [m.name for m in paper_family.members] == [f"B{i}" for i in range(8)]
    b0, b1 = paper_family.members[:2]
    assert (b0.depth, b0.width, b0.resolution, b0.flops_ratio) == (1.0, 1.0, 224, 1.0)
    assert b0.params == 5_288_548
    assert (b1.depth, b1.width, b1.resolution) == (pytest.approx(1.2), pytest.approx(1.1), 258)
    assert b1.formula_ratio == pytest.approx(1.9205, abs=1e-3)
    assert 2.45 < b1.flops_ratio < 2.65
    flops = [m.flops for m in paper_family.members]
    assert flops == sorted(flops)
    for m in paper_family.members:
        assert m.formula_ratio == pytest.approx((1.2 * 1.1**2 * 1.15**2) ** m.phi)


def test_json_round_trip_and_build(paper_family: Family, tmp_path) -> None:
    path = paper_family.save(tmp_path / "family.json")
    assert json.loads(path.read_text())["format"] == "effscale.family/1"
    loaded = Family.load(path)
    assert loaded == paper_family
    model = build_member(loaded, "B2")
    assert count_params(model) == loaded.member("B2").params


def test_unknown_member_and_bad_files(paper_family: Family, tmp_path) -> None:
    with pytest.raises(UsageError, match="no member 'B9'"):
        build_member(paper_family, "B9")
    with pytest.raises(UsageError, match="does not exist"):
        Family.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        Family.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"format": "x"}')
    with pytest.raises(UsageError, match="not an effscale family"):
        Family.load(tmp_path / "other.json")


def test_published_table_matches_torchvision() -> None:
    family = published_efficientnet_family()
    assert [m.resolution for m in family.members] == [224, 240, 260, 300, 380, 456, 528, 600]
    assert family.member("B7").params == 66_347_960
    assert family.member("B3").dropout == 0.3
    model = build_member(family, "B7")
    assert model.dropout.p == 0.5


def test_user_baseline_family(tmp_path) -> None:
    family = emit_family("user_baselines:small_cnn", Coefficients(1.2, 1.1, 1.15), phis=range(3), num_classes=10)
    assert family.base_resolution == 32
    assert [m.resolution for m in family.members] == [32, 37, 42]
    loaded = Family.load(family.save(tmp_path / "f.json"))
    assert count_params(build_member(loaded, "B1")) == family.member("B1").params


def test_empty_phis_refused() -> None:
    with pytest.raises(UsageError, match="phis is empty"):
        emit_family("tiny", Coefficients(1.2, 1.1, 1.15), phis=[])
