"""One page of a study's trials, chosen in SQL from Optuna's own tables.

Loading a study's every trial (`get_all_trials`) decodes every trial's per-epoch history from its
user attributes; a 2,000-trial study costs that on each page of the trial table. Here one query
filters by state, orders and applies ``LIMIT``/``OFFSET`` in the database, reading only the few
columns a sort needs, and only the page's trials are loaded (``storage.get_trial``) and shaped by
`effscale.search.records.queries.trial_row`.

The sort keys are the row's fields, computed in SQL the way `trial_row` computes them:

* ``value``: `trial_val_top1`: a COMPLETE trial's objective (null when infinite); else its
  ``val_top1`` user attribute; else its last intermediate value (null when not finite);
* ``flops``: the ``flops`` user attribute;
* ``number``: the trial number.

A user attribute is JSON text, and a sort key only when it is a JSON number: NaN, Infinity,
booleans and null are null, as `as_float` makes them (a number stored as a JSON string, which
effscale never writes, sorts as null here though the row shows it). Nulls come last, in
trial-number order; ties go by trial number in the sort's direction. Optuna's tables are read,
never written; `effscale.search.records.optuna_access.rdb_tables` is Optuna's own description of them.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from optuna.trial import TrialState

from effscale.search.records.optuna_access import rdb_tables
from effscale.search.records.queries import SORT_FIELDS, STATE_NAMES, trial_row
from effscale.search.records.schema import FLOPS_ATTR, VAL_TOP1_ATTR
from effscale.storage.engine import get_engine

STATES_BY_NAME: dict[str, TrialState] = {v: k for k, v in STATE_NAMES.items()}
# A JSON number, as Python's json module writes one (NaN and Infinity are not numbers here).
_JSON_NUMBER = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"

_tables = rdb_tables()
_trials = _tables.trials
_values = _tables.values
_attrs = _tables.user_attrs
_steps = _tables.steps
_FINITE = _tables.FINITE_VALUE
_FINITE_STEP = _tables.FINITE_STEP


def _attr_number(key: str) -> Any:
    """The trial's user attribute ``key`` as a float when its JSON is a number, else NULL."""
    attr = _attrs.alias(f"attr_{key}")
    text = (
        sa.select(attr.c.value_json)
        .where(attr.c.trial_id == _trials.c.trial_id, attr.c.key == key)
        .scalar_subquery()
    )
    return sa.case((text.regexp_match(_JSON_NUMBER), sa.cast(text, sa.Float)), else_=None)


def _val_top1() -> Any:
    value = _values.alias("objective")
    objective = (
        sa.select(sa.case((value.c.value_type == _FINITE, value.c.value), else_=None))
        .where(value.c.trial_id == _trials.c.trial_id, value.c.objective == 0)
        .scalar_subquery()
    )
    has_objective = (
        sa.select(value.c.trial_value_id).where(value.c.trial_id == _trials.c.trial_id).exists()
    )
    step = _steps.alias("last_step")
    last_step = (
        sa.select(sa.case((step.c.intermediate_value_type == _FINITE_STEP, step.c.intermediate_value), else_=None))
        .where(step.c.trial_id == _trials.c.trial_id)
        .order_by(step.c.step.desc())
        .limit(1)
        .scalar_subquery()
    )
    return sa.case(
        (sa.and_(_trials.c.state == TrialState.COMPLETE, has_objective), objective),
        else_=sa.func.coalesce(_attr_number(VAL_TOP1_ATTR), last_step),
    )


def _sort_key(sort: str) -> Any:
    field = SORT_FIELDS[sort.lstrip("-")]
    if field == "number":
        return _trials.c.number
    if field == "flops":
        return _attr_number(FLOPS_ATTR)
    return _val_top1()


def _ordered(where: list[Any], sort: str) -> Any:
    """``SELECT trial_id ... ORDER BY`` the sort key (computed once per trial, in a subquery)."""
    keyed = sa.select(_trials.c.trial_id, _trials.c.number, _sort_key(sort).label("key")).where(*where).subquery()
    key, number = keyed.c.key, keyed.c.number
    missing = sa.case((key.is_(None), 1), else_=0)
    if sort.startswith("-"):
        # Present keys descend, ties by number descending; missing ones keep number order.
        order = [missing, key.desc(), sa.case((key.is_(None), number), else_=-number)]
    else:
        order = [missing, key.asc(), number.asc()]
    return sa.select(keyed.c.trial_id).order_by(*order)


def _where(study_id: int, state: str | None) -> list[Any]:
    conditions = [_trials.c.study_id == study_id]
    if state is not None:
        conditions.append(_trials.c.state == STATES_BY_NAME[state])
    return conditions


def count_trials(url: str, study_id: int, *, state: str | None = None) -> int:
    """How many trials ``study_id`` has (in ``state``, when given)."""
    query = sa.select(sa.func.count()).select_from(_trials).where(*_where(study_id, state))
    with get_engine(url).connect() as connection:
        return int(connection.execute(query).scalar_one())


def page_ids(url: str, study_id: int, *, state: str | None, sort: str, limit: int, offset: int) -> list[int]:
    """Optuna trial ids of one page, in ``sort`` order (``value``, ``number`` or ``flops``; a
    leading ``-`` for descending)."""
    query = _ordered(_where(study_id, state), sort).limit(limit).offset(offset)
    with get_engine(url).connect() as connection:
        return [row[0] for row in connection.execute(query)]


def trial_page(
    storage: Any, url: str, study_id: int, *, state: str | None, sort: str, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """``(total matching, rows of the page)``; each row is `trial_row` of one trial."""
    total = count_trials(url, study_id, state=state)
    ids = page_ids(url, study_id, state=state, sort=sort, limit=limit, offset=offset) if offset < total else []
    return total, [trial_row(storage.get_trial(trial_id)) for trial_id in ids]
