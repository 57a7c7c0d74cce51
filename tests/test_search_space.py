"""The search space: grid parsing, the constraint, aliases and the infeasible-grid message."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from effscale.errors import UsageError
from effscale.models.cost import clear_cost_cache
from effscale.search.planning.candidates import REPRESENTATIVE_RULE, Constraint, Grid, enumerate_candidates, parse_grid


def test_parse_grid_range_and_list() -> None:
    assert parse_grid("1.0:1.2:0.05", "alpha") == (1.0, 1.05, 1.1, 1.15, 1.2)
    assert parse_grid("1.2,1.0,1.1,1.1", "beta") == (1.0, 1.1, 1.2)
    assert parse_grid([1.0, 1.3], "gamma") == (1.0, 1.3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.0:0.9:0.1", "is not a grid"),
        ("1.0:2.0:0", "is not a grid"),
        ("a,b", "is not a grid"),
        ("0.9,1.1", "contains 0.9"),
        ("nan", "contains nan"),
        ("", "is empty"),
        ("1:100000:0.001", "values; use a coarser step"),
    ],
)
def test_parse_grid_rejects(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_grid(text, "alpha")


def test_constraint_is_relative_to_target() -> None:
    rule = Constraint("measured", 2.0, 0.05)
    assert rule.accepts(cost_ratio=2.09, formula_ratio=9.0)
    assert not rule.accepts(cost_ratio=2.11, formula_ratio=2.0)
    assert Constraint("formula", 2.0, 0.05).accepts(cost_ratio=9.0, formula_ratio=1.92)
    assert rule.kind == "flops"  # "measured" is the FLOPs constraint's older name
    assert Constraint("activations", 2.0, 0.05).measured and not Constraint("formula").measured
    with pytest.raises(UsageError, match="--constraint 'bogus'"):
        Constraint("bogus")
    with pytest.raises(UsageError, match="--tolerance -0.1"):
        Constraint(tolerance=-0.1)
    with pytest.raises(UsageError, match="--target-ratio 0"):
        Constraint(target_ratio=0)


def test_measured_and_formula_constraints_keep_different_points() -> None:
    grid = Grid.parse("1.0:1.4:0.1", "1.0:1.3:0.1", "1.0:1.3:0.05")
    measured = enumerate_candidates("efficientnet_b0", grid, Constraint("measured", 2.0, 0.05), base_resolution=64)
    formula = enumerate_candidates("efficientnet_b0", grid, Constraint("formula", 2.0, 0.05), base_resolution=64)
    assert {c.key for c in measured.feasible} != {c.key for c in formula.feasible}
    for c in measured.feasible:
        assert abs(c.flops_ratio / 2.0 - 1) <= 0.05
    # Every candidate records both ratios, feasible or not.
    assert all(c.flops_ratio > 0 and c.formula_ratio >= 1 for c in measured.candidates)
    # The paper's own triple is feasible by the formula but costs ~2.5x once built.
    paper = next(c for c in formula.candidates if c.key == (1.2, 1.1, 1.15))
    assert paper.feasible and paper.flops_ratio > 2.3
    assert not next(c for c in measured.candidates if c.key == (1.2, 1.1, 1.15)).feasible


def test_aliases_share_one_representative() -> None:
    # On B0 every depth in (1.0, 1.25] builds the same 23 blocks: 1.1 and 1.2 are aliases.
    grid = Grid.parse("1.1,1.2", "1.0", "1.0")
    cands = enumerate_candidates("efficientnet_b0", grid, Constraint("measured", 1.0, 1.0), base_resolution=32)
    assert cands.counts() == {"grid": 2, "feasible": 2, "unique": 1, "aliases": 1}
    (group,) = cands.groups.values()
    # The representative is the alias whose formula ratio is nearest the target (1.1 vs 1.2).
    assert [c.key for c in group] == [(1.1, 1.0, 1.0), (1.2, 1.0, 1.0)]
    assert group[0].representative and not group[1].representative
    assert "formula ratio closest" in REPRESENTATIVE_RULE


class _HandMBConv(nn.Module):
    """MBConv written out from EfficientNet's Table 1 / torchvision in plain torch, not effscale's blocks."""

    def __init__(self, in_ch: int, out_ch: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        hidden = in_ch * expand
        self.expand = (
            nn.Sequential(nn.Conv2d(in_ch, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.SiLU())
            if expand != 1
            else nn.Identity()
        )
        self.depthwise = nn.Sequential(
            nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.SiLU(),
        )
        self.se_reduce = nn.Conv2d(hidden, max(1, in_ch // 4), 1)
        self.se_expand = nn.Conv2d(max(1, in_ch // 4), hidden, 1)
        self.project = nn.Sequential(nn.Conv2d(hidden, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch))
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.depthwise(self.expand(x))
        h = h * torch.sigmoid(self.se_expand(F.silu(self.se_reduce(F.adaptive_avg_pool2d(h, 1)))))
        h = self.project(h)
        return x + h if self.residual else h


def _hand_built_tiny() -> nn.Module:
    """effscale's ``tiny`` (specs.TINY) at d = w = 1, from its table: stem 16, three MBConv rows, head 128."""
    layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.SiLU()]
    in_ch = 16
    for expand, kernel, stride, out_ch, repeats in ((1, 3, 1, 16, 1), (4, 3, 2, 24, 2), (4, 5, 2, 40, 2)):
        for i in range(repeats):
            layers.append(_HandMBConv(in_ch, out_ch, expand, kernel, stride if i == 0 else 1))
            in_ch = out_ch
    layers += [nn.Conv2d(40, 128, 1, bias=False), nn.BatchNorm2d(128), nn.SiLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 1000)]
    return nn.Sequential(*layers).eval()


def _fvcore_flops(model: nn.Module, resolution: int) -> int:
    """fvcore's total, called directly: none of effscale's cost path (cache, area rescaling)."""
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, torch.zeros(1, 3, resolution, resolution))
    return int(analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).total())


def test_candidates_cost_what_a_hand_built_network_traces_to() -> None:
    # tiny at 32 px, and at gamma 1.05: 32 * 1.05 = 33.6 -> 34 px. Exact FLOPs, through a fresh
    # cost cache, so the area rescaling is what gets compared (fitted at 16 px, checked at 33).
    clear_cost_cache()
    cands = enumerate_candidates("tiny", Grid.parse("1.0", "1.0", "1.0,1.05"), Constraint("measured", 1.0, 1.0))
    hand = _hand_built_tiny()
    assert cands.baseline_flops == _fvcore_flops(hand, 32)
    assert {c.gamma: c.flops for c in cands.candidates} == {1.0: _fvcore_flops(hand, 32), 1.05: _fvcore_flops(hand, 34)}


def test_no_feasible_candidate_names_closest_and_a_tolerance() -> None:
    grid = Grid.parse("1.0", "1.0", "1.0,1.05")
    with pytest.raises(UsageError) as info:
        enumerate_candidates("tiny", grid, Constraint("measured", 2.0, 0.05))
    message = str(info.value)
    # 1.28 is not effscale's own output copied back: a hand-built tiny, traced by fvcore directly
    # at 34 px and 32 px, gives it, so a bug in effscale's cost path would show here.
    hand = _hand_built_tiny()
    assert round(_fvcore_flops(hand, 34) / _fvcore_flops(hand, 32), 2) == 1.28
    assert "no feasible candidate" in message and "closest: 1.28 at (1, 1, 1.05), 1.00 at (1, 1, 1)" in message
    # 1.2833 / 2 is 35.8% short of the target; the tolerance offered rounds that up, with a margin, to 0.37.
    assert "--tolerance 0.37" in message


def test_hundreds_of_candidates_are_measured_once_per_network() -> None:
    grid = Grid.parse("1.0:2.0:0.05", "1.0:1.5:0.05", "1.0,1.1,1.2")
    assert grid.size == 21 * 11 * 3
    start = time.perf_counter()
    cands = enumerate_candidates("tiny", grid, Constraint("measured", 2.0, 0.1))
    assert len(cands.candidates) == grid.size and cands.counts()["feasible"] > 0
    # Measured networks are far fewer than grid points: the cost cache does the rest.
    assert cands.counts()["unique"] < cands.counts()["feasible"]
    assert time.perf_counter() - start < 120  # generous: a correctness bound, not a speed target
