"""A database's studies read in SQL: ids by name, user attributes, directions, the driver's
system attribute and trial counts by state.

Optuna's storage API answers each of these with an ORM session of its own (a checkout, the query,
a commit); the REST API asks for them on every request, several times over. Here each is one
statement on a connection the caller holds, over Optuna's own table descriptions
(`effscale.search.records.optuna_access.rdb_tables`), decoded as Optuna decodes them (JSON text).
Nothing here writes.

    with get_engine(url).connect() as connection:
        study = catalog.study_by_name(connection, "my-search")   # a `CatalogStudy` or None
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from optuna.trial import TrialState

from effscale.search.records.optuna_access import rdb_tables

_tables = rdb_tables()
_studies, _attrs, _system, _directions, _trials = (
    _tables.studies, _tables.study_user_attrs, _tables.study_system_attrs, _tables.directions, _tables.trials)


@dataclass(frozen=True)
class CatalogStudy:
    """One study as Optuna stores it: id, name and user attributes (decoded)."""

    study_id: int
    name: str
    user_attrs: dict[str, Any]


def _decode(value_json: str | None) -> Any:
    try:
        return json.loads(value_json) if value_json is not None else None
    except ValueError:
        return None


def _studies_with_attrs(connection: sa.Connection, where: Iterable[Any]) -> list[CatalogStudy]:
    """The studies matching ``where``, in id order (creation order), each with its user attributes:
    one outer join."""
    query = (sa.select(_studies.c.study_id, _studies.c.study_name, _attrs.c.key, _attrs.c.value_json)
             .select_from(_studies.outerjoin(_attrs, _attrs.c.study_id == _studies.c.study_id))
             .where(*where).order_by(_studies.c.study_id))
    found: dict[int, CatalogStudy] = {}
    for study_id, name, key, value in connection.execute(query):
        study = found.setdefault(study_id, CatalogStudy(study_id, name, {}))
        if key is not None:
            study.user_attrs[key] = _decode(value)
    return list(found.values())


def all_studies(connection: sa.Connection) -> list[CatalogStudy]:
    """Every study, oldest first (Optuna's ``get_all_studies`` order)."""
    return _studies_with_attrs(connection, ())


def study_by_name(connection: sa.Connection, name: str) -> CatalogStudy | None:
    """Study ``name``, or None."""
    found = _studies_with_attrs(connection, (_studies.c.study_name == name,))
    return found[0] if found else None


def study_id(connection: sa.Connection, name: str, *, unless: str | None = None) -> int | None:
    """The id of study ``name``; None when there is none, or when it has the user attribute
    ``unless`` holding a JSON object (one read of the id and that attribute alone)."""
    attr = _attrs.c.value_json
    joined = _studies.outerjoin(_attrs, sa.and_(_attrs.c.study_id == _studies.c.study_id, _attrs.c.key == unless))
    found = connection.execute(sa.select(_studies.c.study_id, attr).select_from(joined)
                               .where(_studies.c.study_name == name)).first()
    if found is None or (unless is not None and isinstance(_decode(found[1]), dict)):
        return None
    return int(found[0])


def directions(connection: sa.Connection, study_id: int) -> list[str]:
    """The study's directions by objective, as ``"maximize"``/``"minimize"``."""
    query = sa.select(_directions.c.direction).where(_directions.c.study_id == study_id).order_by(_directions.c.objective)
    return [d.name.lower() for (d,) in connection.execute(query)]


def system_attr(connection: sa.Connection, study_id: int, key: str) -> Any:
    """One system attribute of the study (None when it has none)."""
    query = sa.select(_system.c.value_json).where(_system.c.study_id == study_id, _system.c.key == key)
    return _decode(connection.execute(query).scalar())


def running_and_all(connection: sa.Connection, study_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """study id -> (trials RUNNING, trials in all) for each of ``study_ids``: one grouped count."""
    ids = sorted(set(study_ids))
    if not ids:
        return {}
    running = sa.func.count(sa.case((_trials.c.state == TrialState.RUNNING, 1)))
    query = (sa.select(_trials.c.study_id, running, sa.func.count())
             .where(_trials.c.study_id.in_(ids)).group_by(_trials.c.study_id))
    counts = {i: (0, 0) for i in ids}
    counts.update({study_id: (int(r), int(n)) for study_id, r, n in connection.execute(query)})
    return counts
