"""Property-based fuzzing of the REST API with schemathesis, from its own ``/openapi.json``.

Every operation gets generated requests (valid and invalid path, query and body values) against a
database holding a search; no response may be a 5xx, and every response must match the schema the
API publishes. Launching goes to a recording launcher, so fuzzing starts no search.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from _service_fixtures import FAKE_STUDY, FakeLauncher, make_fake_search
from effscale.service import create_app

TOKEN = "fuzz-token"


def _app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{directory / 'fuzz.db'}"
    make_fake_search(url)
    return create_app(url, token=TOKEN, launcher=FakeLauncher())


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return _app(tmp_path_factory)


@pytest.fixture(scope="module")
def api_schema(app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_operation_is_fuzzed(api_schema: Any) -> None:
    paths = {op.ok().path for op in api_schema.get_all_operations()}
    assert {"/healthz", "/api/studies", "/api/studies/{study_name}/trials", "/api/searches",
            "/api/searches/{study_name}/cancel", "/api/searches/{study_name}/log",
            "/api/studies/{study_name}/family/download"} <= paths


def test_api_never_answers_5xx(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert operations
    statuses: list[int] = []
    for operation in operations:
        has_study = "{study_name}" in operation.path
        # Operations on a study run twice: with generated names (404s) and on the stored study.
        for pin_study in (False, True) if has_study else (False,):
            pinned = [pin_study]

            @given(case=operation.as_strategy())
            @settings(
                max_examples=30,
                deadline=None,
                derandomize=True,  # reproducible in CI
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            def check(case: Any) -> None:
                if pinned[0]:
                    case.path_parameters["study_name"] = FAKE_STUDY
                response = case.call_and_validate(
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    checks=[not_a_server_error, response_schema_conformance],
                )
                statuses.append(response.status_code)

            check()
    assert len(statuses) >= 5 * len(operations), "schemathesis generated too few requests"
    assert {200, 404, 422} <= set(statuses), sorted(set(statuses))
