"""One run of trials, as a search and a comparison both do it: under Ctrl-C/SIGTERM handling, with
Ray's logs captured to the run's log file, a progress view, and the stop recorded.

A run is one or more `Stage`s in order, each a round of trials written to its own study (a
search's race, then its confirmation round in the confirmation study; a comparison's arms). A
stage with nothing to train is skipped; one that is stopped ends the run.

`execute` returns how the run ended; trials Tune cut short are already recorded as FAIL with the
stop reason ("interrupted" or "cancelled"). A database that stays unreachable past the retry
window raises `SearchInterrupted`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from effscale.errors import SearchInterrupted
from effscale.search.records.schema import FAIL_INTERRUPTED


@dataclass
class Execution:
    stop_reason: str | None  # None: the policy ran out of trials; else "interrupted" or "cancelled"
    stopped_trials: int
    exit_code: int  # 130 / 143 for a signal, 1 otherwise


@dataclass(frozen=True)
class Stage:
    """One round of trials and the study they are written to.

    ``study`` is an Optuna study, or a callable that opens (or creates) it: called only when the
    stage has something to train, so a round that never runs leaves no empty study behind."""

    study: Any
    distributions: dict[str, Any]
    next_batch: Callable[[], list[Any]]

    def open(self) -> Any:
        return self.study() if callable(self.study) else self.study


def execute(
    *,
    name: str,
    stages: Sequence[Stage],
    baseline: str,
    recipe: Any,
    data: Any,
    resources: Any,
    log_path: Path | None,
    stem: str = "standard",
    progress: bool | None = None,
    reaped: int = 0,
    scheduler: str = "none",
    grace_period: int = 1,
    cancel_requested: Callable[[], bool] | None = None,
    on_forced_stop: Callable[[], None] | None = None,
) -> Execution:
    """Run each stage's trials until its ``next_batch`` hands out none, or until stopped."""
    from effscale.search.execution.interrupts import Interrupts
    from effscale.search.execution.logs import captured_logs
    from effscale.search.execution.objective import TrialSetup
    from effscale.search.execution.progress import SearchProgress

    view = SearchProgress(name, reaped=reaped, enabled=progress)
    setup = TrialSetup(baseline, recipe, "auto", max(1, int(math.floor(resources.cpus_per_trial))), stem)
    stop: dict[str, Any] = {"reason": None, "study": None}  # the study being written to, for the watchdog
    interrupts = Interrupts(on_deadline=lambda: record_interruption(stop["study"], then=on_forced_stop))

    def should_stop() -> bool:
        if interrupts.received is not None:
            stop["reason"] = "interrupted"
        elif cancel_requested is not None and cancel_requested():
            stop["reason"] = "cancelled"
        return stop["reason"] is not None

    stopped = 0
    with interrupts, captured_logs(log_path), view:
        for stage in stages:
            if should_stop():
                break
            if not stage.next_batch():
                continue  # nothing to train in this round (a resumed run that finished it)
            stop["study"] = stage.open()
            stopped += _run_stage(name, stop["study"], stage, setup=setup, data=data, resources=resources,
                                  scheduler=scheduler, grace_period=grace_period, recipe=recipe, view=view,
                                  should_stop=should_stop, reason=lambda: stop["reason"])
            if stop["reason"] is not None:
                break
    code = interrupts.exit_code if stop["reason"] == "interrupted" else 1
    return Execution(stop["reason"], stopped, code)


def _run_stage(name: str, study: Any, stage: Stage, *, setup: Any, data: Any, resources: Any, scheduler: str,
               grace_period: int, recipe: Any, view: Any, should_stop: Callable[[], bool],
               reason: Callable[[], str | None]) -> int:
    """One stage on Ray Tune; the trials it cut short recorded as FAIL; returns how many."""
    from effscale.search.execution.objective import ray_trainable
    from effscale.search.execution.runner import TrialEvents, run_trials
    from effscale.storage.retry import DatabaseUnavailable

    try:
        outcome = run_trials(
            study=study, distributions=stage.distributions, next_batch=stage.next_batch, trainable=ray_trainable,
            trainable_kwargs={"setup": setup, "data": data}, resources=resources, scheduler=scheduler,
            max_epochs=recipe.budget.epochs or 10_000, grace_period=grace_period,
            events=TrialEvents(view.trial_started, view.trial_finished), should_stop=should_stop,
        )
    except DatabaseUnavailable as exc:
        raise SearchInterrupted(f"{name!r} stopped: {exc}") from None
    for recorder in outcome.unfinished:
        recorder.fail(reason() or "interrupted", kind=FAIL_INTERRUPTED)
    return len(outcome.unfinished)


def record_interruption(study: Any, *, then: Callable[[], None] | None = None) -> None:
    """When Ray cannot stop in an orderly way (its own processes got the signal too): the study's
    RUNNING trials become FAIL "interrupted" straight in the database, then ``then`` runs."""
    from effscale.search.records.trials import fail_unfinished

    if study is not None:
        fail_unfinished(study, reason="interrupted", kind=FAIL_INTERRUPTED)
    if then is not None:
        then()
