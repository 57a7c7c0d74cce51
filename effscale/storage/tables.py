"""effscale's own tables and their migrations.

Trials stay in Optuna's tables; ours hold only what Optuna has no place for:

* ``effscale_searches``: one row per search (keyed by the Optuna study name) with its status,
  config (JSON text), timestamps, error and a cancel flag.
* ``effscale_families``: the emitted scaled family (JSON text), one per search.
* ``effscale_candidates``: one row per candidate network of a search, aggregating its trials
  (repeats): n, mean and standard error of top-1, its standing in the race (winner, tied,
  separated, failed, pruned), and the same for its confirmation runs.
* ``effscale_trial_summaries`` (v3): one typed row per Optuna trial, the flat view every reader
  shows (`effscale.search.records.queries.trial_row`'s fields), indexed for the trial pages' filter
  and sorts. Optuna's tables stay the truth: a row is an index of its trial, written by the driver
  right after the trial's result and repaired by readers when Optuna's record is newer
  (`effscale.search.records.summaries`). It holds nothing Optuna has not.
* ``effscale_schema_version``: one row, the version of the tables above.

``effscale_searches.result_json`` (v2) holds the verdict: the winner with its evidence, the tied
set, the proxy-fidelity figures, warnings and failure summaries.

Schema changes go through `MIGRATIONS`, an ordered list of steps; `migrate` applies those newer
than the recorded version in one transaction and records the new version. To change the schema:
edit the models, then append a step that brings a database at the previous version to the new one
(each step must only use its own DDL, never the current models, so that old steps stay valid).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from effscale.errors import UsageError

SEARCHES_TABLE = "effscale_searches"
FAMILIES_TABLE = "effscale_families"
CANDIDATES_TABLE = "effscale_candidates"
TRIAL_SUMMARIES_TABLE = "effscale_trial_summaries"
VERSION_TABLE = "effscale_schema_version"
STUDY_NAME_MAX = 512  # Optuna's own limit on study names

# An arbitrary constant: the PostgreSQL advisory lock that serializes concurrent first uses.
_MIGRATION_LOCK_KEY = 0x0EFF5CA1E


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are stored as UTC and
    read back with ``tzinfo=UTC``. Naive datetimes are refused (they are always a bug here).
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: use datetime.now(timezone.utc)")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


class Base(DeclarativeBase):
    """Declarative base with its own metadata (never Optuna's)."""


class SearchRow(Base):
    __tablename__ = SEARCHES_TABLE

    study_name: Mapped[str] = mapped_column(sa.String(STUDY_NAME_MAX), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    config_json: Mapped[str] = mapped_column(sa.Text, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    result_json: Mapped[str | None] = mapped_column(sa.Text, nullable=True)


class FamilyRow(Base):
    __tablename__ = FAMILIES_TABLE

    study_name: Mapped[str] = mapped_column(
        sa.String(STUDY_NAME_MAX),
        sa.ForeignKey(f"{SEARCHES_TABLE}.study_name", ondelete="CASCADE"),
        primary_key=True,
    )
    family_json: Mapped[str] = mapped_column(sa.Text, nullable=False)
    saved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class CandidateRow(Base):
    __tablename__ = CANDIDATES_TABLE

    study_name: Mapped[str] = mapped_column(
        sa.String(STUDY_NAME_MAX),
        sa.ForeignKey(f"{SEARCHES_TABLE}.study_name", ondelete="CASCADE"),
        primary_key=True,
    )
    candidate: Mapped[str] = mapped_column(sa.String(200), primary_key=True)  # "alpha,beta,gamma"
    alpha: Mapped[float] = mapped_column(sa.Float, nullable=False)
    beta: Mapped[float] = mapped_column(sa.Float, nullable=False)
    gamma: Mapped[float] = mapped_column(sa.Float, nullable=False)
    arch_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    flops: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    standing: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    n: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    mean: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    stderr: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    confirm_n: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    confirm_mean: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    confirm_stderr: Mapped[float | None] = mapped_column(sa.Float, nullable=True)


# One row per Optuna trial (`effscale.search.records.summaries` writes and repairs it): the fields of
# `effscale.search.records.queries.trial_row` as typed columns (JSON text for the two lists),
# then what the readers need besides: Optuna's ids, the trial's network (its arch_id, else its
# "alpha,beta,gamma") and, for a trial summarized while unfinished, the size of the Optuna record
# it was summarized from (``src_*``), so that a reader sees when that record has grown since.
SUMMARY_FIELDS: tuple[tuple[str, Any], ...] = (
    ("number", sa.Integer), ("state", sa.String(16)),
    ("alpha", sa.Float), ("beta", sa.Float), ("gamma", sa.Float), ("depth", sa.Float), ("width", sa.Float),
    ("resolution", sa.Integer), ("flops", sa.BigInteger), ("params", sa.BigInteger),
    ("flops_ratio", sa.Float), ("formula_ratio", sa.Float), ("activations", sa.BigInteger),
    ("activations_ratio", sa.Float), ("latency_ms", sa.Float), ("latency_ratio", sa.Float),
    ("val_top1", sa.Float), ("val_loss", sa.Float), ("train_seconds", sa.Float), ("images_per_s", sa.Float),
    ("epochs", sa.Integer), ("duration_s", sa.Float), ("arch_id", sa.Text), ("aliases", sa.Text),
    ("representative_rule", sa.Text), ("datetime_start", UTCDateTime), ("datetime_complete", UTCDateTime),
    ("repeat", sa.Integer), ("seed", sa.BigInteger), ("confirmation", sa.Boolean), ("node", sa.Text),
    ("fail_reason", sa.Text), ("batch_size", sa.Integer), ("lr", sa.Float), ("budget", sa.Text),
)
SUMMARY_SOURCE = ("src_attrs", "src_chars", "src_steps", "src_params")
# Each sort of the trial pages (number, value = val_top1, flops), with and without the state filter.
SUMMARY_INDEXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("number", ("study_id", "number")), ("state", ("study_id", "state", "number")),
    ("value", ("study_id", "val_top1", "number")), ("state_value", ("study_id", "state", "val_top1", "number")),
    ("flops", ("study_id", "flops", "number")), ("state_flops", ("study_id", "state", "flops", "number")),
    ("network", ("study_id", "network", "state")),
)
trial_summaries = sa.Table(
    TRIAL_SUMMARIES_TABLE,
    Base.metadata,
    sa.Column("trial_id", sa.Integer, primary_key=True, autoincrement=False),  # Optuna's (an INTEGER there too)
    sa.Column("study_id", sa.Integer, nullable=False),
    *(sa.Column(name, kind, nullable=name not in ("number", "state")) for name, kind in SUMMARY_FIELDS),
    sa.Column("network", sa.Text, nullable=True),
    *(sa.Column(name, sa.BigInteger, nullable=False, default=0) for name in SUMMARY_SOURCE),
)
for _name, _columns in SUMMARY_INDEXES:
    sa.Index(f"ix_{TRIAL_SUMMARIES_TABLE}_{_name}", *(trial_summaries.c[c] for c in _columns))


# --------------------------------------------------------------------------------------------
# Migrations
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    """One schema step: ``apply`` brings a database at ``version - 1`` to ``version``."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _v1_create_tables(connection: Connection) -> None:
    # The v1 DDL, frozen here on purpose (not Base.metadata): later steps build on exactly this.
    # checkfirst=True: a database whose version row was lost keeps its tables and data.
    metadata = sa.MetaData()
    sa.Table(
        SEARCHES_TABLE,
        metadata,
        sa.Column("study_name", sa.String(STUDY_NAME_MAX), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("config_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
    )
    sa.Table(
        FAMILIES_TABLE,
        metadata,
        sa.Column(
            "study_name",
            sa.String(STUDY_NAME_MAX),
            sa.ForeignKey(f"{SEARCHES_TABLE}.study_name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("family_json", sa.Text, nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
    )
    metadata.create_all(connection, checkfirst=True)


def _v2_results(connection: Connection) -> None:
    # Frozen v2 DDL: the verdict column and the per-candidate aggregate table.
    if "result_json" not in {c["name"] for c in sa.inspect(connection).get_columns(SEARCHES_TABLE)}:
        connection.execute(sa.text(f"ALTER TABLE {SEARCHES_TABLE} ADD COLUMN result_json TEXT"))
    metadata = sa.MetaData()
    sa.Table(SEARCHES_TABLE, metadata, sa.Column("study_name", sa.String(STUDY_NAME_MAX), primary_key=True))
    sa.Table(
        CANDIDATES_TABLE,
        metadata,
        sa.Column(
            "study_name",
            sa.String(STUDY_NAME_MAX),
            sa.ForeignKey(f"{SEARCHES_TABLE}.study_name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("candidate", sa.String(200), primary_key=True),
        sa.Column("alpha", sa.Float, nullable=False),
        sa.Column("beta", sa.Float, nullable=False),
        sa.Column("gamma", sa.Float, nullable=False),
        sa.Column("arch_id", sa.String(64), nullable=True),
        sa.Column("flops", sa.BigInteger, nullable=True),
        sa.Column("standing", sa.String(16), nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("mean", sa.Float, nullable=True),
        sa.Column("stderr", sa.Float, nullable=True),
        sa.Column("confirm_n", sa.Integer, nullable=False),
        sa.Column("confirm_mean", sa.Float, nullable=True),
        sa.Column("confirm_stderr", sa.Float, nullable=True),
    )
    metadata.tables[CANDIDATES_TABLE].create(connection, checkfirst=True)


def _v3_trial_summaries(connection: Connection) -> None:
    # Frozen v3 DDL: the per-trial summary table and its indexes.
    f, i, b, t = sa.Float, sa.Integer, sa.BigInteger, sa.Text
    columns = (
        ("trial_id", i), ("study_id", i), ("number", i), ("state", sa.String(16)), ("alpha", f), ("beta", f),
        ("gamma", f), ("depth", f), ("width", f), ("resolution", i), ("flops", b), ("params", b),
        ("flops_ratio", f), ("formula_ratio", f), ("activations", b), ("activations_ratio", f), ("latency_ms", f),
        ("latency_ratio", f), ("val_top1", f), ("val_loss", f), ("train_seconds", f), ("images_per_s", f),
        ("epochs", i), ("duration_s", f), ("arch_id", t), ("aliases", t), ("representative_rule", t),
        ("datetime_start", sa.DateTime(timezone=True)), ("datetime_complete", sa.DateTime(timezone=True)),
        ("repeat", i), ("seed", b), ("confirmation", sa.Boolean), ("node", t), ("fail_reason", t),
        ("batch_size", i), ("lr", f), ("budget", t), ("network", t),
        ("src_attrs", b), ("src_chars", b), ("src_steps", b), ("src_params", b),
    )
    required = {"trial_id", "study_id", "number", "state", "src_attrs", "src_chars", "src_steps", "src_params"}
    table = sa.Table(
        TRIAL_SUMMARIES_TABLE, sa.MetaData(),
        *(sa.Column(name, kind, primary_key=name == "trial_id", autoincrement=False, nullable=name not in required)
          for name, kind in columns),
    )
    indexes = {"number": ("study_id", "number"), "state": ("study_id", "state", "number"),
               "value": ("study_id", "val_top1", "number"), "state_value": ("study_id", "state", "val_top1", "number"),
               "flops": ("study_id", "flops", "number"), "state_flops": ("study_id", "state", "flops", "number"),
               "network": ("study_id", "network", "state")}
    for name, keys in indexes.items():
        sa.Index(f"ix_{TRIAL_SUMMARIES_TABLE}_{name}", *(table.c[k] for k in keys))
    table.create(connection, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "create effscale_searches and effscale_families", _v1_create_tables),
    Migration(2, "add effscale_searches.result_json and effscale_candidates", _v2_results),
    Migration(3, "add effscale_trial_summaries", _v3_trial_summaries),
)
SCHEMA_VERSION = MIGRATIONS[-1].version
RESULTS_SINCE = 2  # the version that added effscale_searches.result_json and effscale_candidates
SUMMARIES_SINCE = 3  # the version that added effscale_trial_summaries

_version_metadata = sa.MetaData()
_version_table = sa.Table(
    VERSION_TABLE,
    _version_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)


def read_schema_version(connection: Connection) -> int:
    """The recorded version; 0 when the version table or its row is missing (a fresh database)."""
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return 0
    value = connection.execute(
        sa.select(_version_table.c.version).where(_version_table.c.id == 1)
    ).scalar_one_or_none()
    return int(value) if value is not None else 0


def _write_schema_version(connection: Connection, version: int) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    updated = connection.execute(
        _version_table.update()
        .where(_version_table.c.id == 1)
        .values(version=version, updated_at=now)
    ).rowcount
    if not updated:
        connection.execute(_version_table.insert().values(id=1, version=version, updated_at=now))


def newer_schema_error(url_for_messages: str, version: int) -> UsageError:
    """A database whose effscale tables are newer than this code: it is left alone."""
    return UsageError(
        f"storage {url_for_messages!r} has effscale schema version {version}, newer than "
        f"this effscale supports ({SCHEMA_VERSION}): upgrade effscale"
    )


def migrate(connection: Connection, *, url_for_messages: str) -> int:
    """Bring our tables to `SCHEMA_VERSION` inside the caller's transaction; return the version.

    On PostgreSQL a transaction-scoped advisory lock serializes concurrent first uses. A database
    newer than this code raises `UsageError` rather than being touched.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))
    current = read_schema_version(connection)
    if current > SCHEMA_VERSION:
        raise newer_schema_error(url_for_messages, current)
    if current == SCHEMA_VERSION:
        return current
    _version_metadata.create_all(connection, checkfirst=True)
    for step in MIGRATIONS:
        if step.version > current:
            step.apply(connection)
            _write_schema_version(connection, step.version)
    return SCHEMA_VERSION
