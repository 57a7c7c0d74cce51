"""Shared pytest fixtures.

Sections (add new fixtures to the matching section, or start a new one):

* Environment: helpers for reading CI / test settings from the environment.
* Storage: database URLs. ``sqlite_url`` (a fresh file per test), ``postgres_url`` (the session's
  PostgreSQL server), ``postgres_clean_url`` (a fresh, empty schema per test on that server) and
  ``storage_url`` (parametrized over both, for contract tests that must pass on each backend).

PostgreSQL: start it with ``bash scripts/start-postgres.sh``, or point
``EFFSCALE_TEST_POSTGRES_URL`` at another server. When it is unreachable, PostgreSQL tests are
skipped on a developer machine, but fail when ``CI`` is set: CI must never skip them silently.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

# ---------------------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------------------


def in_ci() -> bool:
    """True when the ``CI`` environment variable is set to something other than 0/false/no."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _require_gpu() -> bool:
    """``EFFSCALE_TEST_GPU=1``: this machine must have CUDA (a GPU runner), so ``gpu`` tests fail
    rather than skip without it."""
    return os.environ.get("EFFSCALE_TEST_GPU", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def _gpu_tests_need_cuda(request: pytest.FixtureRequest) -> None:
    """``gpu`` tests run wherever CUDA is present. Elsewhere they skip, CI included, since a GPU is
    hardware that no install step provides; a GPU runner sets EFFSCALE_TEST_GPU=1 to forbid that."""
    if request.node.get_closest_marker("gpu") is None:
        return
    import torch

    if torch.cuda.is_available():
        return
    if _require_gpu():
        pytest.fail("EFFSCALE_TEST_GPU=1 but torch sees no CUDA device: install a CUDA build of torch")
    pytest.skip("needs CUDA (no GPU on this machine; EFFSCALE_TEST_GPU=1 makes this a failure)")


# ---------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------

DEFAULT_TEST_POSTGRES_URL = "postgresql+psycopg2://effscale:effscale@127.0.0.1:5432/effscale_test"
POSTGRES_URL_ENV = "EFFSCALE_TEST_POSTGRES_URL"
_POSTGRES_HINT = "PostgreSQL not running: run scripts/start-postgres.sh"


def _dispose_storage_engines() -> None:
    """Close effscale's memoized engines so no pooled connection outlives a test's database."""
    try:
        from effscale.storage import dispose_engines
    except ImportError:  # storage package not importable: nothing was memoized
        return
    dispose_engines()


def _with_search_path(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` first (libpq ``options=-csearch_path=...``)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    query = dict(parsed.query)
    query["options"] = f"-csearch_path={schema}"
    return parsed.set(query=query).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the test PostgreSQL database (env ``EFFSCALE_TEST_POSTGRES_URL`` or the default).

    Shared by the whole session: tests that write should use ``postgres_clean_url`` instead.
    """
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    url = os.environ.get(POSTGRES_URL_ENV) or DEFAULT_TEST_POSTGRES_URL
    engine = sqlalchemy.create_engine(
        url, poolclass=NullPool, connect_args={"connect_timeout": 5}
    )
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        from effscale.storage import redact_url

        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        message = f"{_POSTGRES_HINT} ({redact_url(url)} unreachable: {reason})"
        if in_ci():
            pytest.fail(f"CI is set, so PostgreSQL tests must not be skipped: {message}")
        pytest.skip(message)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def postgres_clean_url(postgres_url: str) -> Iterator[str]:
    """A URL to an empty, private schema in the test database; dropped after the test.

    Each test gets its own schema (via the connection's search_path), so tests, and engineers
    running the suite at the same time, never share tables.
    """
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = sqlalchemy.create_engine(
        postgres_url, poolclass=NullPool, connect_args={"connect_timeout": 5}
    )
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield _with_search_path(postgres_url, schema)
    finally:
        _dispose_storage_engines()
        try:
            with admin.begin() as connection:
                connection.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        except Exception as exc:  # noqa: BLE001 - a leftover schema must not fail the test
            warnings.warn(f"could not drop test schema {schema}: {exc}", stacklevel=1)
        finally:
            admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    """A URL to a SQLite file that does not exist yet, in the test's own temporary directory."""
    yield f"sqlite:///{tmp_path / 'effscale.db'}"
    _dispose_storage_engines()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def storage_url(request: pytest.FixtureRequest) -> str:
    """A clean database URL on each backend; contract tests run once per backend."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_clean_url")


# ---------------------------------------------------------------------------------------------
# Ray
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    """One real local Ray for the session: searches run in-process join it instead of starting
    their own (a Ray start costs seconds on two cores)."""
    import logging

    import ray

    import effscale.search.execution.runner  # noqa: F401  (sets Tune's quiet environment first)

    # Workers inherit this: they import tests/user_baselines.py for `user_baselines:small_cnn`.
    tests_dir = str(Path(__file__).parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (tests_dir, os.environ.get("PYTHONPATH")) if p)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


# Drivers and nodes of the test cluster keep Ray on loopback: this machine's own address is not
# routable from itself (a need of the test machine, not a user setting; see tests/_ray_cluster.py).
CLUSTER_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


class RayCluster:
    """The multi-node cluster run by tests/_ray_cluster.py in its own session."""

    def __init__(self, proc: "subprocess.Popen[str]") -> None:
        self.proc = proc
        first = self._answer()
        self.address: str = first["address"]
        self.workers: list[str] = first["workers"]

    def _answer(self, timeout: float = 120.0) -> dict:
        import json
        import select

        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise RuntimeError("the test Ray cluster did not answer in time")
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"the test Ray cluster exited with {self.proc.wait()}")
        return json.loads(line)

    def command(self, text: str) -> dict:
        self.proc.stdin.write(text + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        answer = self._answer()
        self.workers = answer.get("workers", self.workers)
        return answer

    def stop(self) -> None:
        import signal
        import subprocess

        try:
            self.command("quit")
            self.proc.wait(timeout=60)
        except (OSError, RuntimeError, subprocess.TimeoutExpired):
            pass
        # Whatever is left of the session this fixture created, and only that one.
        try:
            if os.getsid(self.proc.pid) == self.proc.pid:
                os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    """A 0-CPU head and two workers (2 CPUs, 1 logical GPU each) on 127.0.0.1, shared by the
    cluster tests of one module and stopped after them (it would otherwise idle beside every
    later test)."""
    import subprocess
    import sys

    log = open(tmp_path_factory.mktemp("ray-cluster") / "cluster.log", "w")
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_ray_cluster.py"))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
        env={**os.environ, **CLUSTER_ENV}, start_new_session=True,
    )
    cluster = RayCluster(proc)
    try:
        yield cluster
    finally:
        cluster.stop()
        log.close()
