"""How a trial is written to its study, from creation to its last word. Driver side only.

Every trial is a plain Optuna trial: its parameters (α, β, γ for a search), one intermediate value
per epoch, and user attributes (network, seed, repeat, budget, metrics, history, the Ray node, and
for a FAIL its one-line ``fail_reason`` and ``fail_kind``), so optuna-dashboard reads it as is.

``fail_kind`` says what a FAIL means for a resumed search: "error" (the training itself failed:
out of memory, a diverged loss, an exception; trying again would fail again) is final, like PRUNED;
"worker" (a worker that died even after Ray's retries) and "interrupted" (a signal, a cancel, a
database outage) are run again. The names are `effscale.search.records.schema`'s; a FAIL is
written by `effscale.search.records.trials.fail_trial`.

Right after a trial's outcome is in Optuna, its summary (the row the trial pages read) is written
too (`effscale.search.records.summaries.record_trial`); a driver killed in between leaves the
repair to the next reader.
"""

from __future__ import annotations

import logging
from typing import Any

from optuna.trial import TrialState, create_trial

from effscale.search.records.optuna_access import create_running_trial, live_trial, stored_state
from effscale.search.records.schema import (
    BATCH_SIZE_ATTR,
    BUDGET_ATTR,
    DEVICE_ATTR,
    EPOCHS_ATTR,
    FAIL_ERROR,
    FAIL_INTERRUPTED,
    FAIL_WORKER,
    HISTORY_ATTR,
    IMAGES_PER_S_ATTR,
    LR_ATTR,
    NODE_ATTR,
    REPEAT_ATTR,
    SEED_ATTR,
    TRAIN_SECONDS_ATTR,
    VAL_LOSS_ATTR,
    VAL_TOP1_ATTR,
    WORKER_FINISHED_ATTR,
    WORKER_STARTED_ATTR,
)
from effscale.search.records.summaries import record_trial
from effscale.search.records.trials import fail_trial

LOGGER = logging.getLogger("effscale.search")
HISTORY_KEYS = ("epoch", "train_loss", "val_top1", "val_loss", "lr", "seconds", "images_per_s")
# The worker's result key -> the user attribute that keeps where and when it ran.
WHERE_ATTRS = (("node", NODE_ATTR), ("device", DEVICE_ATTR), ("started", WORKER_STARTED_ATTR),
               ("reported", WORKER_FINISHED_ATTR))


class TrialRecorder:
    """One running trial's record in the study."""

    def __init__(self, study: Any, trial_id: int, spec: Any) -> None:
        self.study = study
        self.trial = live_trial(study, trial_id)
        self.spec = spec
        self.history: list[dict[str, Any]] = []
        self.reported: set[int] = set()  # epochs with an intermediate value (Optuna keeps the first)

    @classmethod
    def create(cls, study: Any, distributions: dict[str, Any], spec: Any) -> "TrialRecorder":
        attrs = {**spec.attrs, REPEAT_ATTR: spec.repeat, SEED_ATTR: spec.seed, BATCH_SIZE_ATTR: spec.batch_size,
                 LR_ATTR: spec.lr, BUDGET_ATTR: spec.budget}
        template = create_trial(
            state=TrialState.RUNNING, params=spec.params,
            distributions={name: distributions[name] for name in spec.params}, user_attrs=attrs,
        )
        return cls(study, create_running_trial(study, template), spec)

    @property
    def number(self) -> int:
        return self.trial.number

    def epoch(self, result: dict[str, Any]) -> None:
        """Keep one epoch's metrics as history and as Optuna's intermediate value at that epoch.

        A worker restarted by Ray trains from scratch: its epochs count again from 1."""
        if result.get("epoch") is None or result.get("failed"):
            return
        epoch = int(result["epoch"])
        if not self.history:
            self._where(result)  # where it runs, as soon as it is known (a node may go away mid-trial)
        if self.history and epoch <= self.history[-1]["epoch"]:
            self.history = [h for h in self.history if h["epoch"] < epoch]
        self.history.append({k: result.get(k) for k in HISTORY_KEYS})
        if epoch not in self.reported and not self.spec.objectives:
            self.reported.add(epoch)
            self.trial.report(float(result["val_top1"]), epoch)

    def finish(self, result: dict[str, Any] | None, *, error: bool, stopping: bool) -> str:
        """Write the outcome; return the state's name ("complete", "pruned" or "fail")."""
        result = result or {}
        self.epoch(result)
        self._metrics(result)
        if result.get("failed"):
            reason = str(result.get("fail_reason") or "training failed")
            LOGGER.error("trial %d failed: %s\n%s", self.number, reason, result.get("fail_detail", ""))
            return self.fail(reason, kind=FAIL_ERROR)  # final: not trained again on resume
        if error:
            return self.fail("the trial's worker died, also after Ray's retries (--max-retries); see the search log",
                             kind=FAIL_WORKER)
        if not result.get("final", False):
            if stopping:
                return self.fail("interrupted", kind=FAIL_INTERRUPTED)
            return self._tell(TrialState.PRUNED)  # stopped by the scheduler before its budget ran out
        top1 = float(result["val_top1"])
        return self._tell(TrialState.COMPLETE, [top1, *self.spec.objectives] if self.spec.objectives else top1)

    def fail(self, reason: str, *, kind: str) -> str:
        """Write a FAIL (`fail_trial`); return "fail", or the state another driver settled it in."""
        if fail_trial(self.study, self.trial, reason=reason, kind=kind):
            record_trial(self.study, self.trial)
            return "fail"
        return stored_state(self.study, self.trial).name.lower()

    def _where(self, result: dict[str, Any]) -> None:
        """Where and when the worker ran it (its own clock: the driver creates a trial before a
        worker is free to start it)."""
        for key, attr in WHERE_ATTRS:
            if result.get(key):
                self.trial.set_user_attr(attr, result[key])

    def _metrics(self, result: dict[str, Any]) -> None:
        self._where(result)
        if not self.history:
            return
        seconds = sum(h["seconds"] or 0.0 for h in self.history)
        images = sum((h["images_per_s"] or 0.0) * (h["seconds"] or 0.0) for h in self.history)
        last = self.history[-1]
        for key, value in (
            (VAL_TOP1_ATTR, last["val_top1"]),
            (VAL_LOSS_ATTR, last["val_loss"]),
            (EPOCHS_ATTR, last["epoch"]),
            (TRAIN_SECONDS_ATTR, seconds),
            (IMAGES_PER_S_ATTR, images / seconds if seconds else 0.0),
            (HISTORY_ATTR, self.history),
        ):
            self.trial.set_user_attr(key, value)

    def _tell(self, state: TrialState, value: float | list[float] | None = None) -> str:
        current = stored_state(self.study, self.trial)
        if current.is_finished():
            return current.name.lower()  # already settled (reaped by a newer driver)
        self.study.tell(self.trial, value, state=state)
        record_trial(self.study, self.trial)
        return state.name.lower()
