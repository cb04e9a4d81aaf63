"""Whatever carries a secret-derived value stays behind when a redirect changes origin: custom headers, query
parameters of the target, user info, and 307/308 bodies. Same-origin redirects keep everything."""

from __future__ import annotations

import pytest

from connectors.engine.credentials import StaticCredentialProvider, WorkspaceNamespace
from connectors.engine.http import AddressPolicy, SafeHttpClient
from connectors.engine.redaction import Redactor
from connectors.engine.runner import Runner
from tests.factories import normalized_step
from tests.local_server import LocalServer, Reply

SECRET = "k3y-Zq81-Xw72"


@pytest.fixture
def runner() -> Runner:
    return Runner(SafeHttpClient(AddressPolicy.from_setting("127.0.0.1")))


@pytest.fixture
def other():
    with LocalServer() as server:
        yield server


def run(runner: Runner, step: dict):
    redactor = Redactor()
    provider = StaticCredentialProvider({"svc": {"key": SECRET}})
    context = {"input": {"trace": "t-1"}, "workspace": WorkspaceNamespace(provider, redactor), "steps": {}}
    return runner._run_step(normalized_step(step), 0, context, redactor, None, None)[0]


HEADERS = {
    "X-Custom-Key": "{{workspace.svc.key}}",
    "X-Upper": "{{workspace.svc.key | upper}}",
    "X-Signed": "sig={{workspace.svc.key | base64}}",
    "X-Trace": "{{input.trace}}",
}


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_secret_headers_do_not_follow_a_cross_origin_redirect(runner, local_server, other, status):
    local_server.route("/start", Reply(status, headers={"Location": f"{other.url}/landing"}))

    record = run(runner, {"name": "s", "url": f"{local_server.url}/start", "headers": HEADERS})

    assert record.status == "succeeded"
    first, landed = local_server.requests[0], other.requests[0]
    assert first.header("X-Custom-Key") == SECRET
    assert [landed.header(name) for name in HEADERS] == [None, None, None, "t-1"]


@pytest.mark.parametrize("status", [302, 307])
def test_same_origin_redirects_keep_them(runner, local_server, status):
    local_server.route("/start", Reply(status, headers={"Location": "/next"}))

    run(runner, {"name": "s", "url": f"{local_server.url}/start", "headers": HEADERS})

    assert local_server.requests[1].header("X-Custom-Key") == SECRET
    assert local_server.requests[1].header("X-Upper") == SECRET.upper()


def test_a_hop_back_to_the_origin_stays_without_them(runner, local_server, other):
    local_server.route("/start", Reply(302, headers={"Location": f"{other.url}/bounce"}))
    other.route("/bounce", Reply(302, headers={"Location": f"{local_server.url}/end"}))

    run(runner, {"name": "s", "url": f"{local_server.url}/start", "headers": HEADERS})

    assert local_server.requests[1].path == "/end"
    assert local_server.requests[1].header("X-Custom-Key") is None


@pytest.mark.parametrize(
    "query",
    [
        f"key={SECRET}&keep=1",
        f"keep=1&sig={SECRET.upper()}",
        f"keep=1&k=x%20{SECRET}",
    ],
)
def test_secret_query_parameters_of_the_target_are_dropped(runner, local_server, other, query):
    local_server.route("/start", Reply(302, headers={"Location": f"{other.url}/landing?{query}"}))

    run(
        runner,
        {"name": "s", "url": f"{local_server.url}/start", "headers": {"X-Upper": "{{workspace.svc.key | upper}}"}},
    )

    assert other.requests[0].path == "/landing?keep=1"


def test_a_secret_in_user_info_of_the_target_is_dropped(runner, local_server, other):
    location = f"http://user:{SECRET}@127.0.0.1:{other.port}/landing"
    local_server.route("/start", Reply(302, headers={"Location": location}))

    run(runner, {"name": "s", "url": f"{local_server.url}/start", "headers": HEADERS})

    assert other.requests[0].header("Authorization") is None


@pytest.mark.parametrize("status", [307, 308])
def test_a_secret_bearing_body_is_not_carried_to_another_origin(runner, local_server, other, status):
    local_server.route("/start", Reply(status, headers={"Location": f"{other.url}/landing"}))
    step = {
        "name": "s",
        "method": "POST",
        "url": f"{local_server.url}/start",
        "body_type": "json",
        "body": {"key": "{{workspace.svc.key | lower}}"},
    }

    record = run(runner, step)

    assert record.status == "failed"
    assert "carries a credential: not followed" in record.error
    assert other.requests == []


def test_a_plain_body_follows_a_307_to_another_origin(runner, local_server, other):
    local_server.route("/start", Reply(307, headers={"Location": f"{other.url}/landing"}))
    step = {"name": "s", "method": "POST", "url": f"{local_server.url}/start", "body_type": "json", "body": {"a": 1}}

    assert run(runner, step).status == "succeeded"
    assert other.requests[0].body == b'{"a":1}'
