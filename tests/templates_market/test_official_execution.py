"""Each official template, executed by the engine against its provider's real URL.

The one seam mocked is the HTTP transport (`SampleProvider` in place of the client's `_open`, below the
engine's request preparation and redirect handling), answering with the sample responses shipped in the
template file, in order (for OAuth2 templates, the provider's token endpoint answers first: the token request
is built by the engine's own `request_token`). The test checks what was sent (method, path, query, headers, where the
auth went, how the body was encoded), what was extracted, that the contact mapping resolves, and that no
credential value appears in the step records.
"""

import base64
import http.client
import io
import json
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from connectors.engine.credentials import StaticCredentialProvider, WorkspaceNamespace
from connectors.engine.http import AddressPolicy, SafeHttpClient
from connectors.engine.oauth import grant_form, request_token
from connectors.engine.redaction import Redactor
from connectors.engine.runner import Hooks, Runner, StepRecord, render_contact_mapping
from connectors.engine.transport import Reply
from templates_market.official import DEFAULT_DIRECTORY, read_official_template

OFFICIAL_FILES = sorted(DEFAULT_DIRECTORY.glob("*.json"))


def expected_authorization(auth: str | None) -> str | None:
    """The Authorization header a sample's `auth` ("bearer:TOKEN", "basic:USER:PASSWORD" or null) means."""
    if auth is None:
        return None
    kind, _, value = auth.partition(":")
    if kind == "bearer":
        return f"Bearer {value}"
    if kind == "basic":
        return f"Basic {base64.b64encode(value.encode()).decode()}"
    raise AssertionError(f"unknown auth in sample: {auth!r}")


def body_text(request) -> str:
    body = request.body
    return body.decode() if isinstance(body, bytes) else (body or "")


def check_request(request, expected: dict) -> None:
    url = urlsplit(request.url)
    assert request.method == expected["method"]
    assert url.path == expected["url_path"]
    assert dict(parse_qsl(url.query, keep_blank_values=True)) == expected["query"]
    for name, value in expected["headers"].items():
        assert request.headers.get(name) == value, name
    assert request.headers.get("Authorization") == expected_authorization(expected["auth"])

    encoding, body = expected["body_encoding"], expected["body"]
    content_type = request.headers.get("Content-Type", "")
    if encoding == "none":
        assert not request.body
    elif encoding == "json":
        assert content_type.startswith("application/json")
        assert json.loads(body_text(request)) == body
    elif encoding == "form":
        assert content_type.startswith("application/x-www-form-urlencoded")
        assert dict(parse_qsl(body_text(request), keep_blank_values=True)) == body
    elif encoding in ("xml", "raw"):
        sent = body_text(request)
        fragments = body if isinstance(body, list) else [body]
        for fragment in fragments:
            assert fragment in sent, fragment
    else:
        raise AssertionError(f"unknown body_encoding in sample: {encoding!r}")


class SampleProvider:
    """Stands for the providers: the n-th request sent gets the sample's n-th response, whose method and URL
    it must have (the query too, when the sample's URL has one). Records what was sent."""

    def __init__(self, responses: list[dict]) -> None:
        self.responses = responses
        self.sent: list = []

    def open(self, prepared) -> Reply:
        assert len(self.sent) < len(self.responses), f"unexpected request: {prepared.method} {prepared.url}"
        response = self.responses[len(self.sent)]
        self.sent.append(prepared)
        assert prepared.method == response["method"]
        sent, canned = urlsplit(prepared.url), urlsplit(response["url"])
        assert (sent.scheme, sent.netloc, sent.path) == (canned.scheme, canned.netloc, canned.path)
        if canned.query:
            assert parse_qsl(sent.query) == parse_qsl(canned.query)
        body = response["body"]
        headers = {"Content-Type": response.get("content_type") or "text/plain", **response.get("headers", {})}
        return canned_reply(response["status"], headers, (body if isinstance(body, str) else json.dumps(body)).encode())


class _CannedSocket:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.raw)


def canned_reply(status: int, headers: dict[str, str], body: bytes) -> Reply:
    """An answer as the transport hands it over: status line and headers read by http.client, body to read."""
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    raw = f"HTTP/1.1 {status} Sample\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + body
    response = http.client.HTTPResponse(_CannedSocket(raw))  # type: ignore[arg-type]
    response.begin()
    return Reply(response, lambda reusable: None)


class SampleTokenSource:
    """OAuth2 tokens from the sample's credentials, fetched once from the provider's token URL (no cache)."""

    def __init__(self, client: SafeHttpClient, credentials: dict, definition: dict) -> None:
        self.client = client
        self.credentials = credentials
        self.types = {
            step["auth"]["credential"]: _grant_type(credentials[step["auth"]["credential"]])
            for step in definition["steps"]
            if step["auth"]["type"] == "oauth2"
        }
        self.tokens: dict[str, str] = {}

    def access_token(self, service: str, *, rejected: str | None = None) -> str:
        if service not in self.tokens or self.tokens[service] == rejected:
            fields = self.credentials[service]
            self.tokens[service] = request_token(
                self.client,
                token_url=fields["token_url"],
                client_id=fields["client_id"],
                client_secret=fields["client_secret"],
                form=grant_form(self.types[service], fields),
            ).access_token
        return self.tokens[service]


def _grant_type(fields: dict) -> str:
    return "oauth2_refresh_token" if "refresh_token" in fields else "oauth2_client_credentials"


@pytest.fixture
def runner():
    client = SafeHttpClient(AddressPolicy())
    yield Runner(client)
    client.close()


@pytest.mark.parametrize("path", OFFICIAL_FILES, ids=[path.stem for path in OFFICIAL_FILES])
def test_official_template_runs_against_its_provider(runner, path: Path, monkeypatch):
    sample = json.loads(path.read_text())["sample"]
    definition = read_official_template(path).data["definition"]
    redactor = Redactor()
    context = {
        "input": sample["input"],
        "contact": sample["contact"],
        "workspace": WorkspaceNamespace(StaticCredentialProvider(sample["credentials"]), redactor),
    }
    records: list[StepRecord] = []

    provider = SampleProvider(sample["responses"])
    monkeypatch.setattr(runner.client, "_open", provider.open)
    tokens = SampleTokenSource(runner.client, sample["credentials"], definition)
    hooks = Hooks(on_step=records.append, tokens=tokens)
    outcome = runner.advance(definition, context, redactor, hooks, finished=[])

    assert (outcome.state, outcome.status) == ("finished", "succeeded"), outcome.error
    assert [record.status for record in records] == ["succeeded"] * len(definition["steps"])
    assert len(provider.sent) == len(sample["responses"]) == len(sample["expect_requests"])
    for request, expected in zip(provider.sent, sample["expect_requests"], strict=True):
        check_request(request, expected)
    assert {record.name: record.extracted for record in records} == sample["expect_output"]

    _values, notes = render_contact_mapping(definition["contact_mapping"], context)
    assert notes == []

    stored = json.dumps([[r.request, r.response, r.extracted, r.error] for r in records])
    for fields in sample["credentials"].values():
        for secret in fields.values():
            assert secret not in stored
