"""What a search trains next, and what it concluded: the race and the confirmation round, read
from the study every time they are asked, so a resumed search continues exactly where it stopped.

A trial belongs to a candidate (its α, β, γ), a repeat (its seed, `objective.trial_seed`) and a
stage (``confirmation`` false: the race at the proxy budget; true: the longer confirmation budget).
COMPLETE trials give values; PRUNED and FAIL of kind "error" take a candidate out of its stage;
other FAILs (interrupted, dead workers) are simply asked for again.

The race's trials are the search's study; the confirmation round's are the search's confirmation
study (`effscale.search.records.study.open_confirmation_study`), so that each study holds one
objective at one budget. A search stored before that kept its confirmation trials in its own
study: `records` reads both, so such a search resumes where it stopped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from effscale.search.records.schema import (
    BUDGET_ATTR,
    CONFIRMATION_ATTR,
    FAIL_KIND_ATTR,
    FAIL_REASON_ATTR,
    FINAL_FAIL_KINDS,
    REPEAT_ATTR,
)
from effscale.search.verdict.confirm import Fidelity, choose_confirmations, measure_fidelity, missing_confirmations
from effscale.search.verdict.race import TIE_BREAK, CandidateRecord, Verdict, decide, next_repeats
from effscale.search.stats import SEPARATION_RULE, Summary


def _key(params: dict[str, Any]) -> tuple[float, float, float] | None:
    if not all(p in params for p in ("alpha", "beta", "gamma")):
        return None
    return tuple(round(float(params[p]), 6) for p in ("alpha", "beta", "gamma"))  # type: ignore[return-value]


class SearchSchedule:
    """The race, then the confirmation round, over a study's candidates.

    ``confirmation`` is the search's confirmation study (None until it exists: the driver sets it
    when it creates it)."""

    def __init__(self, study: Any, plan: Any, fit: Any = None, *, confirmation: Any = None) -> None:
        self.study = study
        self.confirmation = confirmation
        self.plan = plan
        self.fit = fit  # effscale.search.planning.resources.TrialFit: batch, lr and Ray memory (None: the recipe's, no memory ask)
        self.options = plan.options
        self.by_key = {c.key: c for c in plan.candidates.representatives}

    # -- reading the study ------------------------------------------------------------------

    def records(self) -> tuple[list[CandidateRecord], list[CandidateRecord]]:
        """(race records, confirmation records), one per candidate, from the stored trials."""
        from optuna.trial import TrialState

        values: dict[tuple, dict[int, float]] = {}
        out: dict[tuple, str] = {}
        confirm_budget = self.options.confirm_budget
        for trial in self.trials():
            key = _key(trial.params)
            if key not in self.by_key:
                continue
            attrs = trial.user_attrs
            stage = bool(attrs.get(CONFIRMATION_ATTR, False))
            if stage and attrs.get(BUDGET_ATTR) != confirm_budget:
                continue  # a confirmation at another budget (an earlier `confirm --epochs`)
            slot = (stage, key)
            if trial.state == TrialState.COMPLETE and trial.value is not None:
                values.setdefault(slot, {}).setdefault(int(attrs.get(REPEAT_ATTR, 0)), float(trial.value))
            elif trial.state == TrialState.PRUNED:
                out[slot] = "pruned"
            elif trial.state == TrialState.FAIL and attrs.get(FAIL_KIND_ATTR) in FINAL_FAIL_KINDS:
                out[slot] = f"failed: {attrs.get(FAIL_REASON_ATTR, 'training failed')}"
        return [
            [CandidateRecord(k, c.flops, values.get((stage, k), {}), out.get((stage, k))) for k, c in self.by_key.items()]
            for stage in (False, True)
        ]  # type: ignore[return-value]

    def trials(self) -> list[Any]:
        """The race's trials (and an older search's confirmation trials), then the confirmation study's."""
        extra = self.confirmation.get_trials(deepcopy=False) if self.confirmation is not None else []
        return [*self.study.get_trials(deepcopy=False), *extra]

    def confirm_keys(self, proxy: list[CandidateRecord]) -> list[tuple]:
        """The race's winner first (it may come from a tie, not the top mean), then by mean."""
        verdict = decide(proxy, num_classes=self.plan.data.num_classes)
        ranked = [r.key for r in sorted((r for r in proxy if r.values and r.out is None),
                                        key=lambda r: (-r.summary.mean, r.flops, r.key))]
        if verdict is not None:
            ranked = [verdict.winner, *(k for k in ranked if k != verdict.winner)]
        return choose_confirmations(ranked, self.plan.confirm_top)

    # -- what to train next -------------------------------------------------------------------

    def next_batch(self) -> list[Any]:
        """The race's next round, else the confirmation runs still missing, else nothing."""
        proxy, confirm = self.records()
        todo = next_repeats(proxy, min_repeats=self.options.min_repeats, max_repeats=self.options.max_repeats)
        if todo:
            return [self.spec(key, repeat, confirmation=False) for key, repeat in todo]
        if self.plan.confirm_top <= 0:
            return []
        todo = missing_confirmations(confirm, self.confirm_keys(proxy), self.options.min_repeats)
        return [self.spec(key, repeat, confirmation=True) for key, repeat in todo]

    def race_batch(self) -> list[Any]:
        """`next_batch` while it is the race's round (the race's stage, in the search's study)."""
        batch = self.next_batch()
        return batch if batch and not batch[0].attrs[CONFIRMATION_ATTR] else []

    def confirmation_batch(self) -> list[Any]:
        """`next_batch` once it is the confirmation round's (its stage, in the confirmation study)."""
        return [spec for spec in self.next_batch() if spec.attrs[CONFIRMATION_ATTR]]

    def spec(self, key: tuple, repeat: int, *, confirmation: bool) -> Any:
        from effscale.search.execution.objective import trial_seed
        from effscale.search.execution.runner import TrialSpec
        from effscale.search.records.study import static_attrs

        cand, recipe, fit = self.by_key[key], self.plan.recipe, self.fit
        budget = self.options.confirm_budget if confirmation else recipe.budget.as_dict()
        return TrialSpec(
            key=key, repeat=repeat, seed=trial_seed(self.options.recipe.seed, repeat),
            params=dict(zip(("alpha", "beta", "gamma"), key)),
            attrs={**static_attrs(cand, self.plan.candidates), CONFIRMATION_ATTR: confirmation},
            depth=cand.depth, width=cand.width, resolution=cand.resolution, budget=budget,
            batch_size=fit.batch_size if fit else recipe.batch_size, lr=fit.lr if fit else recipe.peak_lr,
            memory=fit.memory if fit else None,
        )

    # -- the conclusion -------------------------------------------------------------------------

    def outcome(self) -> "Outcome":
        proxy, confirm = self.records()
        classes = self.plan.data.num_classes
        verdict = decide(proxy, num_classes=classes)
        confirmed = decide(confirm, num_classes=classes, race=proxy) if any(r.values for r in confirm) else None
        fidelity = None
        if verdict is not None and confirmed is not None:
            fidelity = measure_fidelity(proxy, confirm, proxy_winner=verdict.winner, confirmed_winner=confirmed.winner,
                                        longer_flag=f"--epochs {2 * (self.plan.recipe.budget.epochs or 1)} or more")
        return Outcome(verdict, confirmed, fidelity, proxy, confirm, self.by_key, self.options.confirm_budget)


@dataclass(frozen=True)
class Outcome:
    """A search's conclusion: the race's verdict, the confirmation's, and how well they agree."""

    verdict: Verdict | None
    confirmed: Verdict | None
    fidelity: Fidelity | None
    proxy: list[CandidateRecord]
    confirm: list[CandidateRecord]
    candidates: dict[tuple, Any]
    confirm_budget: dict[str, int]

    @property
    def family_key(self) -> tuple:
        """The family comes from the confirmed winner when there is one, else the race's."""
        return self.confirmed.winner if self.confirmed is not None else self.verdict.winner  # type: ignore[union-attr]

    @property
    def deciding(self) -> Verdict:
        return self.confirmed if self.confirmed is not None else self.verdict  # type: ignore[return-value]

    def warnings(self) -> list[str]:
        out = list(self.verdict.warnings if self.verdict else ())
        if self.fidelity is not None:
            if not self.fidelity.agrees:
                out.append(
                    f"the confirmed winner {_fmt(self.fidelity.confirmed_winner)} differs from the proxy's "
                    f"{_fmt(self.fidelity.proxy_winner)} (Kendall tau {self.fidelity.kendall_tau:.2f}); "
                    "the family comes from the confirmed winner"
                )
            if self.fidelity.warning:
                out.append(self.fidelity.warning)
        return out

    def document(self, *, failures: list[str] | tuple[str, ...]) -> dict[str, Any]:
        """The verdict as `search --json`, the REST API and the stored result show it (NaN, e.g. a
        tau over fewer than two confirmed candidates, as null: JSON has no NaN)."""
        return _json_safe(self._document(failures))

    def _document(self, failures: list[str] | tuple[str, ...]) -> dict[str, Any]:
        key = self.family_key
        proxy = self.verdict.summaries.get(key) if self.verdict else None
        deciding = self.deciding
        cand = self.candidates[key]
        best = {
            **dict(zip(("alpha", "beta", "gamma"), key)),
            **_stats("val_top1", proxy),
            "confirmed": _stats("val_top1", self.confirmed.summaries.get(key)) if self.confirmed else None,
            "tied_with": [{**dict(zip(("alpha", "beta", "gamma"), k)), **_stats("val_top1", deciding.summaries.get(k))}
                          for k in deciding.tied],
            "chosen_by": "confirmation" if self.confirmed is not None else "race",
            "tie_break": TIE_BREAK,
            "separation_rule": SEPARATION_RULE,
            "flops": cand.flops, "flops_ratio": cand.flops_ratio, "formula_ratio": cand.formula_ratio,
            "activations": cand.activations, "activations_ratio": cand.activations_ratio,
            "latency_ms": cand.latency_ms, "latency_ratio": cand.latency_ratio,
            "cost": cand.cost, "cost_ratio": cand.cost_ratio,
        }
        return {"best": best, "fidelity": self._fidelity_document(), "warnings": self.warnings(),
                "failures": list(failures)}

    def _fidelity_document(self) -> dict[str, Any] | None:
        f = self.fidelity
        if f is None:
            return None
        return {
            "kendall_tau": f.kendall_tau, "tau_interval": list(f.tau_interval),
            "proxy_winner": dict(zip(("alpha", "beta", "gamma"), f.proxy_winner)),
            "confirmed_winner": dict(zip(("alpha", "beta", "gamma"), f.confirmed_winner)),
            "confirm_epochs": self.confirm_budget.get("epochs"), "confirm_steps": self.confirm_budget.get("steps"),
            "candidates": len(f.candidates), "repeats": f.repeats, "agrees": f.agrees, "warning": f.warning,
        }

    def candidate_rows(self) -> list[dict[str, Any]]:
        """One aggregate row per candidate (effscale's own `effscale_candidates` table)."""
        confirm = {r.key: r for r in self.confirm}
        rows = []
        for record in self.proxy:
            c, s = self.candidates[record.key], record.summary
            conf = confirm[record.key].summary if record.key in confirm else Summary(0, float("nan"), None)
            rows.append({
                **dict(zip(("alpha", "beta", "gamma"), record.key)), "arch_id": c.arch_id, "flops": c.flops,
                "activations": c.activations, "cost": c.cost, "cost_ratio": c.cost_ratio,
                "standing": self._standing(record), "n": s.n, "mean": s.mean if s.n else None, "stderr": s.stderr,
                "confirm_n": conf.n, "confirm_mean": conf.mean if conf.n else None, "confirm_stderr": conf.stderr,
            })
        return sorted(rows, key=lambda r: (r["mean"] is None, -(r["mean"] or 0.0)))

    def _standing(self, record: CandidateRecord) -> str:
        """Winner; tied (with the winner, in the stage that decided, or in the race for a candidate
        the confirmation did not retrain); separated; or out (failed, pruned, untrained)."""
        if record.out is not None:
            return "pruned" if record.out == "pruned" else "failed"
        if not record.values:
            return "untrained"
        if record.key == self.family_key:
            return "winner"
        confirmed = any(r.key == record.key and r.values for r in self.confirm)
        tied = record.key in self.deciding.tied or (
            not confirmed and self.verdict is not None and record.key in (self.verdict.tied + (self.verdict.winner,))
        )
        return "tied" if tied else "separated"


def _stats(prefix: str, summary: Summary | None) -> dict[str, Any]:
    if summary is None:
        return {f"{prefix}_mean": None, f"{prefix}_stderr": None, "repeats": 0}
    return {f"{prefix}_mean": summary.mean, f"{prefix}_stderr": summary.stderr, "repeats": summary.n}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _fmt(key: tuple) -> str:
    return "(" + ", ".join(f"{v:g}" for v in key) + ")"
