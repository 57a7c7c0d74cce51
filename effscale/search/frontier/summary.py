"""The front, and what the noise allows one to say about it. Pure functions on numbers.

Each point has its top-1 per paired seed (repeat r of every point trains on seed r) and its
measured cost ratio. A point is on the front when no other point has a mean top-1 at least as high
at a cost at most as high (one of them strictly): the front's points are mutually non-dominated by
mean. For every point behind it, the domination is "beyond noise" when some dominating point is
cheaper and `effscale.search.stats.clearly_worse` (the race's `SEPARATION_RULE`: a one-sided
paired t-test on the shared seeds) separates the two; else it is within noise, and the point is
"near" the front. The measured cost is exact (FLOPs, activations), so only the accuracy carries
noise. For a point on the front, ``no_better_than`` names the cheaper front points it is not
separably more accurate than: what its extra cost buys is within noise.
"""

from __future__ import annotations

from typing import Any

from effscale.search.stats import SEPARATION_RULE, clearly_worse, summarize


def front_rows(points: list[Any], values: dict[int, dict[int, float]]) -> list[dict[str, Any]]:
    """One row per trained point (``values``: index -> repeat -> top-1), cheapest first, each
    with mean ± se (n), its standing (front, near, behind) and the evidence for it."""
    rows = []
    for p in points:
        seeds = values.get(p.index, {})
        if not seeds:
            continue
        s = summarize([seeds[r] for r in sorted(seeds)])
        rows.append({**p.as_dict(), "top1_mean": s.mean, "top1_stderr": s.stderr, "n": s.n, "seeds": seeds})
    for row in rows:
        _standing(row, rows)
    rows.sort(key=lambda r: (r["cost_ratio"], -r["top1_mean"]))
    for row in rows:
        del row["seeds"]
    return rows


def _dominates(q: dict[str, Any], p: dict[str, Any]) -> bool:
    at_least = q["top1_mean"] >= p["top1_mean"] and q["cost_ratio"] <= p["cost_ratio"]
    return at_least and (q["top1_mean"] > p["top1_mean"] or q["cost_ratio"] < p["cost_ratio"])


def _standing(row: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    others = [q for q in rows if q is not row]
    dominators = [q for q in others if _dominates(q, row)]
    beyond = [q for q in dominators if q["cost_ratio"] < row["cost_ratio"] and clearly_worse(q["seeds"], row["seeds"])]
    row["dominated_by"] = [_name(q) for q in dominators]
    row["dominated_beyond_noise_by"] = [_name(q) for q in beyond]
    row["standing"] = "front" if not dominators else ("behind" if beyond else "near")
    cheaper = [q for q in others if q["cost_ratio"] < row["cost_ratio"] and not any(_dominates(o, q) for o in rows)]
    row["no_better_than"] = ([_name(q) for q in cheaper if not clearly_worse(row["seeds"], q["seeds"])]
                             if not dominators else [])


def _name(row: dict[str, Any]) -> str:
    return row["label"] if row["label"] != "drawn" else f"#{row['index']}"


def family_rows(members: list[Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each family member (a `Point`) with the standing of the trained point that builds its
    network (itself, or an earlier point it aliases: then ``same_network_as`` names that one)."""
    by_arch = {r["arch_id"]: r for r in rows}
    out = []
    for m in members:
        r = by_arch.get(m.arch_id)
        if r is None:
            continue  # not trained (yet): the frontier was stopped
        out.append({"name": m.label, "standing": r["standing"], "cost_ratio": r["cost_ratio"],
                    "top1_mean": r["top1_mean"], "top1_stderr": r["top1_stderr"], "n": r["n"],
                    "same_network_as": None if r["label"] == m.label else _name(r),
                    "dominated_beyond_noise_by": r["dominated_beyond_noise_by"]})
    return out


def frontier_document(name: str, identity: dict[str, Any], rows: list[dict[str, Any]], *,
                      rejected: dict[str, int], family: str | None, members: list[Any] = ()) -> dict[str, Any]:
    """What `effscale frontier` prints and stores (the study's ``FRONTIER_RESULT_ATTR``)."""
    return {
        "frontier": name, **{k: identity[k] for k in ("baseline", "data", "cost", "max_ratio", "repeats", "sampler")},
        "base_resolution": identity["base_resolution"], "bounds": identity["bounds"],
        "points": rows, "front": [_name(r) for r in rows if r["standing"] == "front"],
        "family": None if family is None else {
            "search": family, "members": family_rows(list(members), rows)},
        "counts": {"trained": len(rows), "drawn": sum(r["label"] == "drawn" for r in rows), **rejected},
        "rule": SEPARATION_RULE,
    }
