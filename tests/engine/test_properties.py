"""Properties of the requests the runner builds, of retry timing, and of `[*]` / negative-index extraction.

Template rendering and path parsing on their own have their properties in test_templating.py and
test_paths.py; these are about what reaches the wire: whatever a value holds, it stays inside its place
(query, form field, XML text, JSON string, header) and comes back out unchanged.
"""

import json
import random
import urllib.parse
import xml.etree.ElementTree as ET

import pytest
import requests
from hypothesis import assume, given
from hypothesis import strategies as st

from connectors.engine.credentials import StaticCredentialProvider, WorkspaceNamespace
from connectors.engine.http import AddressPolicy, SafeHttpClient
from connectors.engine.paths import extract
from connectors.engine.redaction import Redactor
from connectors.engine.runner import Runner, StepFailure, backoff_delay, parse_retry_after
from tests.factories import normalized_step

RUNNER = Runner(SafeHttpClient(AddressPolicy.from_setting("127.0.0.1")))
URL = "http://127.0.0.1:9/path"

# What JSON input can carry to the runner once stored (PostgreSQL's jsonb refuses lone surrogates and NUL).
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
# Characters an XML 1.0 document may hold; a parser reads a bare CR as LF, so it is left out too.
XML_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",)).filter(
        lambda c: c in "\t\n" or (" " <= c <= "\ud7ff") or ("\ue000" <= c <= "\ufffd") or c >= "\U00010000"
    )
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=10,
)


def render(step: dict, input: dict, credentials: dict | None = None):
    redactor = Redactor()
    provider = StaticCredentialProvider(credentials or {})
    context = {"input": input, "contact": {}, "workspace": WorkspaceNamespace(provider, redactor)}
    request, _sensitive = RUNNER.render_request(normalized_step({"name": "s", "url": URL, **step}), context, redactor)
    return request, redactor


@given(value=TEXT)
def test_query_value_comes_back_unchanged_from_the_wire_url(value):
    request, _ = render({"query": {"q": "{{input.v}}", "fixed": "1"}}, {"v": value})

    prepared = requests.Request("GET", request.url, params=request.params).prepare()

    query = urllib.parse.urlsplit(prepared.url).query
    assert urllib.parse.parse_qs(query, keep_blank_values=True) == {"q": [value], "fixed": ["1"]}


@given(values=st.dictionaries(st.sampled_from(["a", "b", "c"]), TEXT, min_size=1))
def test_form_fields_come_back_unchanged(values):
    body = {name: f"{{{{input.{name}}}}}" for name in values}
    request, _ = render({"method": "POST", "body_type": "form", "body": body}, values)

    parsed = urllib.parse.parse_qs(request.body.decode("ascii"), keep_blank_values=True)

    assert parsed == {name: [value] for name, value in values.items()}
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"


@given(value=XML_TEXT)
def test_xml_value_stays_text_of_its_element(value):
    request, _ = render({"method": "POST", "body_type": "xml", "body": "<a><b>{{input.v}}</b><c/></a>"}, {"v": value})

    root = ET.fromstring(request.body)

    assert [child.tag for child in root] == ["b", "c"]
    assert len(root[0]) == 0
    assert (root[0].text or "") == value


@given(value=TEXT)
def test_value_inside_a_json_string_never_breaks_out(value):
    request, _ = render(
        {"method": "POST", "body_type": "json", "body": {"s": "before {{input.v}} after", "n": 1}}, {"v": value}
    )

    assert json.loads(request.body) == {"s": f"before {value} after", "n": 1}


@given(value=JSON)
def test_single_expression_json_body_keeps_any_value(value):
    request, _ = render({"method": "POST", "body_type": "json", "body": {"v": "{{input.v}}"}}, {"v": value})

    assert json.loads(request.body) == {"v": value}


@given(before=TEXT, after=TEXT, line_break=st.sampled_from(["\r", "\n", "\r\n"]))
def test_header_value_with_a_line_break_is_never_built(before, after, line_break):
    with pytest.raises(StepFailure) as excinfo:
        render({"headers": {"X-Id": "{{input.v}}"}}, {"v": f"{before}{line_break}{after}"})

    assert excinfo.value.message == "header 'X-Id' contains a line break after rendering; nothing was sent"
    assert excinfo.value.transient is False


@given(secret=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=6, max_size=40))
def test_credential_used_anywhere_in_a_request_is_registered_as_a_secret(secret):
    assume("[REDACTED]" not in secret)
    step = {
        "query": {"k": "{{workspace.svc.key}}"},
        "headers": {"X-Echo": "{{workspace.svc.key}}"},
        "auth": {"type": "bearer", "token": "{{workspace.svc.key}}"},
    }
    request, redactor = render(step, {}, credentials={"svc": {"key": secret}})

    stored = json.dumps(
        {
            "url": redactor.scrub_url(f"{request.url}?{urllib.parse.urlencode(request.params)}"),
            "headers": redactor.scrub_headers(request.headers),
        }
    )

    assert secret not in stored


@given(failed_attempts=st.integers(min_value=1, max_value=50), seed=st.integers())
def test_backoff_stays_within_its_doubling_ceiling(failed_attempts, seed):
    delay = backoff_delay(failed_attempts, None, random.Random(seed))

    assert 0.0 <= delay <= min(60.0, 2.0 ** (failed_attempts - 1))


@given(retry_after=st.floats(allow_nan=False, allow_infinity=False), failed_attempts=st.integers(1, 10))
def test_retry_after_wins_and_is_clamped_to_0_300(retry_after, failed_attempts):
    assert backoff_delay(failed_attempts, retry_after) == min(max(retry_after, 0.0), 300.0)


@given(seconds=st.integers(min_value=0, max_value=10**9))
def test_retry_after_delta_seconds_parse_to_themselves(seconds):
    assert parse_retry_after(str(seconds)) == float(seconds)


@given(items=st.lists(st.dictionaries(st.sampled_from(["id", "name"]), st.integers(), max_size=2), max_size=6))
def test_wildcard_maps_the_rest_of_the_path_over_every_item(items):
    assert extract({"items": items}, "items[*].id") == [item.get("id") for item in items]


@given(items=st.lists(st.integers(), min_size=1, max_size=8), data=st.data())
def test_negative_index_counts_from_the_end(items, data):
    n = data.draw(st.integers(min_value=1, max_value=len(items)))

    assert extract({"items": items}, f"items[-{n}]") == items[-n]
    assert extract({"items": items}, f"items.-{n}") == items[-n]
    assert extract({"items": items}, f"items[-{len(items) + 1}]") is None
