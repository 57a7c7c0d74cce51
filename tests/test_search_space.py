"""The search space: grid parsing, the constraint, aliases and the infeasible-grid message."""

from __future__ import annotations

import time

import pytest

from effscale.errors import UsageError
from effscale.search.space import REPRESENTATIVE_RULE, Constraint, Grid, enumerate_candidates, parse_grid


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
    assert rule.accepts(flops_ratio=2.09, formula_ratio=9.0)
    assert not rule.accepts(flops_ratio=2.11, formula_ratio=2.0)
    assert Constraint("formula", 2.0, 0.05).accepts(flops_ratio=9.0, formula_ratio=1.92)
    with pytest.raises(UsageError, match="--constraint 'flops'"):
        Constraint("flops")
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


def test_no_feasible_candidate_names_closest_and_a_tolerance() -> None:
    grid = Grid.parse("1.0", "1.0", "1.0,1.05")
    with pytest.raises(UsageError) as info:
        enumerate_candidates("tiny", grid, Constraint("measured", 2.0, 0.05))
    message = str(info.value)
    assert "no feasible candidate" in message and "closest: 1.28 at (1, 1, 1.05), 1.00 at (1, 1, 1)" in message
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
