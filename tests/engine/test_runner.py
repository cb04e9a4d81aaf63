"""connectors.engine.runner.Runner against real local servers (httpbin and tests.local_server), no database.

The runner is built with an address policy that allows 127.0.0.1 only, as CONNECTORS_ALLOWED_PRIVATE_HOSTS
would in development.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import random
import time
from typing import Any

import pytest

from connectors.engine.credentials import StaticCredentialProvider, WorkspaceNamespace
from connectors.engine.http import AddressPolicy, SafeHttpClient
from connectors.engine.redaction import REDACTED, Redactor
from connectors.engine.runner import (
    Hooks,
    Outcome,
    PendingRetry,
    Runner,
    StepRecord,
    backoff_delay,
    parse_retry_after,
    render_contact_mapping,
)
from tests.factories import normalized_definition
from tests.local_server import RecordedRequest, Reply

pytest_plugins = ["tests.local_server"]

TOKEN = "tok-3f9a1c77e2"


@pytest.fixture(scope="module")
def runner() -> Runner:
    return Runner(SafeHttpClient(AddressPolicy.from_setting("127.0.0.1")))


class Run:
    """One execution of a definition driven to its end (retries are resumed at once, without waiting)."""

    def __init__(self, runner: Runner, steps: list[dict], **definition: Any) -> None:
        self.runner = runner
        self.definition = normalized_definition({"steps": steps, **definition})
        self.records: list[StepRecord] = []
        self.waits: list[PendingRetry] = []
        self.redactor = Redactor()
        self.stop_before: int | None = None

    def context(self, input: dict, credentials: dict, contact: dict) -> dict:
        provider = StaticCredentialProvider(credentials)
        return {"input": input, "contact": contact, "workspace": WorkspaceNamespace(provider, self.redactor)}

    def __call__(
        self, input: dict | None = None, *, credentials: dict | None = None, contact: dict | None = None
    ) -> Outcome:
        context = self.context(input or {}, credentials or {}, contact or {})
        hooks = Hooks(on_step=self.records.append, should_stop=lambda: len(self.records) == self.stop_before)
        pending = None
        while True:
            outcome = self.runner.advance(
                self.definition, context, self.redactor, hooks, finished=list(self.records), pending=pending
            )
            if outcome.state != "waiting":
                return outcome
            self.waits.append(outcome.retry)
            pending = outcome.retry

    def step(self, name: str) -> StepRecord:
        return next(record for record in self.records if record.name == name)


def echoed(record: StepRecord) -> dict:
    """What httpbin's /anything or /get saw, as stored on the step."""
    return record.response["body"]


# ------------------------------------------------------------------------------------------------------------
# Requests built from templates


def test_single_get_sends_query_and_headers_from_input(runner, httpbin):
    run = Run(
        runner,
        [
            {
                "name": "lookup",
                "url": f"{httpbin.url}/get?fixed=1",
                "query": {"q": "{{input.q}}", "page": "{{input.page}}"},
                "headers": {"X-Trace": "trace-{{input.trace}}"},
            }
        ],
    )

    outcome = run({"q": "hello world & more", "page": 2, "trace": "abc"})

    assert outcome == Outcome("finished", status="succeeded")
    body = echoed(run.step("lookup"))
    assert body["args"] == {"fixed": "1", "q": "hello world & more", "page": "2"}
    assert body["headers"]["X-Trace"] == "trace-abc"
    assert run.step("lookup").request["method"] == "GET"
    assert run.step("lookup").request["url"] == f"{httpbin.url}/get?fixed=1&q=hello+world+%26+more&page=2"


def test_three_step_chain_passes_an_extracted_value_and_a_response_header(runner, httpbin):
    run = Run(
        runner,
        [
            {
                "name": "create",
                "method": "POST",
                "url": f"{httpbin.url}/anything/users",
                "body_type": "json",
                "body": {"user": {"id": 42, "name": "{{input.name}}"}},
                "extract": {"user_id": "json.user.id"},
            },
            {
                "name": "mark",
                "url": f"{httpbin.url}/response-headers",
                "query": {"X-Next-Cursor": "cursor-{{steps.create.user_id}}"},
            },
            {
                "name": "follow",
                "url": f"{httpbin.url}/anything/users/{{{{steps.create.user_id}}}}",
                "headers": {"X-Cursor": "{{steps.mark.response.headers.x-next-cursor}}"},
                "extract": {"cursor": "headers.X-Cursor", "path": "url"},
            },
        ],
    )

    outcome = run({"name": "Ada"})

    assert outcome.status == "succeeded"
    assert [r.name for r in run.records] == ["create", "mark", "follow"]
    assert run.step("create").extracted == {"user_id": 42}
    assert run.step("follow").extracted == {"cursor": "cursor-42", "path": f"{httpbin.url}/anything/users/42"}


def test_json_body_keeps_the_type_of_a_single_expression(runner, httpbin):
    run = Run(
        runner,
        [
            {
                "name": "send",
                "method": "POST",
                "url": f"{httpbin.url}/anything",
                "body_type": "json",
                "body": {
                    "count": "{{input.count}}",
                    "flag": "{{input.flag}}",
                    "nothing": "{{input.nothing}}",
                    "tags": "{{input.tags}}",
                    "label": "n={{input.count}}",
                    "nested": [{"deep": "{{input.count}}"}],
                },
            }
        ],
    )

    run({"count": 5, "flag": True, "nothing": None, "tags": ["a", "b"]})

    body = echoed(run.step("send"))
    assert body["json"] == {
        "count": 5,
        "flag": True,
        "nothing": None,
        "tags": ["a", "b"],
        "label": "n=5",
        "nested": [{"deep": 5}],
    }
    assert body["headers"]["Content-Type"] == "application/json"


def test_form_body_is_url_encoded(runner, httpbin):
    run = Run(
        runner,
        [
            {
                "name": "send",
                "method": "POST",
                "url": f"{httpbin.url}/anything",
                "body_type": "form",
                "body": {"name": "{{input.name}}", "fixed": "a=b&c"},
            }
        ],
    )

    run({"name": "Zoë & co"})

    body = echoed(run.step("send"))
    assert body["form"] == {"name": "Zoë & co", "fixed": "a=b&c"}
    assert body["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


def test_xml_body_escapes_substituted_values_only(runner, httpbin):
    run = Run(
        runner,
        [
            {
                "name": "send",
                "method": "POST",
                "url": f"{httpbin.url}/anything",
                "body_type": "xml",
                "body": '<?xml version="1.0"?><user id="1"><name>{{input.name}}</name></user>',
            }
        ],
    )

    run({"name": "Tom & <Jerry>"})

    body = echoed(run.step("send"))
    assert body["data"] == '<?xml version="1.0"?><user id="1"><name>Tom &amp; &lt;Jerry&gt;</name></user>'
    assert body["headers"]["Content-Type"] == "application/xml"


def test_xml_body_takes_its_content_type_from_the_step(runner, httpbin):
    run = Run(
        runner,
        [
            {
                "name": "send",
                "method": "POST",
                "url": f"{httpbin.url}/anything",
                "body_type": "xml",
                "body": "<a>{{input.v}}</a>",
                "content_type": "text/xml; charset=utf-8",
            }
        ],
    )

    run({"v": "1"})

    assert echoed(run.step("send"))["headers"]["Content-Type"] == "text/xml; charset=utf-8"


def test_raw_body_is_sent_as_rendered_with_its_content_type(runner, httpbin):
    run = Run(
        runner,
        [
            {
                "name": "send",
                "method": "PUT",
                "url": f"{httpbin.url}/anything",
                "body_type": "raw",
                "body": "id,name\n1,{{input.name}}\n",
                "content_type": "text/csv",
            }
        ],
    )

    run({"name": "Ada"})

    body = echoed(run.step("send"))
    assert body["method"] == "PUT"
    assert body["data"] == "id,name\n1,Ada\n"
    assert body["headers"]["Content-Type"] == "text/csv"
    assert run.step("send").request["body"] == "id,name\n1,Ada\n"


def test_raw_body_defaults_to_text_plain(runner, httpbin):
    run = Run(
        runner,
        [{"name": "send", "method": "POST", "url": f"{httpbin.url}/anything", "body_type": "raw", "body": "hi"}],
    )

    run()

    assert echoed(run.step("send"))["headers"]["Content-Type"] == "text/plain"


def test_header_value_with_a_line_break_fails_before_sending(runner, local_server):
    run = Run(runner, [{"name": "send", "url": f"{local_server.url}/x", "headers": {"X-Id": "{{input.id}}"}}])

    outcome = run({"id": "1\r\nX-Injected: yes"})

    assert outcome.status == "failed"
    assert run.step("send").error == "header 'X-Id' contains a line break after rendering; nothing was sent"
    assert local_server.hits == 0


# ------------------------------------------------------------------------------------------------------------
# Auth


def test_bearer_token_is_accepted(runner, httpbin):
    run = Run(
        runner,
        [
            {
                "name": "me",
                "url": f"{httpbin.url}/bearer",
                "auth": {"type": "bearer", "token": "{{workspace.api.token}}"},
            }
        ],
    )

    outcome = run(credentials={"api": {"token": TOKEN}})

    assert outcome.status == "succeeded"
    assert run.step("me").response["status_code"] == 200
    assert run.step("me").response["body"] == {"authenticated": True, "token": REDACTED}
    assert run.step("me").request["headers"]["Authorization"] == REDACTED


def test_basic_auth_is_accepted(runner, httpbin):
    run = Run(
        runner,
        [
            {
                "name": "me",
                "url": f"{httpbin.url}/basic-auth/user/pass",
                "auth": {"type": "basic", "username": "user", "password": "{{workspace.api.password}}"},
            }
        ],
    )

    outcome = run(credentials={"api": {"password": "pass"}})

    assert outcome.status == "succeeded"
    assert run.step("me").response["status_code"] == 200
    assert run.step("me").request["headers"]["Authorization"] == REDACTED


def test_wrong_basic_password_fails_without_retry(runner, httpbin):
    run = Run(
        runner,
        [
            {
                "name": "me",
                "url": f"{httpbin.url}/basic-auth/user/pass",
                "auth": {"type": "basic", "username": "user", "password": "wrong"},
            }
        ],
    )

    outcome = run()

    assert outcome.status == "failed"
    assert run.step("me").error == "HTTP 401"
    assert run.step("me").attempts == 1


def _key_checker(where: str):
    def respond(request: RecordedRequest) -> Reply:
        if where == "header":
            sent = request.header("X-Api-Key")
        else:
            sent = dict(p.split("=", 1) for p in request.path.split("?", 1)[1].split("&")).get("access_key")
        return (
            Reply(200, body=b'{"ok": true}', headers={"Content-Type": "application/json"})
            if sent == TOKEN
            else (Reply(401))
        )

    return respond


def test_api_key_in_header_is_accepted(runner, local_server):
    local_server.route("/v1/check", _key_checker("header"))
    run = Run(
        runner,
        [
            {
                "name": "check",
                "url": f"{local_server.url}/v1/check",
                "auth": {"type": "api_key", "in": "header", "name": "X-Api-Key", "value": "{{workspace.svc}}"},
            }
        ],
    )

    outcome = run(credentials={"svc": {"key": TOKEN}})

    assert outcome.status == "succeeded"
    assert run.step("check").request["headers"]["X-Api-Key"] == REDACTED


def test_api_key_in_query_is_accepted(runner, local_server):
    local_server.route("/v1/check", _key_checker("query"))
    run = Run(
        runner,
        [
            {
                "name": "check",
                "url": f"{local_server.url}/v1/check",
                "query": {"number": "{{input.phone}}"},
                "auth": {"type": "api_key", "in": "query", "name": "access_key", "value": "{{workspace.svc.key}}"},
            }
        ],
    )

    outcome = run({"phone": "+33123"}, credentials={"svc": {"key": TOKEN}})

    assert outcome.status == "succeeded"
    assert local_server.requests[0].path == f"/v1/check?number=%2B33123&access_key={TOKEN}"
    assert run.step("check").request["url"] == f"{local_server.url}/v1/check?number=%2B33123&access_key={REDACTED}"


def test_secret_echoed_back_is_redacted_everywhere_in_the_record(runner, httpbin):
    run = Run(
        runner,
        [
            {
                "name": "echo",
                "url": f"{httpbin.url}/anything",
                "headers": {"X-Signature": "{{workspace.api.token | base64}}"},
                "query": {"t": "{{workspace.api.token}}"},
                "auth": {"type": "bearer", "token": "{{workspace.api.token}}"},
                "extract": {"seen": "headers.Authorization", "arg": "args.t"},
            }
        ],
    )

    run(credentials={"api": {"token": TOKEN}})

    record = run.step("echo")
    stored = json.dumps([record.request, record.response, record.extracted, record.error])
    assert TOKEN not in stored
    assert base64.b64encode(TOKEN.encode()).decode() not in stored
    assert record.extracted == {"seen": f"Bearer {REDACTED}", "arg": REDACTED}


# ------------------------------------------------------------------------------------------------------------
# Retries


def test_transient_failures_are_retried_until_success(runner, local_server):
    local_server.route(
        "/flaky", [Reply(503), Reply(503), Reply(200, body=b"fine", headers={"Content-Type": "text/plain"})]
    )
    run = Run(runner, [{"name": "flaky", "url": f"{local_server.url}/flaky"}])

    outcome = run()

    assert outcome.status == "succeeded"
    assert run.step("flaky").attempts == 3
    assert run.step("flaky").response["status_code"] == 200
    assert run.step("flaky").response["body"] == "fine"
    assert [(w.index, w.attempts, w.error) for w in run.waits] == [(0, 1, "HTTP 503"), (0, 2, "HTTP 503")]
    assert local_server.hits == 3


def test_retries_stop_at_max_attempts(runner, local_server):
    local_server.route("/down", Reply(502))
    run = Run(runner, [{"name": "down", "url": f"{local_server.url}/down", "retry": {"max_attempts": 2}}])

    outcome = run()

    assert outcome == Outcome("finished", status="failed", error="step 'down' failed: HTTP 502")
    assert run.step("down").attempts == 2
    assert local_server.hits == 2


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_transient_statuses_wait_for_a_retry(runner, local_server, status):
    local_server.route("/x", Reply(status))
    definition = normalized_definition({"steps": [{"name": "x", "url": f"{local_server.url}/x"}]})

    outcome = runner.advance(definition, {"input": {}}, Redactor(), Hooks(on_step=pytest.fail), finished=[])

    assert outcome.state == "waiting"
    assert outcome.retry.error == f"HTTP {status}"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_client_errors_fail_at_once(runner, local_server, status):
    local_server.route("/x", Reply(status))
    run = Run(runner, [{"name": "x", "url": f"{local_server.url}/x", "retry": {"max_attempts": 5}}])

    outcome = run()

    assert outcome.status == "failed"
    assert run.step("x").attempts == 1
    assert run.waits == []
    assert local_server.hits == 1


def test_retry_after_seconds_is_the_wait(runner, local_server):
    local_server.route("/busy", Reply(429, headers={"Retry-After": "7"}))
    definition = normalized_definition({"steps": [{"name": "busy", "url": f"{local_server.url}/busy"}]})

    outcome = runner.advance(definition, {"input": {}}, Redactor(), Hooks(on_step=pytest.fail), finished=[])

    assert outcome.retry.delay == 7.0


def test_retry_after_http_date_is_the_wait(runner, local_server):
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    local_server.route("/busy", Reply(503, headers={"Retry-After": when}))
    definition = normalized_definition({"steps": [{"name": "busy", "url": f"{local_server.url}/busy"}]})

    outcome = runner.advance(definition, {"input": {}}, Redactor(), Hooks(on_step=pytest.fail), finished=[])

    assert 28.0 <= outcome.retry.delay <= 30.0


def test_retry_after_is_capped_at_300_seconds(runner, local_server):
    local_server.route("/busy", Reply(503, headers={"Retry-After": "86400"}))
    definition = normalized_definition({"steps": [{"name": "busy", "url": f"{local_server.url}/busy"}]})

    outcome = runner.advance(definition, {"input": {}}, Redactor(), Hooks(on_step=pytest.fail), finished=[])

    assert outcome.retry.delay == 300.0


def test_retry_that_would_overrun_the_deadline_fails_the_step(runner, local_server):
    local_server.route("/busy", Reply(503, headers={"Retry-After": "5"}))
    definition = normalized_definition({"steps": [{"name": "busy", "url": f"{local_server.url}/busy"}]})
    records: list[StepRecord] = []

    outcome = runner.advance(
        definition, {"input": {}}, Redactor(), Hooks(on_step=records.append), finished=[], deadline=time.monotonic() + 2
    )

    assert outcome.status == "failed"
    assert records[0].error == "HTTP 503; no time left for another attempt within max_duration_seconds"


def test_completed_steps_are_not_sent_again_when_a_later_step_retries(runner, local_server):
    local_server.route("/first", Reply(200, body=b'{"id": 7}', headers={"Content-Type": "application/json"}))
    local_server.route("/second", [Reply(503), Reply(500), Reply(200)])
    run = Run(
        runner,
        [
            {"name": "first", "url": f"{local_server.url}/first", "extract": {"id": "id"}},
            {"name": "second", "url": f"{local_server.url}/second", "query": {"id": "{{steps.first.id}}"}},
        ],
    )

    outcome = run()

    assert outcome.status == "succeeded"
    assert [r.path for r in local_server.requests] == ["/first", "/second?id=7", "/second?id=7", "/second?id=7"]
    assert [r.attempts for r in run.records] == [1, 3]


def test_a_resumed_retry_keeps_the_first_attempts_start(runner, local_server):
    local_server.route("/flaky", [Reply(503), Reply(200)])
    run = Run(runner, [{"name": "flaky", "url": f"{local_server.url}/flaky"}])

    run()

    assert run.step("flaky").started_at == run.waits[0].started_at


def test_timeout_is_a_transient_failure(runner, local_server):
    local_server.route("/slow", Reply(200, delay=3))
    run = Run(
        runner,
        [{"name": "slow", "url": f"{local_server.url}/slow", "timeout_seconds": 1, "retry": {"max_attempts": 2}}],
    )

    outcome = run()

    assert outcome.status == "failed"
    error = f"timed out waiting for the response from {local_server.url}/slow"
    assert [w.error for w in run.waits] == [error]
    assert run.step("slow").error == error
    assert run.step("slow").attempts == 2
    assert run.step("slow").response is None


def test_connection_refused_is_transient(runner):
    run = Run(runner, [{"name": "gone", "url": "http://127.0.0.1:9/x", "retry": {"max_attempts": 2}}])

    outcome = run()

    assert outcome.status == "failed"
    assert run.step("gone").attempts == 2
    assert run.step("gone").error == "connection to http://127.0.0.1:9/x refused"


def test_backoff_doubles_from_one_second_up_to_sixty():
    class Highest(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    assert [backoff_delay(n, None, Highest()) for n in range(1, 9)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_backoff_is_jittered_below_its_ceiling():
    delays = [backoff_delay(3, None, random.Random(seed)) for seed in range(50)]

    assert all(0.0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) == 50


def test_backoff_follows_retry_after_up_to_300_seconds():
    assert backoff_delay(1, 12.0) == 12.0
    assert backoff_delay(1, 301.0) == 300.0
    assert backoff_delay(1, -5.0) == 0.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
    ],
)
def test_parse_retry_after(header, seconds):
    now = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:28:00 GMT").timestamp()

    assert parse_retry_after(header, now=now) == seconds


# ------------------------------------------------------------------------------------------------------------
# Failures, continue_on_error and skipped steps


def test_failed_step_skips_the_rest(runner, local_server):
    local_server.route("/missing", Reply(404))
    run = Run(
        runner,
        [
            {"name": "one", "url": f"{local_server.url}/ok"},
            {"name": "two", "url": f"{local_server.url}/missing"},
            {"name": "three", "url": f"{local_server.url}/ok"},
            {"name": "four", "url": f"{local_server.url}/ok"},
        ],
    )

    outcome = run()

    assert outcome == Outcome("finished", status="failed", error="step 'two' failed: HTTP 404")
    assert [(r.name, r.status) for r in run.records] == [
        ("one", "succeeded"),
        ("two", "failed"),
        ("three", "skipped"),
        ("four", "skipped"),
    ]
    assert run.step("three").attempts == 0
    assert run.step("three").request is None
    assert [r.path for r in local_server.requests] == ["/ok", "/missing"]


def test_continue_on_error_runs_the_next_step_and_the_execution_succeeds(runner, local_server):
    local_server.route("/missing", Reply(404))
    run = Run(
        runner,
        [
            {"name": "optional", "url": f"{local_server.url}/missing", "continue_on_error": True},
            {"name": "main", "url": f"{local_server.url}/ok"},
        ],
    )

    outcome = run()

    assert outcome == Outcome("finished", status="succeeded")
    assert [(r.name, r.status, r.error) for r in run.records] == [
        ("optional", "failed", "HTTP 404"),
        ("main", "succeeded", None),
    ]


def test_reference_to_a_failed_optional_step_fails_the_step_that_uses_it(runner, local_server):
    local_server.route("/missing", Reply(404))
    run = Run(
        runner,
        [
            {"name": "optional", "url": f"{local_server.url}/missing", "continue_on_error": True},
            {
                "name": "main",
                "url": f"{local_server.url}/ok",
                "query": {"v": "{{steps.optional.response.status_code}}"},
            },
        ],
    )

    outcome = run()

    assert outcome.status == "failed"
    assert run.step("main").error == "unresolved reference {{steps.optional.response.status_code}} in query"
    assert local_server.hits == 1


def test_resuming_after_a_failed_step_only_records_the_skips(runner, local_server):
    definition = normalized_definition(
        {"steps": [{"name": "one", "url": f"{local_server.url}/a"}, {"name": "two", "url": f"{local_server.url}/b"}]}
    )
    failed = StepRecord(index=0, name="one", status="failed", attempts=1, error="HTTP 500")
    records: list[StepRecord] = []

    outcome = runner.advance(definition, {"input": {}}, Redactor(), Hooks(on_step=records.append), finished=[failed])

    assert outcome == Outcome("finished", status="failed", error="step 'one' failed: HTTP 500")
    assert [(r.name, r.status) for r in records] == [("two", "skipped")]
    assert local_server.hits == 0


def test_stop_request_ends_the_run_before_the_next_step(runner, local_server):
    run = Run(
        runner, [{"name": "one", "url": f"{local_server.url}/a"}, {"name": "two", "url": f"{local_server.url}/b"}]
    )
    run.stop_before = 1

    outcome = run()

    assert outcome == Outcome("stopped")
    assert [r.name for r in run.records] == ["one"]
    assert [r.path for r in local_server.requests] == ["/a"]


def test_unresolved_reference_fails_before_any_request(runner, local_server):
    run = Run(
        runner,
        [{"name": "validate", "url": f"{local_server.url}/v", "query": {"number": "{{input.phone}}"}}],
    )

    outcome = run({"name": "no phone"})

    assert outcome.status == "failed"
    assert run.step("validate").error == "unresolved reference {{input.phone}} in query"
    assert run.step("validate").attempts == 1
    assert run.step("validate").request is None
    assert local_server.hits == 0


@pytest.mark.parametrize(
    ("field", "step", "where"),
    [
        ("url", {"url": "{{input.base}}/v"}, "url"),
        ("headers", {"headers": {"X-Id": "{{input.missing}}"}}, "headers"),
        ("auth", {"auth": {"type": "bearer", "token": "{{input.missing}}"}}, "auth"),
        ("body", {"method": "POST", "body_type": "json", "body": {"a": ["{{input.missing}}"]}}, "body"),
    ],
)
def test_unresolved_reference_names_where_it_stood(runner, local_server, field, step, where):
    run = Run(runner, [{"name": "s", "url": f"{local_server.url}/v", **step}])

    run({})

    expression = "input.base" if field == "url" else "input.missing"
    assert run.step("s").error == f"unresolved reference {{{{{expression}}}}} in {where}"
    assert local_server.hits == 0


def test_default_filter_stands_in_for_a_missing_value(runner, httpbin):
    run = Run(runner, [{"name": "s", "url": f"{httpbin.url}/get", "query": {"q": '{{ input.q | default:"none" }}'}}])

    run({})

    assert echoed(run.step("s"))["args"] == {"q": "none"}


def test_missing_credential_names_the_service_and_sends_nothing(runner, local_server):
    run = Run(
        runner,
        [
            {
                "name": "validate",
                "url": f"{local_server.url}/v",
                "auth": {
                    "type": "api_key",
                    "in": "query",
                    "name": "access_key",
                    "value": "{{workspace.numverify.key}}",
                },
            }
        ],
    )

    outcome = run(credentials={"other": {"key": "x"}})

    assert outcome.status == "failed"
    assert run.step("validate").error == (
        "the workspace has no credential for service 'numverify'; add it under /workspace/credentials "
        "(referenced in auth)"
    )
    assert local_server.hits == 0


def test_missing_credential_field_is_an_unresolved_reference(runner, local_server):
    run = Run(runner, [{"name": "s", "url": f"{local_server.url}/v", "headers": {"X-K": "{{workspace.svc.nope}}"}}])

    run(credentials={"svc": {"key": "x"}})

    assert run.step("s").error == "unresolved reference {{workspace.svc.nope}} in headers"
    assert local_server.hits == 0


# ------------------------------------------------------------------------------------------------------------
# Responses: parsing, extraction, storage limits


def _json_reply(payload: Any, **headers: str) -> Reply:
    return Reply(200, body=json.dumps(payload).encode(), headers={"Content-Type": "application/json", **headers})


def test_extraction_paths(runner, local_server):
    payload = {
        "carrier": "Orange",
        "country": {"name": "France", "code": "FR"},
        "items": [{"id": 1}, {"id": 2, "tags": ["x"]}, {"id": 3}],
        "headers": None,
    }
    local_server.route("/data", _json_reply(payload, **{"X-Mode": "fast"}))
    run = Run(
        runner,
        [
            {
                "name": "get",
                "url": f"{local_server.url}/data",
                "extract": {
                    "carrier": "carrier",
                    "country": "country.name",
                    "first": "items[0].id",
                    "second": "items.1.id",
                    "last": "items[-1].id",
                    "ids": "items[*].id",
                    "tags": "items[*].tags",
                    "missing": "country.region.name",
                    "out_of_range": "items[9].id",
                },
            }
        ],
    )

    run()

    assert run.step("get").extracted == {
        "carrier": "Orange",
        "country": "France",
        "first": 1,
        "second": 2,
        "last": 3,
        "ids": [1, 2, 3],
        "tags": [None, ["x"], None],
        "missing": None,
        "out_of_range": None,
    }


def test_extraction_reads_response_headers_case_insensitively(runner, local_server):
    local_server.route("/data", _json_reply({"ok": True}, **{"X-Request-Id": "r-1"}))
    run = Run(
        runner,
        [{"name": "get", "url": f"{local_server.url}/data", "extract": {"id": "headers.x-request-id", "ok": "ok"}}],
    )

    run()

    assert run.step("get").extracted == {"id": "r-1", "ok": True}


def test_top_level_list_is_extracted_by_index(runner, local_server):
    local_server.route("/list", _json_reply([{"id": "a"}, {"id": "b"}]))
    run = Run(runner, [{"name": "get", "url": f"{local_server.url}/list", "extract": {"last": "[-1].id"}}])

    run()

    assert run.step("get").extracted == {"last": "b"}


def test_later_steps_read_status_body_and_headers_of_earlier_responses(runner, local_server, httpbin):
    local_server.route("/data", _json_reply({"user": {"email": "a@b.test"}}, **{"ETag": '"v1"'}))
    run = Run(
        runner,
        [
            {"name": "one", "url": f"{local_server.url}/data"},
            {
                "name": "two",
                "url": f"{httpbin.url}/get",
                "query": {
                    "status": "{{steps.one.response.status_code}}",
                    "email": "{{steps.one.response.body.user.email}}",
                    "etag": "{{steps.one.response.headers.etag}}",
                },
            },
        ],
    )

    run()

    assert echoed(run.step("two"))["args"] == {"status": "200", "email": "a@b.test", "etag": '"v1"'}


def test_invalid_json_fails_the_step(runner, local_server):
    local_server.route("/bad", Reply(200, body=b"{not json", headers={"Content-Type": "application/json"}))
    run = Run(runner, [{"name": "s", "url": f"{local_server.url}/bad"}])

    outcome = run()

    assert outcome.status == "failed"
    assert run.step("s").error == "the response is not valid JSON (HTTP 200)"


def test_response_type_text_keeps_json_as_text(runner, local_server):
    local_server.route("/data", _json_reply({"a": 1}))
    run = Run(runner, [{"name": "s", "url": f"{local_server.url}/data", "response_type": "text"}])

    run()

    assert run.step("s").response["body"] == '{"a": 1}'


def test_response_body_over_64_kib_is_stored_cut(runner, local_server):
    local_server.route("/big", Reply(200, body=b"a" * 100_000, headers={"Content-Type": "text/plain"}))
    run = Run(runner, [{"name": "s", "url": f"{local_server.url}/big"}])

    outcome = run()

    assert outcome.status == "succeeded"
    assert run.step("s").response["body"] == "a" * 65536


def test_large_json_response_is_extracted_in_full_and_stored_cut(runner, local_server):
    items = [{"id": i, "pad": "p" * 100} for i in range(1000)]
    local_server.route("/big", _json_reply({"items": items}))
    run = Run(runner, [{"name": "s", "url": f"{local_server.url}/big", "extract": {"last": "items[-1].id"}}])

    run()

    assert run.step("s").extracted == {"last": 999}
    stored = run.step("s").response["body"]
    assert isinstance(stored, str)
    assert len(stored.encode()) == 65536
    assert stored.startswith('{"items": [{"id": 0, "pad": "ppp')


def test_response_over_10_mib_fails_with_a_clear_error(runner, local_server):
    local_server.route("/huge", Reply(200, body_size=10 * 1024 * 1024 + 1))
    run = Run(runner, [{"name": "s", "url": f"{local_server.url}/huge"}])

    outcome = run()

    assert outcome.status == "failed"
    assert run.step("s").error == (
        f"the response from {local_server.url}/huge announces 10485761 bytes, over the 10485760-byte limit"
    )
    assert run.step("s").attempts == 1


def test_streamed_response_over_10_mib_fails_with_a_clear_error(runner, local_server):
    local_server.route("/huge", Reply(200, body_size=11 * 1024 * 1024, content_length=False))
    run = Run(runner, [{"name": "s", "url": f"{local_server.url}/huge"}])

    run()

    assert run.step("s").error == f"the response from {local_server.url}/huge is larger than the 10485760-byte limit"


def test_binary_response_is_stored_as_size_hash_and_base64_of_the_first_64_kib(runner, local_server):
    content = bytes(range(256)) * 400
    local_server.route("/file", Reply(200, body=content, headers={"Content-Type": "application/octet-stream"}))
    run = Run(runner, [{"name": "s", "url": f"{local_server.url}/file"}])

    run()

    assert run.step("s").response["body"] == {
        "size": 102400,
        "sha256": hashlib.sha256(content).hexdigest(),
        "base64": base64.b64encode(content[:65536]).decode(),
    }


def test_response_type_binary_wins_over_a_text_content_type(runner, local_server):
    local_server.route("/file", Reply(200, body=b"hello", headers={"Content-Type": "text/plain"}))
    run = Run(runner, [{"name": "s", "url": f"{local_server.url}/file", "response_type": "binary"}])

    run()

    assert run.step("s").response["body"] == {
        "size": 5,
        "sha256": hashlib.sha256(b"hello").hexdigest(),
        "base64": "aGVsbG8=",
    }


def test_empty_response_body_is_empty_text_and_succeeds(runner, local_server):
    local_server.route("/empty", Reply(204, body=b""))
    run = Run(runner, [{"name": "s", "url": f"{local_server.url}/empty", "extract": {"id": "id"}}])

    outcome = run()

    assert outcome.status == "succeeded"
    assert run.step("s").response["body"] == ""
    assert run.step("s").extracted == {"id": None}


def test_step_record_times_its_work(runner, local_server):
    local_server.route("/slowish", Reply(200, delay=0.2))
    run = Run(runner, [{"name": "s", "url": f"{local_server.url}/slowish"}])

    run()

    record = run.step("s")
    assert record.started_at <= record.finished_at
    assert 200 <= record.duration_ms < 2000


def test_refused_destination_fails_without_retry(runner):
    run = Run(runner, [{"name": "s", "url": "http://127.0.0.2:8080/x"}])

    outcome = run()

    assert outcome.status == "failed"
    assert run.step("s").error == (
        "refused: 127.0.0.2 is a loopback address"
        "; if it is your own server, add 127.0.0.2:8080 to CONNECTORS_ALLOWED_PRIVATE_HOSTS"
    )
    assert run.step("s").attempts == 1


# ------------------------------------------------------------------------------------------------------------
# Contact mapping


def test_contact_mapping_renders_values_with_their_types():
    context = {"input": {}, "steps": {"validate": {"valid": True, "carrier": "Orange"}}}

    values, notes = render_contact_mapping(
        {
            "phone_valid": "{{steps.validate.valid}}",
            "custom_fields.carrier": "{{steps.validate.carrier | upper}}",
            "company": "Carrier: {{steps.validate.carrier}}",
        },
        context,
    )

    assert values == {"phone_valid": True, "custom_fields.carrier": "ORANGE", "company": "Carrier: Orange"}
    assert notes == []


def test_contact_mapping_skips_and_notes_what_does_not_resolve():
    context = {"input": {}, "steps": {"validate": {"valid": True}}}

    values, notes = render_contact_mapping(
        {"phone_valid": "{{steps.validate.valid}}", "custom_fields.carrier": "{{steps.validate.carrier}}"},
        context,
    )

    assert values == {"phone_valid": True}
    assert notes == ["contact_mapping 'custom_fields.carrier' skipped: unresolved reference {{steps.validate.carrier}}"]
