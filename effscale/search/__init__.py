"""The coefficient search, in sub-packages that follow a search's data flow.

* `planning`: what is decided before anything is written: the options (`SearchOptions`), the
  (α, β, γ) grid and the FLOPs constraint, the candidates measured and grouped by network, the
  memory and time each trial needs, and the ways out of a degenerate regime (`plan_search`).
* `records`: how a search is stored and read: the one schema of a stored study, the study (and
  its confirmation round's study) and their trials in Optuna's tables, the driver's heartbeat,
  the one status rule, and the read-only queries that the CLI, the REST API and the dashboard share.
* `execution`: how trials run: the one engine session a search and a comparison share (Ray, the
  database, the status row and heartbeat, stages of trials under signals), the one objective
  every trial trains with, the Ray Tune runner and its recorder, progress and logs.
* `verdict`: what to train next and what it concluded: the race on paired seeds, the confirmation
  round, the schedule that reads both from the study, and the warnings when rounding decided.
* `family`: B0..B7 from the winner, each member built and measured, the published EfficientNet
  table, and members re-sized to come nearest target^φ in measured cost.
* `compare`: compound scaling against depth-, width- and resolution-only arms at matched measured
  cost, trained on the search's own engine (options, arms, workload, summary, run).

`driver.py` runs the stages in order (`run_search`: plan_search → open_session → start_study →
run_candidates → select_winner → emit_search_family) and `effscale confirm`'s later round;
`stats.py` holds the paired-seed statistics the race and the comparison share.

Layers: this package sits above `effscale.trainer` and `effscale.models` (with `storage`, `errors`
and the settings below them all) and below `effscale.cli` and `effscale.service`. Inside it the
imports run one way, without a cycle (tests/test_layout.py checks both): `compare` on the
driver, the driver on the stages, `verdict` on `records` and `execution`'s trial specs, `records`
on `planning`'s candidates and the `family` it stores, `planning` on `execution` for a cluster's
resources, and every one of them on `stats`.

The public names below resolve on first use (PEP 562), so reading the options (as ``effscale
--help`` does) loads neither torch, Optuna nor Ray.
"""

from __future__ import annotations

from effscale._lazy import lazy_exports
_EXPORTS = {
    "CONSTRAINTS": "effscale.search.planning.grid",
    "Constraint": "effscale.search.planning.grid",
    "DEFAULT_GRID": "effscale.search.planning.grid",
    "Grid": "effscale.search.planning.grid",
    "parse_grid": "effscale.search.planning.grid",
    "SearchOptions": "effscale.search.planning.options",
    "SearchPlan": "effscale.search.planning.plan",
    "SearchResult": "effscale.search.driver",
    "plan_search": "effscale.search.planning.plan",
    "run_search": "effscale.search.driver",
    "Candidate": "effscale.search.planning.candidates",
    "CandidateSet": "effscale.search.planning.candidates",
    "enumerate_candidates": "effscale.search.planning.candidates",
    "PUBLISHED_EFFICIENTNET": "effscale.search.family.members",
    "Family": "effscale.search.family.members",
    "FamilyMember": "effscale.search.family.members",
    "build_member": "effscale.search.family.members",
    "emit_family": "effscale.search.family.members",
    "published_efficientnet_family": "effscale.search.family.members",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
