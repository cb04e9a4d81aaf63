"""The API fuzzed from its own OpenAPI schema with Schemathesis, in process through the WSGI application.

Run one: alice (Acme) with a valid token and workspace header; every operation gets bounded, derandomized
examples (NUL bytes, huge integers, odd Unicode, wrong types ...). No answer may be a 5xx, and documented
answers must match the schema. Run two: bob (Globex) aims every operation at Acme's objects; no answer may hold a
byte of Acme's data.
"""

import json

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from executions import dispatch
from tests.security.test_isolation_matrix import PARAMETER_KINDS, _values

SCHEMA = schemathesis.openapi.from_dict(
    json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))
)
SCHEMA.app = WSGIHandler()

FUZZ_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture(autouse=True)
def in_process(monkeypatch):
    """Requests through the WSGI handler, as the Django test client sends them: the handler's end-of-request
    signal must not close the test's database connection, and accepted executions are not run."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    monkeypatch.setattr(dispatch, "enqueue", lambda *args, **kwargs: None)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def bearer(user, workspace) -> dict[str, str]:
    return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}", "X-Workspace-ID": str(workspace.id)}


@SCHEMA.parametrize()
@FUZZ_SETTINGS
def test_no_input_makes_the_api_fail_or_break_its_schema(case, tenant_a):
    case.call_and_validate(headers=bearer(tenant_a.owner, tenant_a.workspace), checks=CHECKS)


@SCHEMA.parametrize()
@FUZZ_SETTINGS
def test_another_workspace_fuzzing_with_a_workspaces_ids_finds_nothing_of_it(case, tenant_a, bob, globex):
    values = _values(tenant_a)
    segments = case.operation.path.split("/")
    for name in list(case.path_parameters or {}):
        before = segments[segments.index("{" + name + "}") - 1]
        case.path_parameters[name] = values[PARAMETER_KINDS[(before, name)]]
    url_and_body = case.formatted_path + json.dumps(case.body, default=str) + json.dumps(case.query, default=str)

    response = case.call(headers=bearer(bob, globex))

    assert response.status_code < 500
    assert tenant_a.leaks_in(response.content, except_=url_and_body) == []
