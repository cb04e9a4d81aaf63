"""Rendered sizes are capped while rendering: the URL with its query, each header, the body."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.engine.http import AddressPolicy, SafeHttpClient
from connectors.engine.redaction import Redactor
from connectors.engine.runner import Runner, StepFailure
from connectors.engine.spec import MAX_RENDERED_BODY, MAX_RENDERED_HEADER, MAX_RENDERED_URL
from connectors.engine.templating import Reference, RenderBudget, RenderTooLarge, compile_template
from tests.factories import normalized_step

KIB = "k" * 1024
BIG = "y" * 32_768


@pytest.fixture
def runner() -> Runner:
    return Runner(SafeHttpClient(AddressPolicy.from_setting("127.0.0.1")))


def render(runner: Runner, step: dict, input: dict) -> Any:
    return runner.render_request(normalized_step(step), {"input": input, "steps": {}}, Redactor())


@pytest.mark.parametrize(
    ("step", "input", "where", "limit"),
    [
        ({"url": "https://x.example/{{input.x}}"}, {"x": "u" * MAX_RENDERED_URL}, "url", MAX_RENDERED_URL),
        (
            {"url": "https://x.example/", "query": {f"q{i}": "{{input.x}}" for i in range(5)}},
            {"x": "q" * 4000},
            "query",
            MAX_RENDERED_URL,
        ),
        ({"headers": {"X-Big": "{{input.x}}{{input.x}}"}}, {"x": "h" * 9000}, "headers", MAX_RENDERED_HEADER),
        ({"auth": {"type": "bearer", "token": "{{input.x}}"}}, {"x": "t" * 20_000}, "auth", MAX_RENDERED_HEADER),
        ({"body_type": "raw", "body": "{{input.x}}" * 5000}, {"x": BIG}, "body", MAX_RENDERED_BODY),
        ({"body_type": "xml", "body": "<a>{{input.x}}</a>" * 3000}, {"x": "&" * 2000}, "body", MAX_RENDERED_BODY),
        (
            {"body_type": "form", "body": {f"f{i}": "{{input.x}}" for i in range(90)}},
            {"x": BIG},
            "body",
            MAX_RENDERED_BODY,
        ),
        ({"body_type": "json", "body": ["{{input.obj}}"] * 2000}, {"obj": {"a": BIG}}, "body", MAX_RENDERED_BODY),
        ({"body_type": "json", "body": {"a": ["x-{{input.x}}"] * 100}}, {"x": BIG}, "body", MAX_RENDERED_BODY),
    ],
    ids=["url", "query", "header", "auth", "raw", "xml", "form", "json-values", "json-text"],
)
def test_oversized_renders_fail_the_step_naming_the_place(runner, step, input, where, limit):
    with pytest.raises(StepFailure) as caught:
        render(runner, {"name": "s", "url": "https://x.example/", **step}, input)

    assert caught.value.message == (
        f"the rendered {where} is larger than {limit} characters (the limit); nothing was sent"
    )
    assert not caught.value.transient


def test_renders_at_the_limit_are_sent_whole(runner):
    request, _ = render(
        runner,
        {"name": "s", "url": "https://x.example/", "body_type": "raw", "body": "{{input.x}}" * 64},
        {"x": BIG},
    )

    assert len(request.body) == MAX_RENDERED_BODY


class CountingTaint:
    """Counts how many references were evaluated (every evaluation asks is_secret)."""

    def __init__(self) -> None:
        self.evaluated = 0

    def is_secret(self, reference: Reference, value: Any) -> bool:
        self.evaluated += 1
        return False

    def record(self, text: str) -> None:
        pass


def test_rendering_stops_as_soon_as_the_budget_is_spent():
    taint = CountingTaint()

    with pytest.raises(RenderTooLarge):
        compile_template("{{input.x}}" * 6000).render({"input": {"x": KIB}}, taint=taint, budget=RenderBudget(10_240))

    assert taint.evaluated == 11


def test_the_step_is_not_sent(runner, local_server):
    step = normalized_step(
        {"name": "s", "url": f"{local_server.url}/x", "body_type": "raw", "body": "{{input.x}}" * 100}
    )

    record, retry = runner._run_step(step, 0, {"input": {"x": BIG}, "steps": {}}, Redactor(), None, None)

    assert (record.status, retry) == ("failed", None)
    assert "the rendered body is larger than" in record.error
    assert local_server.requests == []
