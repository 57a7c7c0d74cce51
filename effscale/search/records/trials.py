"""Failing a stored trial: the one way effscale writes a FAIL.

Three places end a trial as FAIL: the recorder (training raised, a worker died, the run was
stopped), the interruption that Ray could not stop in an orderly way, and the reaping of orphans a
dead driver left RUNNING. All three write the same record through `fail_trial`: a one-line
`FAIL_REASON_ATTR`, a `FAIL_KIND_ATTR` from `FAIL_KINDS` (what the FAIL means for a resumed run),
and, for an orphan, `REAPED_ATTR`. A trial that another driver settled meanwhile is left as it is.
"""

from __future__ import annotations

from collections.abc import Iterable

import optuna
from optuna.trial import FrozenTrial, TrialState

from effscale.search.records.optuna_access import storage_of, trial_id
from effscale.search.records.schema import FAIL_KIND_ATTR, FAIL_KINDS, FAIL_REASON_ATTR, REAPED_ATTR

REASON_MAX = 500  # characters of the reason's first line that are stored


def one_line_reason(reason: str) -> str:
    """What is stored of a reason: its first line, at most `REASON_MAX` characters."""
    return (str(reason).splitlines() or [""])[0][:REASON_MAX]


def fail_trial(
    study: optuna.Study, trial: FrozenTrial | optuna.Trial, *, reason: str, kind: str, orphan: bool = False
) -> bool:
    """Store ``trial`` as FAIL with its one-line ``reason`` and ``kind`` (one of `FAIL_KINDS`;
    ``orphan``: its driver had died). False, and nothing written, when it had finished already."""
    if kind not in FAIL_KINDS:
        raise ValueError(f"fail kind {kind!r}: use one of {', '.join(FAIL_KINDS)}")
    storage, tid = storage_of(study), trial_id(trial)
    if storage.get_trial(tid).state.is_finished():
        return False  # settled by another driver (a newer one reaped it)
    if orphan:
        storage.set_trial_system_attr(tid, REAPED_ATTR, True)
    storage.set_trial_user_attr(tid, FAIL_REASON_ATTR, one_line_reason(reason))
    storage.set_trial_user_attr(tid, FAIL_KIND_ATTR, kind)
    storage.set_trial_state_values(tid, TrialState.FAIL)
    return True


def fail_unfinished(
    study: optuna.Study, *, reason: str, kind: str, states: Iterable[TrialState] = (TrialState.RUNNING,),
    orphan: bool = False,
) -> int:
    """`fail_trial` every trial of ``study`` in ``states``; return how many this call failed."""
    trials = study.get_trials(deepcopy=False, states=tuple(states))
    return sum(fail_trial(study, trial, reason=reason, kind=kind, orphan=orphan) for trial in trials)
