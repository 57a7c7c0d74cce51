"""Everything effscale takes from Optuna below its public Study API, in one place.

Optuna's public API addresses a study by name and a trial by number; its storage addresses both
by internal ids, which only private attributes (``Study._storage``, ``Study._study_id``,
``FrozenTrial._trial_id``, ...) reveal, and its table models live in a private module. effscale
needs them where the public API has no door: to create a RUNNING trial with its attributes in one
write (Ray decides when a trial starts, not ``study.ask``), to fail a trial some other process left
RUNNING, to keep the driver's identity on the study, to read Optuna's tables in SQL (the trial
summaries' repair, the learning curves) and to read a few trials in one batch. Each such use is one
small named function here, and each private is read in one function only (`storage_of`,
`study_id`, `trial_id`, `rdb_tables`, `rdb_storage`, `trials_by_id`); no other module touches an
Optuna private, so an Optuna upgrade that moves one is a change to this file alone.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage ``study`` reads and writes (for effscale's driver: the retrying one)."""
    return study._storage


def study_id(study: Any) -> int:
    """The storage's id of a `Study`, `FrozenStudy` or `StudySummary`."""
    return study._study_id


def trial_id(trial: FrozenTrial | optuna.Trial) -> int:
    """The storage's id of a `FrozenTrial` or a live `Trial`."""
    return trial._trial_id


def create_running_trial(study: optuna.Study, template: FrozenTrial) -> int:
    """Store ``template`` (RUNNING, with its params and user attributes) as a new trial in one
    write; return its id. ``study.add_trial`` takes finished trials only, and ``study.ask``
    cannot carry attributes or fixed params into the same write."""
    return storage_of(study).create_new_trial(study_id(study), template_trial=template)


def live_trial(study: optuna.Study, trial_id: int) -> optuna.Trial:
    """The `Trial` for a stored RUNNING trial (what ``study.ask`` would have returned), to report
    intermediate values and to tell."""
    return optuna.Trial(study, trial_id)


def stored_state(study: optuna.Study, trial: FrozenTrial | optuna.Trial) -> TrialState:
    """The trial's state as stored now (another driver may have settled it meanwhile)."""
    return storage_of(study).get_trial(trial_id(trial)).state


def study_id_by_name(storage: optuna.storages.BaseStorage, name: str) -> int | None:
    """The id of study ``name`` in ``storage``; None when there is none."""
    try:
        return storage.get_study_id_from_name(name)
    except KeyError:
        return None


def trial_by_number(storage: optuna.storages.BaseStorage, study_id: int, number: int) -> FrozenTrial:
    """Trial ``number`` of the study with id ``study_id`` (`KeyError` when there is none)."""
    return storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study_id, number))


def set_study_system_attr(study: optuna.Study, key: str, value: Any) -> None:
    """A study system attribute (``Study.set_system_attr`` is gone from Optuna's public API)."""
    storage_of(study).set_study_system_attr(study_id(study), key, value)


def study_system_attrs(study: optuna.Study) -> dict[str, Any]:
    return storage_of(study).get_study_system_attrs(study_id(study))


def rdb_tables() -> SimpleNamespace:
    """Optuna's own description of its RDB tables (``optuna.storages._rdb.models``), for reads in
    SQL: ``studies``, ``study_user_attrs``, ``study_system_attrs``, ``directions``, ``trials``,
    ``values``, ``user_attrs``, ``steps`` (intermediate values), ``params``, and the enum members
    ``FINITE_VALUE`` and ``FINITE_STEP`` that mark a finite stored number."""
    from optuna.storages._rdb import models

    return SimpleNamespace(
        studies=models.StudyModel.__table__,
        study_user_attrs=models.StudyUserAttributeModel.__table__,
        study_system_attrs=models.StudySystemAttributeModel.__table__,
        directions=models.StudyDirectionModel.__table__,
        trials=models.TrialModel.__table__,
        values=models.TrialValueModel.__table__,
        user_attrs=models.TrialUserAttributeModel.__table__,
        steps=models.TrialIntermediateValueModel.__table__,
        params=models.TrialParamModel.__table__,
        FINITE_VALUE=models.TrialValueModel.TrialValueType.FINITE,
        FINITE_STEP=models.TrialIntermediateValueModel.TrialIntermediateValueType.FINITE,
    )


def rdb_storage(storage: optuna.storages.BaseStorage) -> optuna.storages.RDBStorage | None:
    """The `RDBStorage` under ``storage`` (effscale's retrying wrapper, Optuna's cache); None for a
    storage that is not a database (an empty read-only one)."""
    seen = 0
    while not isinstance(storage, optuna.storages.RDBStorage) and seen < 4:
        inner = getattr(storage, "inner", None) or getattr(storage, "_backend", None)
        if inner is None:
            return None
        storage, seen = inner, seen + 1
    return storage if isinstance(storage, optuna.storages.RDBStorage) else None


def trials_by_id(storage: optuna.storages.BaseStorage, study: int, ids: set[int]) -> list[FrozenTrial]:
    """The trials of study ``study`` whose ids are in ``ids``, read in one batch (Optuna's own
    batched read, the one its cache uses for new trials) rather than one ``get_trial`` each."""
    rdb = rdb_storage(storage)
    if not ids:
        return []
    if rdb is None:
        return [t for t in storage.get_all_trials(study, deepcopy=False) if trial_id(t) in ids]
    return [t for t in rdb._get_trials(study, None, set(ids), max(ids)) if trial_id(t) in ids]
