"""Storage contract: the same tests on SQLite and PostgreSQL, plus URL and error handling."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa

from effscale.errors import UsageError
from effscale.storage import (
    DEFAULT_STORAGE_URL,
    SCHEMA_VERSION,
    ProjectStore,
    SearchRecord,
    StorageError,
    engine_options,
    normalize_url,
    open_storage,
    redact_url,
)
from effscale.storage.engine import POSTGRES_POOL_SIZE
from effscale.storage.tables import (
    CANDIDATES_TABLE,
    FAMILIES_TABLE,
    MIGRATIONS,
    SEARCHES_TABLE,
    TRIAL_SUMMARIES_TABLE,
    VERSION_TABLE,
    Base,
    FamilyRow,
    SearchRow,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

OUR_TABLES = {SEARCHES_TABLE, FAMILIES_TABLE, CANDIDATES_TABLE, TRIAL_SUMMARIES_TABLE, VERSION_TABLE}
SECRET = "s3cr3t-Pa55"


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(normalize_url(url), poolclass=sa.pool.NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(normalize_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def _scalar(url: str, statement: str) -> object:
    engine = sa.create_engine(normalize_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return connection.exec_driver_sql(statement).scalar()
    finally:
        engine.dispose()


def _assert_utc(value: dt.datetime | None) -> None:
    assert value is not None
    assert value.tzinfo is not None and value.utcoffset() == dt.timedelta(0)


def _make_v1_database(url: str) -> None:
    """A database exactly as effscale 0.1's v1 left it, with one completed search."""
    engine = sa.create_engine(normalize_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                f"CREATE TABLE {VERSION_TABLE} (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, "
                "updated_at TIMESTAMP NOT NULL)")
            MIGRATIONS[0].apply(connection)
            connection.exec_driver_sql(
                f"INSERT INTO {VERSION_TABLE} (id, version, updated_at) VALUES (1, 1, '2024-01-01 00:00:00')")
            connection.exec_driver_sql(
                f"INSERT INTO {SEARCHES_TABLE} (study_name, status, config_json, created_at, cancel_requested) "
                "VALUES ('v1-search', 'completed', '{}', '2024-01-01 00:00:00', false)")
    finally:
        engine.dispose()


def _assert_one_line_usage_error(excinfo: pytest.ExceptionInfo[UsageError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message.strip() == message and message
    return message


# ---------------------------------------------------------------------------------------------
# Contract: every test runs on SQLite and on PostgreSQL
# ---------------------------------------------------------------------------------------------


class TestStorageContract:
    def test_open_storage_creates_optuna_schema_and_studies_load_by_url(
        self, storage_url: str
    ) -> None:
        storage = open_storage(storage_url)
        assert isinstance(storage, optuna.storages.RDBStorage)
        assert {"studies", "trials", "version_info", "alembic_version"} <= _tables(storage_url)

        study = optuna.create_study(study_name="s1", storage=storage, direction="maximize")
        study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=3)

        loaded = optuna.load_study(study_name="s1", storage=storage_url)  # plain URL, Optuna's way
        assert len(loaded.trials) == 3
        assert loaded.best_value == study.best_value
        # Opening again is harmless (tables exist; compatibility check passes).
        assert len(optuna.load_study(study_name="s1", storage=open_storage(storage_url)).trials) == 3

    def test_our_tables_are_created_on_first_use_beside_optunas(self, storage_url: str) -> None:
        open_storage(storage_url)
        assert not (_tables(storage_url) & OUR_TABLES)

        store = ProjectStore(storage_url)
        tables = _tables(storage_url)
        assert OUR_TABLES <= tables
        assert "trials" in tables  # Optuna's tables untouched, in the same database
        # Trials stay in Optuna's tables: we add exactly ours (searches, families, candidate aggregates,
        # and the per-trial summaries that index Optuna's trials).
        assert {t for t in tables if t.startswith("effscale_")} == OUR_TABLES
        assert store.schema_version == SCHEMA_VERSION == MIGRATIONS[-1].version
        assert _scalar(storage_url, f"SELECT version FROM {VERSION_TABLE}") == SCHEMA_VERSION

    def test_project_store_first_then_optuna(self, storage_url: str) -> None:
        ProjectStore(storage_url).create_search("s", config={})
        open_storage(storage_url)
        assert optuna.create_study(study_name="s", storage=storage_url).study_name == "s"
        assert ProjectStore(storage_url).get_search("s") is not None

    def test_migrations_match_the_models(self, storage_url: str) -> None:
        """Running the migration list yields exactly the columns the models declare."""
        ProjectStore(storage_url)
        engine = sa.create_engine(normalize_url(storage_url), poolclass=sa.pool.NullPool)
        try:
            inspector = sa.inspect(engine)
            for table in Base.metadata.sorted_tables:
                actual = {c["name"] for c in inspector.get_columns(table.name)}
                assert actual == set(table.columns.keys()), table.name
        finally:
            engine.dispose()

    def test_version_zero_database_is_migrated(self, storage_url: str) -> None:
        _execute(
            storage_url,
            f"CREATE TABLE {VERSION_TABLE} (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, "
            "updated_at TIMESTAMP NOT NULL)",
            f"INSERT INTO {VERSION_TABLE} (id, version, updated_at) "
            "VALUES (1, 0, '2024-01-01 00:00:00')",
        )
        assert not (_tables(storage_url) & {SEARCHES_TABLE, FAMILIES_TABLE})

        store = ProjectStore(storage_url)
        assert store.schema_version == SCHEMA_VERSION
        assert OUR_TABLES <= _tables(storage_url)
        assert _scalar(storage_url, f"SELECT version FROM {VERSION_TABLE}") == SCHEMA_VERSION
        store.create_search("after-migration", config={"a": 1})
        assert store.get_search("after-migration") is not None

    def test_v1_database_gains_results_and_keeps_its_searches(self, storage_url: str) -> None:
        _make_v1_database(storage_url)
        store = ProjectStore(storage_url)
        assert store.schema_version == SCHEMA_VERSION == 3
        assert store.get_search("v1-search").status == "completed" and store.load_result("v1-search") is None
        store.save_result("v1-search", {"best": {"alpha": 1.2}},
                          [{"alpha": 1.2, "beta": 1.0, "gamma": 1.0, "standing": "winner", "n": 2, "mean": 0.9,
                            "stderr": 0.01, "confirm_n": 0}])
        assert store.load_result("v1-search") == {"best": {"alpha": 1.2}}
        assert [c["standing"] for c in store.load_candidates("v1-search")] == ["winner"]

    def test_missing_version_table_is_migrated_and_data_kept(self, storage_url: str) -> None:
        ProjectStore(storage_url).create_search("old", config={"k": "v"})
        _execute(storage_url, f"DROP TABLE {VERSION_TABLE}")

        store = ProjectStore(storage_url)
        assert store.schema_version == SCHEMA_VERSION
        assert _scalar(storage_url, f"SELECT version FROM {VERSION_TABLE}") == SCHEMA_VERSION
        record = store.get_search("old")
        assert record is not None and record.config == {"k": "v"}

    def test_newer_schema_is_refused_and_left_alone(self, storage_url: str) -> None:
        ProjectStore(storage_url)
        _execute(storage_url, f"UPDATE {VERSION_TABLE} SET version = 99")
        with pytest.raises(UsageError) as excinfo:
            ProjectStore(storage_url)
        message = _assert_one_line_usage_error(excinfo)
        assert "99" in message and "upgrade effscale" in message
        assert _scalar(storage_url, f"SELECT version FROM {VERSION_TABLE}") == 99

    def test_search_crud_status_transitions_and_timestamps(self, storage_url: str) -> None:
        store = ProjectStore(storage_url)
        assert store.list_searches() == []
        assert store.get_search("nope") is None

        before = dt.datetime.now(dt.timezone.utc)
        created = store.create_search("b0-search", config={"baseline": "b0", "budget": 2.0})
        assert isinstance(created, SearchRecord)
        assert created.status == "pending" and created.config == {"baseline": "b0", "budget": 2.0}
        _assert_utc(created.created_at)
        assert created.created_at >= before
        assert (created.started_at, created.finished_at, created.heartbeat_at) == (None,) * 3
        assert created.error is None and created.cancel_requested is False
        assert store.get_search("b0-search") == created
        with pytest.raises(dataclasses.FrozenInstanceError):
            created.status = "running"  # type: ignore[misc]

        with pytest.raises(UsageError, match="already exists"):
            store.create_search("b0-search", config={})

        store.set_status("b0-search", "running")
        running = store.get_search("b0-search")
        assert running is not None and running.status == "running"
        _assert_utc(running.started_at)
        _assert_utc(running.heartbeat_at)
        assert running.finished_at is None

        time.sleep(0.01)
        store.heartbeat("b0-search")
        beat = store.get_search("b0-search")
        assert beat is not None and beat.heartbeat_at is not None
        assert running.heartbeat_at is not None and beat.heartbeat_at > running.heartbeat_at
        assert beat.started_at == running.started_at

        assert store.cancel_requested("b0-search") is False
        store.request_cancel("b0-search")
        assert store.cancel_requested("b0-search") is True

        store.set_status("b0-search", "cancelled")
        done = store.get_search("b0-search")
        assert done is not None and done.status == "cancelled"
        _assert_utc(done.finished_at)
        assert done.started_at is not None and done.finished_at is not None
        assert done.created_at <= done.started_at <= done.finished_at

        store.create_search("second", config={}, status="running")
        store.set_status("second", "failed", error="CUDA out of memory")
        failed = store.get_search("second")
        assert failed is not None and failed.status == "failed"
        assert failed.error == "CUDA out of memory" and failed.finished_at is not None

        assert [r.study_name for r in store.list_searches()] == ["b0-search", "second"]
        assert [r.study_name for r in ProjectStore(storage_url).list_searches()] == [
            "b0-search",
            "second",
        ]

    def test_resuming_a_finished_search_clears_finish_and_cancel(self, storage_url: str) -> None:
        store = ProjectStore(storage_url)
        store.create_search("s", config={})
        store.set_status("s", "running")
        store.request_cancel("s")
        store.set_status("s", "cancelled")
        store.set_status("s", "running")
        record = store.get_search("s")
        assert record is not None
        assert record.status == "running" and record.finished_at is None
        assert record.cancel_requested is False and record.error is None

    def test_bad_status_name_and_unknown_search_are_usage_errors(self, storage_url: str) -> None:
        store = ProjectStore(storage_url)
        store.create_search("s", config={})
        with pytest.raises(UsageError) as excinfo:
            store.set_status("s", "done")
        message = _assert_one_line_usage_error(excinfo)
        assert "'done'" in message and "pending, running, completed, failed, cancelled" in message
        with pytest.raises(UsageError, match="'done'"):
            store.create_search("t", config={}, status="done")
        for call in (
            lambda: store.set_status("ghost", "running"),
            lambda: store.heartbeat("ghost"),
            lambda: store.request_cancel("ghost"),
            lambda: store.cancel_requested("ghost"),
            lambda: store.save_family("ghost", {"a": 1}),
        ):
            with pytest.raises(UsageError, match="'ghost' does not exist"):
                call()
        with pytest.raises(UsageError, match="not JSON-serializable"):
            store.create_search("t", config={"f": object()})
        with pytest.raises(UsageError, match="empty"):
            store.create_search("", config={})
        assert [r.study_name for r in store.list_searches()] == ["s"]
        assert _scalar(storage_url, f"SELECT count(*) FROM {FAMILIES_TABLE}") == 0

    def test_families_save_load_upsert(self, storage_url: str) -> None:
        store = ProjectStore(storage_url)
        store.create_search("s", config={})
        assert store.load_family("s") is None
        assert store.load_family("ghost") is None

        family = {
            "alpha": 1.2,
            "beta": 1.1,
            "gamma": 1.15,
            "members": [{"phi": 1, "flops": 0.78e9, "resolution": 240}],
            "baseline": "efficientnet_b0",
        }
        store.save_family("s", family)
        assert store.load_family("s") == family

        updated = {**family, "alpha": 1.3}
        store.save_family("s", updated)
        assert store.load_family("s") == updated
        assert _scalar(storage_url, f"SELECT count(*) FROM {FAMILIES_TABLE}") == 1
        assert ProjectStore(storage_url).load_family("s") == updated

        with pytest.raises(UsageError, match="not JSON-serializable"):
            store.save_family("s", {"alpha": float("nan")})
        assert store.load_family("s") == updated  # the failed save changed nothing

    def test_session_helper_rolls_back_on_error(self, storage_url: str) -> None:
        store = ProjectStore(storage_url)
        store.create_search("kept", config={})
        now = dt.datetime.now(dt.timezone.utc)

        # A Python error after writes were flushed: everything is rolled back.
        with pytest.raises(RuntimeError, match="boom"):
            with store.session() as session:
                session.add(
                    SearchRow(
                        study_name="half",
                        status="pending",
                        config_json="{}",
                        created_at=now,
                        cancel_requested=False,
                    )
                )
                session.flush()
                session.add(FamilyRow(study_name="kept", family_json="{}", saved_at=now))
                session.flush()
                raise RuntimeError("boom")
        assert store.get_search("half") is None
        assert store.load_family("kept") is None

        # A database error (duplicate key) is wrapped, and the other row is not half-written.
        with pytest.raises(UsageError, match="conflict here"):
            with store.session(conflict_message="conflict here") as session:
                session.add(FamilyRow(study_name="kept", family_json='{"x": 1}', saved_at=now))
                session.add(
                    SearchRow(
                        study_name="kept",
                        status="pending",
                        config_json="{}",
                        created_at=now,
                        cancel_requested=False,
                    )
                )
        assert store.load_family("kept") is None
        assert [r.study_name for r in store.list_searches()] == ["kept"]


# ---------------------------------------------------------------------------------------------
# Queries open the database read-only: no file, no table, no migration
# ---------------------------------------------------------------------------------------------


def _service(url: str) -> "TestClient":
    from fastapi.testclient import TestClient

    from _service_fixtures import FakeLauncher
    from effscale.service import create_app

    return TestClient(create_app(url, launcher=FakeLauncher()))


def _studies_cli(url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from effscale.cli import main

    code = main(["studies", "--storage", url, "--json"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


class TestReadOnlyQueries:
    """`effscale studies`, `effscale trials` and the REST API's reads, on each backend."""

    def test_a_database_without_tables_keeps_none(self, storage_url: str, capsys: pytest.CaptureFixture[str]) -> None:
        from effscale.search.records.queries import list_studies

        if storage_url.startswith("sqlite"):
            Path(sa.make_url(storage_url).database).touch()  # an empty SQLite database
        assert list_studies(storage_url) == []
        assert _studies_cli(storage_url, capsys) == (0, "[]\n")
        client = _service(storage_url)
        assert client.get("/healthz").json()["status"] == "ok"
        assert client.get("/api/studies").json()["studies"] == []
        assert client.get("/api/comparisons").status_code == 200
        assert client.get("/api/studies/nope").status_code == 404
        store = ProjectStore(storage_url, read_only=True)
        assert store.list_searches() == [] and store.get_search("nope") is None and store.load_family("nope") is None
        assert open_storage(storage_url, read_only=True).get_all_studies() == []
        assert _tables(storage_url) == set()  # neither Optuna's tables nor ours

    def test_optunas_tables_are_read_and_ours_not_created(self, storage_url: str) -> None:
        from effscale.search.records.queries import list_studies, list_trials

        study = optuna.create_study(study_name="plain", storage=open_storage(storage_url), direction="maximize")
        study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=2)
        before = _tables(storage_url)
        assert not before & OUR_TABLES
        (row,) = list_studies(storage_url)
        assert (row["study"], row["n_trials"], row["status"], row["effscale"]) == ("plain", 2, "unknown", False)
        assert len(list_trials(storage_url, "plain")) == 2
        client = _service(storage_url)
        assert [s["name"] for s in client.get("/api/studies").json()["studies"]] == ["plain"]
        assert client.get("/api/studies/plain").status_code == 200
        assert client.get("/api/studies/plain/trials").json()["total"] == 2
        assert _tables(storage_url) == before

    def test_older_tables_are_read_and_not_migrated(self, storage_url: str) -> None:
        _make_v1_database(storage_url)
        store = ProjectStore(storage_url, read_only=True)
        assert [r.study_name for r in store.list_searches()] == ["v1-search"]
        assert store.get_search("v1-search").status == "completed"
        assert store.load_result("v1-search") is None and store.load_candidates("v1-search") == []
        assert _service(storage_url).get("/api/searches/v1-search").json()["status"] == "completed"
        with pytest.raises(RuntimeError, match="read_only"):
            store.set_status("v1-search", "running")
        assert _scalar(storage_url, f"SELECT version FROM {VERSION_TABLE}") == 1
        assert CANDIDATES_TABLE not in _tables(storage_url)
        columns = _execute_columns(storage_url, SEARCHES_TABLE)
        assert "result_json" not in columns

    def test_a_read_only_store_finds_tables_created_later(self, storage_url: str) -> None:
        reader = ProjectStore(storage_url, read_only=True)
        assert reader.list_searches() == []
        ProjectStore(storage_url).create_search("later", config={})
        assert [r.study_name for r in reader.list_searches()] == ["later"]


def _execute_columns(url: str, table: str) -> set[str]:
    engine = sa.create_engine(normalize_url(url), poolclass=sa.pool.NullPool)
    try:
        return {c["name"] for c in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def test_a_query_never_creates_a_sqlite_file(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from effscale.search.records.queries import list_studies, list_trials

    path = Path(sa.make_url(sqlite_url).database)
    for query in (lambda: list_studies(sqlite_url), lambda: list_trials(sqlite_url, "s")):
        with pytest.raises(UsageError, match="does not exist: a query never creates a database"):
            query()
    code, output = _studies_cli(sqlite_url, capsys)
    assert code == 2 and "does not exist" in output
    # The service reads it as empty until a search writes it.
    client = _service(sqlite_url)
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/api/studies").json()["studies"] == []
    assert ProjectStore(sqlite_url, read_only=True).list_searches() == []
    assert open_storage(sqlite_url, read_only=True).get_all_studies() == []
    assert not path.exists()


# ---------------------------------------------------------------------------------------------
# Engine options per backend
# ---------------------------------------------------------------------------------------------


def test_sqlite_busy_timeout_is_set(sqlite_url: str) -> None:
    storage = open_storage(sqlite_url)
    with storage.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    store = ProjectStore(sqlite_url)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@pytest.mark.postgres
def test_postgres_pool_pre_ping_and_connect_timeout(postgres_clean_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.pool import NullPool

    from effscale.storage import engine as engines

    storage = open_storage(postgres_clean_url, connect_timeout=7)
    assert storage.engine.pool._pre_ping is True  # Optuna's engine: every checkout
    assert storage.engine_kwargs["connect_args"]["connect_timeout"] == 7
    # effscale's own: a connection that idled is pinged and, when its server side is gone, replaced;
    # one used less than PING_AFTER_IDLE_S ago is not (its statement fails: the pool is invalidated).
    engine = ProjectStore(postgres_clean_url).engine
    admin = sa.create_engine(postgres_clean_url, poolclass=NullPool)

    def used_then_killed() -> int:
        with engine.connect() as connection:
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with admin.connect() as connection:  # the backend of our own pooled connection, by its pid
            assert connection.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar() is True
        return pid

    try:
        monkeypatch.setattr(engines, "PING_AFTER_IDLE_S", 0.0)
        killed = used_then_killed()
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT pg_backend_pid()").scalar() != killed
        monkeypatch.setattr(engines, "PING_AFTER_IDLE_S", 3600.0)
        used_then_killed()
        with pytest.raises(sa_exc.OperationalError), engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        with engine.connect() as connection:  # the failure invalidated the pool: a new connection
            assert connection.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        admin.dispose()


def test_engine_options_without_connecting() -> None:
    assert engine_options("sqlite:///x.db") == {"connect_args": {"timeout": 30.0}}
    options = engine_options("postgresql+psycopg2://u:p@h/db", connect_timeout=3)
    assert options == {"pool_pre_ping": True, "pool_size": POSTGRES_POOL_SIZE, "connect_args": {"connect_timeout": 3}}
    assert DEFAULT_STORAGE_URL == "sqlite:///effscale.db"


def test_bare_postgresql_url_uses_the_installed_driver() -> None:
    import psycopg2  # noqa: F401  (a runtime dependency: missing is a failure, never a skip)

    try:
        import psycopg  # noqa: F401
    except ImportError:
        assert normalize_url("postgresql://u:p@h/db") == "postgresql+psycopg2://u:p@h/db"
    assert normalize_url("postgresql+psycopg2://u:p@h/db") == "postgresql+psycopg2://u:p@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


# ---------------------------------------------------------------------------------------------
# Bad input: one-line UsageError, no password, nothing written
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("opener", [open_storage, ProjectStore], ids=["open_storage", "store"])
def test_unknown_scheme_names_it_and_the_supported_ones(opener: object) -> None:
    with pytest.raises(UsageError) as excinfo:
        opener(f"mysql+pymysql://root:{SECRET}@db.example:3306/effscale")  # type: ignore[operator]
    message = _assert_one_line_usage_error(excinfo)
    assert "mysql+pymysql" in message
    assert "sqlite" in message and "postgresql" in message
    assert SECRET not in message and "***" in message


@pytest.mark.parametrize("url", ["effscale.db", "", "   ", "://nothing"])
def test_not_a_url(url: str) -> None:
    with pytest.raises(UsageError) as excinfo:
        open_storage(url)
    assert "sqlite:///effscale.db" in _assert_one_line_usage_error(excinfo)


@pytest.mark.parametrize("opener", [open_storage, ProjectStore], ids=["open_storage", "store"])
def test_unreachable_postgres_fails_fast_without_password(opener: object) -> None:
    url = f"postgresql+psycopg2://effscale:{SECRET}@127.0.0.1:1/effscale_test"
    start = time.monotonic()
    with pytest.raises(StorageError) as excinfo:  # an outage, not the user's input (the CLI exits 1)
        opener(url, connect_timeout=2)  # type: ignore[operator]
    assert time.monotonic() - start < 10
    message = _assert_one_line_usage_error(excinfo)
    assert SECRET not in message
    assert "127.0.0.1:1" in message and "***" in message


@pytest.mark.postgres
def test_wrong_postgres_password_is_a_usage_error(postgres_url: str) -> None:
    url = sa.engine.make_url(postgres_url).set(password=SECRET)
    with pytest.raises(UsageError) as excinfo:
        open_storage(url.render_as_string(hide_password=False))
    message = _assert_one_line_usage_error(excinfo)
    assert SECRET not in message and "authentication failed" in message


def test_sqlite_directory_missing(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    for opener in (open_storage, ProjectStore):
        with pytest.raises(UsageError) as excinfo:
            opener(f"sqlite:///{missing / 'effscale.db'}")
        message = _assert_one_line_usage_error(excinfo)
        assert str(missing) in message and "does not exist" in message
    assert not (tmp_path / "no").exists()


def test_sqlite_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a directory"):
        open_storage(f"sqlite:///{tmp_path}")


def test_sqlite_file_that_is_not_a_database_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not a sqlite database, just some text " * 20)
    before = path.read_bytes()
    with pytest.raises(UsageError) as excinfo:
        open_storage(f"sqlite:///{path}")
    assert "not a database" in _assert_one_line_usage_error(excinfo)
    assert path.read_bytes() == before


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_is_refused(url: str) -> None:
    with pytest.raises(UsageError, match="in-memory"):
        ProjectStore(url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:secret@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql+psycopg2://u:secret@h/db", "postgresql+psycopg2://u:***@h/db"),
        ("postgresql://u:p%40ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:p@ss/w@h/db", "postgresql://u:***@h/db"),  # unencoded "@" in password
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://h/db", "postgresql://h/db"),
        ("postgresql://u:secret@h/db?sslmode=require", "postgresql://u:***@h/db?sslmode=require"),
        ("postgresql://h/db?user=u&password=secret", "postgresql://h/db?user=u&password=***"),
        ("mysql://root:secret@h/db", "mysql://root:***@h/db"),
        ("sqlite:///effscale.db", "sqlite:///effscale.db"),
        ("sqlite:////tmp/a@b:c.db", "sqlite:////tmp/a@b:c.db"),
        ("not a url", "not a url"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert "secret" not in redact_url(url)


@pytest.mark.postgres
def test_concurrent_first_opens_of_a_fresh_postgres_database(postgres_clean_url: str) -> None:
    """Several processes creating Optuna's schema at once take turns (no enum-type collision)."""
    import subprocess
    import sys

    code = "import sys; from effscale.storage import open_storage; open_storage(sys.argv[1])"
    procs = [subprocess.Popen([sys.executable, "-c", code, postgres_clean_url], stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors


def test_a_comparisons_or_frontiers_study_resumes_only_under_its_own_identity(sqlite_url: str) -> None:
    from effscale.search.records.study import load_owned_study
    from effscale.storage import open_storage

    storage = open_storage(sqlite_url)
    assert load_owned_study(storage, "c", attr="effscale_compare", identity={"a": 1}, what="comparison") is None
    optuna.create_study(study_name="c", storage=storage).set_user_attr("effscale_compare", {"a": 1})
    found = load_owned_study(storage, "c", attr="effscale_compare", identity={"a": 1}, what="comparison")
    assert found is not None and found.study_name == "c"
    with pytest.raises(UsageError, match="study 'c' already holds another frontier .*pass another --name"):
        load_owned_study(storage, "c", attr="effscale_frontier", identity={"a": 1}, what="frontier")
    with pytest.raises(UsageError, match="already holds another comparison"):
        load_owned_study(storage, "c", attr="effscale_compare", identity={"a": 2}, what="comparison")
