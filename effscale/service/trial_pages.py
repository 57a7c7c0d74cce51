"""Pages of a study's trials and of their learning curves, each one indexed read.

A trial page is `effscale.search.records.summary_reads.SummaryReader.page`: the trial summaries'
indexed query, repaired first, returning whole `trial_row`s (the same query `effscale trials`
runs). The order is the API's: the sort's field (``value``: the row's ``val_top1``; ``flops``;
``number``) ascending, or descending with a leading ``-``, ties by trial number in the same
direction, rows without the field last in trial-number order.

A curve page reads Optuna's own tables (`effscale.search.records.optuna_access.rdb_tables`), never
written here: the page's trials by number, their ``history`` user attribute, and the intermediate
values of the few without one; nothing else of the trials is decoded.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from effscale.search.records.optuna_access import rdb_tables
from effscale.search.records.queries import STATE_NAMES
from effscale.search.records.schema import HISTORY_ATTR
from effscale.service.serializers import curve
from effscale.storage.engine import get_reader

STATES_BY_NAME = {v: k for k, v in STATE_NAMES.items()}

_tables = rdb_tables()
_trials, _attrs, _steps = _tables.trials, _tables.user_attrs, _tables.steps


def trial_page(state: Any, study_id: int, *, state_filter: str | None, sort: str, limit: int,
               offset: int) -> tuple[int, list[dict[str, Any]]]:
    """``(total matching, rows of the page)`` of the study with id ``study_id``."""
    return state.trials().page(study_id, state=state_filter, sort=sort, limit=limit, offset=offset)


def count_trials(url: str, study_id: int) -> int:
    """How many trials the study has (Optuna's count)."""
    with get_reader(url).connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).where(_trials.c.study_id == study_id)).scalar_one())


def curve_page(url: str, study: str, study_id: int, *, limit: int | None, offset: int) -> tuple[int, list[dict[str, Any]]]:
    """``(trials, curves of the page)``: the study's trials in number order from ``offset``."""
    with get_reader(url).connect() as connection:
        total = int(connection.execute(sa.select(sa.func.count()).where(_trials.c.study_id == study_id)).scalar_one())
        page = connection.execute(
            sa.select(_trials.c.trial_id, _trials.c.number, _trials.c.state).where(_trials.c.study_id == study_id)
            .order_by(_trials.c.number).limit(limit).offset(offset)).all()
        ids = [row.trial_id for row in page]
        histories = {trial_id: _history(text) for trial_id, text in _in_chunks(
            connection, ids, lambda chunk: sa.select(_attrs.c.trial_id, _attrs.c.value_json)
            .where(_attrs.c.trial_id.in_(chunk), _attrs.c.key == HISTORY_ATTR))}
        without = [i for i in ids if not (isinstance(histories.get(i), list) and histories[i])]
        steps: dict[int, dict[int, float | None]] = {}
        for trial_id, step, value, kind in _in_chunks(connection, without, lambda chunk: sa.select(
                _steps.c.trial_id, _steps.c.step, _steps.c.intermediate_value, _steps.c.intermediate_value_type)
                .where(_steps.c.trial_id.in_(chunk))):
            steps.setdefault(trial_id, {})[step] = value if kind == _tables.FINITE_STEP else None
    curves = [curve(study, row.number, STATE_NAMES.get(row.state, str(row.state).lower()),
                    histories.get(row.trial_id), steps.get(row.trial_id, {})) for row in page]
    return total, curves


def _in_chunks(connection: sa.Connection, ids: list[int], query: Any) -> list[Any]:
    out: list[Any] = []
    for start in range(0, len(ids), 500):
        out += connection.execute(query(ids[start:start + 500])).all()
    return out


def _history(value_json: str | None) -> Any:
    try:
        return json.loads(value_json)
    except ValueError:
        return None
