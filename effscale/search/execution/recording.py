"""How a trial is written to its study, from creation to its last word. Driver side only.

Every trial is a plain Optuna trial: its parameters (α, β, γ for a search), one intermediate value
per epoch, and user attributes (network, seed, repeat, budget, metrics, history, the Ray node, and
for a FAIL its one-line ``fail_reason`` and ``fail_kind``), so optuna-dashboard reads it as is.

``fail_kind`` says what a FAIL means for a resumed search: "error" (the training itself failed:
out of memory, a diverged loss, an exception; trying again would fail again) is final, like PRUNED;
"worker" (a worker that died even after Ray's retries) and "interrupted" (a signal, a cancel, a
database outage) are run again.
"""

from __future__ import annotations

import logging
from typing import Any

from optuna.trial import Trial, TrialState, create_trial

LOGGER = logging.getLogger("effscale.search")
HISTORY_KEYS = ("epoch", "train_loss", "val_top1", "val_loss", "lr", "seconds", "images_per_s")
FAIL_FINAL = "error"  # the fail_kind that is not retried on resume


class TrialRecorder:
    """One running trial's record in the study."""

    def __init__(self, study: Any, trial_id: int, spec: Any) -> None:
        self.study = study
        self.trial = Trial(study, trial_id)
        self.spec = spec
        self.history: list[dict[str, Any]] = []
        self.reported: set[int] = set()  # epochs with an intermediate value (Optuna keeps the first)

    @classmethod
    def create(cls, study: Any, distributions: dict[str, Any], spec: Any) -> "TrialRecorder":
        attrs = {**spec.attrs, "repeat": spec.repeat, "seed": spec.seed, "batch_size": spec.batch_size,
                 "lr": spec.lr, "budget": spec.budget}
        template = create_trial(
            state=TrialState.RUNNING, params=spec.params,
            distributions={name: distributions[name] for name in spec.params}, user_attrs=attrs,
        )
        return cls(study, study._storage.create_new_trial(study._study_id, template_trial=template), spec)

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
        if epoch not in self.reported:
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
            return self.fail(reason, kind=FAIL_FINAL)
        if error:
            return self.fail("the trial's worker died, also after Ray's retries (--max-retries); see the search log",
                             kind="worker")
        if not result.get("final", False):
            if stopping:
                return self.fail("interrupted", kind="interrupted")
            return self._tell(TrialState.PRUNED)  # stopped by the scheduler before its budget ran out
        return self._tell(TrialState.COMPLETE, float(result["val_top1"]))

    def fail(self, reason: str, *, kind: str) -> str:
        self.trial.set_user_attr("fail_reason", reason.splitlines()[0][:500])
        self.trial.set_user_attr("fail_kind", kind)
        return self._tell(TrialState.FAIL)

    def _where(self, result: dict[str, Any]) -> None:
        """Where and when the worker ran it (its own clock: the driver creates a trial before a
        worker is free to start it)."""
        for key, attr in (("node", "node"), ("device", "device"), ("started", "worker_started"),
                          ("reported", "worker_finished")):
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
            ("val_top1", last["val_top1"]),
            ("val_loss", last["val_loss"]),
            ("epochs", last["epoch"]),
            ("train_seconds", seconds),
            ("images_per_s", images / seconds if seconds else 0.0),
            ("history", self.history),
        ):
            self.trial.set_user_attr(key, value)

    def _tell(self, state: TrialState, value: float | None = None) -> str:
        current = self.study._storage.get_trial(self.trial._trial_id).state
        if current.is_finished():
            return current.name.lower()  # already settled (reaped by a newer driver)
        self.study.tell(self.trial, value, state=state)
        return state.name.lower()
