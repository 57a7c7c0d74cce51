"""Property-based fuzzing of the REST API with schemathesis, from its own ``/openapi.json``.

Every operation gets generated requests (valid and invalid path, query and body values) against a
database holding searches (the session's real one, with its verdict and comparison, and a fake
one with trials in every state); no response may be a 5xx, and every response must match the schema the
API publishes. Launching goes to a recording launcher, so fuzzing starts no search.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from _service_fixtures import FAKE_STUDY, REAL_COMPARISON, REAL_STUDY, FakeLauncher, make_fake_search, shared_search_db
from effscale.service import create_app

TOKEN = "fuzz-token"
# Path parameters pinned to stored names (besides the generated ones, which mostly 404): the fake
# search has trials in every state and no verdict; the real one a verdict, fidelity and a comparison.
PINS = {"study_name": (FAKE_STUDY, REAL_STUDY), "comparison_name": (REAL_COMPARISON,)}


def _app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    url, _ = shared_search_db(tmp_path_factory.getbasetemp(), kind="real")
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
            "/api/studies/{study_name}/family/download", "/api/studies/{study_name}/candidates/ranking",
            "/api/comparisons", "/api/comparisons/{comparison_name}"} <= paths


def test_api_never_answers_5xx(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert operations
    statuses: list[int] = []
    for operation in operations:
        param = next((p for p in PINS if "{" + p + "}" in operation.path), None)
        # Operations on a study or comparison run with generated names (404s), then on each stored one.
        for pin in (None, *PINS[param]) if param else (None,):
            pinned = (param, pin)

            @given(case=operation.as_strategy())
            @settings(
                max_examples=30 if pin is None else 15,  # each stored name: the budget split between them
                deadline=None,
                derandomize=True,  # reproducible in CI
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            def check(case: Any) -> None:
                if pinned[1]:
                    case.path_parameters[pinned[0]] = pinned[1]
                response = case.call_and_validate(
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    checks=[not_a_server_error, response_schema_conformance],
                )
                statuses.append(response.status_code)

            check()
    assert len(statuses) >= 5 * len(operations), "schemathesis generated too few requests"
    assert {200, 404, 422} <= set(statuses), sorted(set(statuses))
