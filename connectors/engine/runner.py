"""Runs the steps of a connector definition: render, send, parse, extract, report.

Pure engine code: no database, no Celery. The caller (executions.runtime) owns persistence; it hands the
runner a context and hooks, and gets back step records to checkpoint and a verdict. One call to
`Runner.advance` runs steps until the execution finishes, must wait before a retry (the caller reschedules it
instead of sleeping in a worker), or is told to stop.

Secrets: every value read from the `workspace` namespace and every auth value is registered with the
execution's Redactor before it is placed into a request, and everything a record holds is scrubbed.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit
from xml.sax.saxutils import escape as xml_escape

from requests.structures import CaseInsensitiveDict

from connectors.engine.credentials import MissingCredential
from connectors.engine.exchange import Exchange, RateBudget, RateLimitWait, RequestEvent, SendFailure, step_services
from connectors.engine.http import OutboundRequest, OutboundResponse, SafeHttpClient
from connectors.engine.oauth import TokenSource
from connectors.engine.pagination import PageState, PaginationError, Paginator
from connectors.engine.paths import PathNotFound, extract, resolve
from connectors.engine.redaction import Redactor
from connectors.engine.spec import AuthType, BodyType, DefinitionSpec, ResponseType, StepSpec, StepState
from connectors.engine.taint import SecretDerived, SecretTaint, refusing_taint
from connectors.engine.templating import (
    RenderBudget,
    RenderTooLarge,
    Taint,
    UnresolvedReference,
    compile_template,
    render_json,
    to_text,
)

TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_BACKOFF_SECONDS = 60.0
MAX_RETRY_AFTER_SECONDS = 300.0
DEFAULT_STORED_BODY_BYTES = 64 * 1024
MAX_PAGE_PROGRESS_BYTES = 256 * 1024
# Caps on what a step renders, checked while rendering (characters): the URL with its query, each header, the body.
MAX_RENDERED_URL = 16 * 1024
MAX_RENDERED_HEADER = 16 * 1024
MAX_RENDERED_BODY = 2 * 1024 * 1024
_XML_QUOTES = {'"': "&quot;", "'": "&apos;"}
BODY_CONTENT_TYPES = {
    BodyType.JSON: "application/json",
    BodyType.FORM: "application/x-www-form-urlencoded",
    BodyType.XML: "application/xml",
    BodyType.RAW: "text/plain",
}


class BinaryBody(dict[str, Any]):
    """A binary response as stored: {"size", "sha256", "base64"}; stored whole, never cut like other bodies."""


class StepFailure(Exception):
    """A step attempt failed. `transient` failures may be retried; `retry_after` is the server's wish."""

    def __init__(
        self, message: str, *, transient: bool = False, retry_after: float | None = None, timed_out: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.retry_after = retry_after
        self.timed_out = timed_out


@dataclass
class StepRecord:
    """What is stored about one step (already scrubbed), plus the unscrubbed values later steps may use."""

    index: int
    name: str
    status: str
    attempts: int = 0
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    extracted: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    # In-memory only: the values templates of later steps read (`steps.NAME...`).
    context: dict[str, Any] | None = None
    # Values of this step that later steps use as auth, unscrubbed: [[path, value], ...]. The caller stores
    # them encrypted, so a resumed execution can still authenticate with them (see `secret_paths`).
    sealed: list[Any] = field(default_factory=list)


@dataclass
class PendingRetry:
    """A step that failed transiently and will be tried again after `delay` seconds."""

    index: int
    attempts: int
    delay: float
    error: str
    started_at: datetime | None
    # Pagination progress of the step (PageState.to_json(), scrubbed), so a resumed step goes on from there.
    state: dict[str, Any] | None = None


@dataclass
class Outcome:
    """The verdict of `Runner.advance`: `finished` with a status, `waiting` for a retry, or `stopped`."""

    state: str
    status: str | None = None
    error: str | None = None
    retry: PendingRetry | None = None


@dataclass
class Hooks:
    """Callbacks to the caller. `on_step` must persist the record before it returns (checkpoint)."""

    on_step: Callable[[StepRecord], None]
    should_stop: Callable[[], bool] = lambda: False
    # HTTP features of steps (connectors/engine/exchange.py); all optional.
    tokens: TokenSource | None = None
    budget: RateBudget | None = None
    on_request: Callable[[RequestEvent], None] | None = None
    run_key: str | None = None  # the execution id: the seed of Idempotency-Key values


def utcnow() -> datetime:
    return datetime.now(UTC)


def backoff_delay(failed_attempts: int, retry_after: float | None, rng: random.Random | None = None) -> float:
    """Seconds to wait after the `failed_attempts`-th failure: the server's Retry-After (at most 300 s) wins;
    otherwise full jitter over 1 s doubling per attempt, capped at 60 s."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), MAX_RETRY_AFTER_SECONDS)
    ceiling = min(MAX_BACKOFF_SECONDS, 2.0 ** (failed_attempts - 1))
    return (rng or random).uniform(0, ceiling)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


class Runner:
    """Executes definitions with one shared SafeHttpClient (connection pooling across executions)."""

    def __init__(self, client: SafeHttpClient, *, stored_body_bytes: int = DEFAULT_STORED_BODY_BYTES) -> None:
        self.client = client
        self.stored_body_bytes = stored_body_bytes

    def advance(
        self,
        definition: DefinitionSpec,
        context: dict[str, Any],
        redactor: Redactor,
        hooks: Hooks,
        *,
        finished: list[StepRecord],
        pending: PendingRetry | None = None,
        deadline: float | None = None,
    ) -> Outcome:
        """Runs the steps after those in `finished` (resuming `pending` if a retry was waiting).

        `context` holds `input`, `contact` and `workspace`; `steps` is filled from `finished` and as steps
        complete. `deadline` is a time.monotonic() value derived from `max_duration_seconds`.
        """
        steps = definition["steps"]
        secrets = secret_paths(steps)
        for record in finished:
            for _path, value in record.sealed:
                redactor.add(to_text(value))
        succeeded = (r for r in finished if r.status == StepState.SUCCEEDED)
        context["steps"] = {r.name: r.context or _context_of_stored(r) for r in succeeded}
        failed = next((r for r in finished if r.status == StepState.FAILED and not _continues(steps, r.index)), None)
        if failed is not None:
            return self._skip_rest(steps, len(finished), hooks, failed)
        for index in range(len(finished), len(steps)):
            if hooks.should_stop():
                return Outcome("stopped")
            step = steps[index]
            prior = pending if pending is not None and pending.index == index else None
            record, retry = self._run_step(
                step, index, context, redactor, prior, deadline, secrets.get(step["name"], ()), hooks
            )
            if retry is not None:
                return Outcome("waiting", retry=retry)
            hooks.on_step(record)
            if record.status == StepState.SUCCEEDED:
                context["steps"][record.name] = record.context
            elif not step["continue_on_error"]:
                return self._skip_rest(steps, index + 1, hooks, record)
        return Outcome("finished", status=StepState.SUCCEEDED)

    def _skip_rest(self, steps: Sequence[StepSpec], start: int, hooks: Hooks, failed: StepRecord) -> Outcome:
        for index in range(start, len(steps)):
            hooks.on_step(StepRecord(index=index, name=steps[index]["name"], status=StepState.SKIPPED))
        return Outcome("finished", status=StepState.FAILED, error=f"step {failed.name!r} failed: {failed.error}")

    def _run_step(
        self,
        step: StepSpec,
        index: int,
        context: dict[str, Any],
        redactor: Redactor,
        prior: PendingRetry | None,
        deadline: float | None,
        secret_outputs: Iterable[tuple[Any, ...]] = (),
        hooks: Hooks | None = None,
    ) -> tuple[StepRecord, PendingRetry | None]:
        hooks = hooks or Hooks(on_step=lambda record: None)
        attempts = (prior.attempts if prior else 0) + 1
        paginator = Paginator(step["paginate"]) if step.get("paginate") else None
        pages = PageState.from_json(prior.state if prior else None) or (paginator.start() if paginator else None)
        record = StepRecord(
            index=index,
            name=step["name"],
            status=StepState.FAILED,
            attempts=attempts + (pages.sent_before if pages else 0),
            started_at=prior.started_at if prior and prior.started_at else utcnow(),
        )
        exchange = Exchange(
            self.client,
            step,
            redactor,
            services=step_services(step),
            budget=hooks.budget,
            tokens=hooks.tokens,
            on_request=hooks.on_request,
            run_key=hooks.run_key,
        )
        started = time.monotonic()
        capped = False
        try:
            remaining = _remaining(deadline)
            request, sensitive = self.render_request(step, context, redactor, exchange=exchange)
            request.timeout = min(float(step["timeout_seconds"]), remaining)
            capped = remaining < float(step["timeout_seconds"])
            exchange.add_idempotency_key(request, page=pages.pages + 1 if pages else 1)
            record.request = _stored_request(request, redactor)
            if paginator is None or pages is None:
                response = self._send(exchange, request, sensitive, retry=attempts > 1)
                self._complete(step, record, response, redactor, secret_outputs)
            else:
                last = self._paginate(step, record, exchange, request, sensitive, paginator, pages, attempts, deadline)
                self._complete(step, record, last, redactor, secret_outputs, parsed=Paginator.combined(pages))
        except RateLimitWait as wait:
            # The request in progress was not sent: it does not count as an attempt.
            waiting = record.attempts - (pages.sent_before if pages else 0) - 1
            if deadline is None or time.monotonic() + wait.delay < deadline:
                note = f"waiting {wait.delay:.1f}s for the outbound rate budget"
                return record, PendingRetry(
                    index, waiting, wait.delay, note, record.started_at, self._progress(pages, redactor)
                )
            record.error = "the outbound rate budget leaves no time for this request within max_duration_seconds"
        except StepFailure as failure:
            record.error = redactor.scrub_message(failure.message)
            max_attempts = step["retry"]["max_attempts"]
            # Attempts of the request in progress (of the current page, for a paginated step).
            current = record.attempts - (pages.sent_before if pages else 0)
            if failure.timed_out and capped:
                record.error += "; the execution ran out of time (max_duration_seconds)"
            elif failure.transient and current < max_attempts:
                delay = backoff_delay(current, failure.retry_after)
                if deadline is None or time.monotonic() + delay < deadline:
                    progress = self._progress(pages, redactor)
                    return record, PendingRetry(index, current, delay, record.error, record.started_at, progress)
                record.error += "; no time left for another attempt within max_duration_seconds"
        record.finished_at = utcnow()
        record.duration_ms = int((time.monotonic() - started) * 1000)
        return record, None

    def _paginate(
        self,
        step: StepSpec,
        record: StepRecord,
        exchange: Exchange,
        base: OutboundRequest,
        sensitive: list[str],
        paginator: Paginator,
        pages: PageState,
        attempts: int,
        deadline: float | None,
    ) -> OutboundResponse:
        """Fetches pages until the paginator stops or a page fails, and returns the last response. Each page
        is retried on its own: `attempts` is the first page's attempt number, and `record.attempts` stays the
        finished pages' requests plus the attempts of the page in progress."""
        while True:
            request = paginator.request_for(base, pages)
            request.timeout = min(float(step["timeout_seconds"]), _remaining(deadline))
            response = self._send(exchange, request, sensitive, page=pages.pages + 1, retry=attempts > 1)
            if not 200 <= response.status_code < 300:
                return response  # _complete records the failed page and raises
            body = self._parse_body(step["response_type"], response)
            try:
                more = paginator.absorb(pages, body, response.headers, response.url)
            except PaginationError as error:
                raise StepFailure(f"{error} (page {pages.pages + 1})") from None
            pages.sent_before += attempts
            record.attempts = pages.sent_before
            if not more:
                return response
            attempts = 1
            record.attempts = pages.sent_before + attempts

    def _progress(self, pages: PageState | None, redactor: Redactor) -> dict[str, Any] | None:
        """The pagination progress to keep while the step waits; None (start over) when there is none or it
        is too large to keep."""
        if pages is None or not pages.pages:
            return None
        progress: dict[str, Any] = redactor.scrub(pages.to_json())
        if len(json.dumps(progress, ensure_ascii=False).encode()) > MAX_PAGE_PROGRESS_BYTES:
            return None
        return progress

    def render_request(
        self,
        step: StepSpec,
        context: Mapping[str, Any],
        redactor: Redactor,
        *,
        exchange: Exchange | None = None,
    ) -> tuple[OutboundRequest, list[str]]:
        """The request a step sends, with auth applied and secrets registered. Raises StepFailure (permanent)
        for an unresolved reference, a missing credential or a value that would break out of its place (and,
        for OAuth2 auth, when no token could be had; transient when trying again may help)."""
        where = "url"
        taint = SecretTaint(redactor)  # whatever is rendered from a secret is registered as one
        url_budget = RenderBudget(MAX_RENDERED_URL)  # the URL and its query parameters together
        try:
            url = compile_template(step["url"]).render(context, taint=taint, budget=url_budget)
            where = "query"
            params = {
                name: compile_template(v).render(context, taint=taint, budget=url_budget)
                for name, v in step["query"].items()
            }
            where = "headers"
            headers = {
                name: compile_template(v).render(context, taint=taint, budget=RenderBudget(MAX_RENDERED_HEADER))
                for name, v in step["headers"].items()
            }
            where = "auth"
            sensitive = _apply_auth(step["auth"], context, headers, params, redactor, exchange, taint)
            where = "body"
            body, default_type = _render_body(step, context, taint, RenderBudget(MAX_RENDERED_BODY))
        except RenderTooLarge as error:
            raise StepFailure(
                f"the rendered {where} is larger than {error.limit} characters (the limit); nothing was sent"
            ) from None
        except UnresolvedReference as error:
            raise StepFailure(f"{error} in {where}") from None
        except MissingCredential as error:
            raise StepFailure(f"{error} (referenced in {where})") from None
        except SendFailure as failure:
            raise StepFailure(failure.message, transient=failure.transient) from None
        if default_type and not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = step.get("content_type") or default_type
        for name, value in headers.items():
            if "\r" in value or "\n" in value:
                raise StepFailure(f"header {name!r} contains a line break after rendering; nothing was sent")
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            raise StepFailure("the rendered URL must start with http:// or https://")
        request = OutboundRequest(method=step["method"], url=url, headers=headers, params=params, body=body)
        return request, sensitive

    def _send(
        self, exchange: Exchange, request: OutboundRequest, sensitive: list[str], *, page: int = 1, retry: bool
    ) -> OutboundResponse:
        try:
            return exchange.send(request, sensitive, page=page, retry=retry)
        except SendFailure as failure:
            raise StepFailure(failure.message, transient=failure.transient, timed_out=failure.timed_out) from None

    def _complete(
        self,
        step: StepSpec,
        record: StepRecord,
        response: OutboundResponse,
        redactor: Redactor,
        secret_outputs: Iterable[tuple[Any, ...]] = (),
        *,
        parsed: Any = None,
    ) -> None:
        succeeded = 200 <= response.status_code < 300
        body = parsed if parsed is not None and succeeded else self._parse_body(step["response_type"], response)
        context = {
            **({name: _extract(body, response.headers, path) for name, path in step["extract"].items()}),
            "response": {"status_code": response.status_code, "headers": response.headers, "body": body},
        }
        if succeeded:
            # Values a later step sends as auth are secrets too: register them before anything is stored.
            record.sealed = _values_at(context, secret_outputs)
            for _path, value in record.sealed:
                redactor.add(to_text(value))
        record.response = {
            "status_code": response.status_code,
            "headers": redactor.scrub_headers(dict(response.headers)),
            "body": self._stored_body(body, redactor),
        }
        if not succeeded:
            transient = response.status_code in TRANSIENT_STATUSES
            retry_after = parse_retry_after(response.headers.get("Retry-After")) if transient else None
            raise StepFailure(f"HTTP {response.status_code}", transient=transient, retry_after=retry_after)
        extracted = {name: context[name] for name in step["extract"]}
        record.extracted = _bounded_outputs(redactor.scrub(extracted), self.stored_body_bytes)
        record.status = StepState.SUCCEEDED
        record.context = context

    def _parse_body(self, response_type: str, response: OutboundResponse) -> Any:
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if response_type == "auto":
            if content_type == "application/json" or content_type.endswith("+json"):
                response_type = "json"
            elif not response.content or _is_textual(content_type):
                response_type = "text"
            else:
                response_type = "binary"
        if response_type == ResponseType.BINARY:
            kept = response.content[: self.stored_body_bytes]
            return BinaryBody(
                size=len(response.content),
                sha256=hashlib.sha256(response.content).hexdigest(),
                base64=base64.b64encode(kept).decode("ascii"),
            )
        text = response.content.decode(_charset(response.headers.get("Content-Type", "")), errors="replace")
        if response_type == ResponseType.JSON and text.strip():
            try:
                return json.loads(text)
            except ValueError:
                raise StepFailure(f"the response is not valid JSON (HTTP {response.status_code})") from None
        return text if text or response_type == ResponseType.TEXT else None

    def _stored_body(self, body: Any, redactor: Redactor) -> Any:
        if isinstance(body, BinaryBody):
            # Already bounded: base64 of at most the first stored_body_bytes bytes (docs/api.md §5). The bytes are
            # scrubbed before they are encoded: a secret at any offset would otherwise hide in the base64.
            raw = redactor.scrub(base64.b64decode(body["base64"]))
            return BinaryBody(size=body["size"], sha256=body["sha256"], base64=base64.b64encode(raw).decode("ascii"))
        scrubbed = redactor.scrub(body)
        if isinstance(scrubbed, str):
            return _cut(scrubbed, self.stored_body_bytes)
        if isinstance(scrubbed, dict | list):
            encoded = json.dumps(scrubbed, ensure_ascii=False)
            if len(encoded.encode()) > self.stored_body_bytes:
                return _cut(encoded, self.stored_body_bytes)
        return scrubbed


def render_contact_mapping(
    mapping: Mapping[str, str], context: Mapping[str, Any], redactor: Redactor | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Values for the contact (target -> value) and notes about mappings skipped as unresolved or, with a
    `redactor`, as derived from a secret (a contact row never holds one, not even scrubbed)."""
    values: dict[str, Any] = {}
    notes: list[str] = []
    taint = refusing_taint(redactor) if redactor is not None else None
    for target, source in mapping.items():
        try:
            values[target] = compile_template(source).render_value(context, taint=taint)
        except (UnresolvedReference, MissingCredential) as error:
            notes.append(f"contact_mapping {target!r} skipped: {error}")
        except SecretDerived as error:
            notes.append(f"contact_mapping {target!r} skipped: {error}; contacts never store secrets")
    return values, notes


def _continues(steps: Sequence[StepSpec], index: int) -> bool:
    return bool(steps[index]["continue_on_error"])


def _remaining(deadline: float | None) -> float:
    if deadline is None:
        return float("inf")
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise StepFailure("the execution ran out of time (max_duration_seconds)")
    return remaining


def _apply_auth(
    auth: Mapping[str, Any],
    context: Mapping[str, Any],
    headers: dict[str, str],
    params: dict[str, str],
    redactor: Redactor,
    exchange: Exchange | None = None,
    taint: Taint | None = None,
) -> list[str]:
    """Places the auth of a step and registers its values as secrets. Returns extra sensitive header names."""
    kind = auth["type"]
    if kind == AuthType.OAUTH2:
        if exchange is None:
            raise SendFailure("OAuth2 steps need a token source; none is configured here", transient=False)
        headers["Authorization"] = exchange.bearer(auth["credential"])
        return []

    def render(key: str) -> str:
        return compile_template(auth[key]).render(context, taint=taint, budget=RenderBudget(MAX_RENDERED_HEADER))

    def secret(key: str) -> str:
        value = render(key)
        redactor.add(value)
        return value

    if kind == AuthType.BEARER:
        headers["Authorization"] = f"Bearer {secret('token')}"
    elif kind == AuthType.BASIC:
        username = render("username")
        password = render("password")
        redactor.add_basic(username, password)
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
    elif kind == AuthType.API_KEY:
        value = secret("value")
        if auth["in"] == "header":
            headers[auth["name"]] = value
            redactor.add_header_name(auth["name"])
            return [auth["name"]]
        params[auth["name"]] = value
        redactor.add_query_param(auth["name"])
    return []


def _render_body(
    step: StepSpec, context: Mapping[str, Any], taint: Taint | None = None, budget: RenderBudget | None = None
) -> tuple[bytes | None, str | None]:
    body_type, body = step["body_type"], step["body"]
    if body_type == BodyType.NONE:
        return None, None
    if body_type == BodyType.JSON:
        rendered = render_json(body, context, taint=taint, budget=budget)
        encoded = json.dumps(rendered, ensure_ascii=False, separators=(",", ":")).encode()
        return encoded, BODY_CONTENT_TYPES[BodyType.JSON]
    if body_type == BodyType.FORM:
        fields = {
            name: compile_template(value).render(context, taint=taint, budget=budget) for name, value in body.items()
        }
        return urlencode(fields).encode(), BODY_CONTENT_TYPES[BodyType.FORM]
    if body_type == BodyType.XML:
        xml = compile_template(body).render(context, escape=_xml_escape, taint=taint, budget=budget)
        return xml.encode(), BODY_CONTENT_TYPES[BodyType.XML]
    return compile_template(body).render(context, taint=taint, budget=budget).encode(), BODY_CONTENT_TYPES[BodyType.RAW]


def _xml_escape(text: str) -> str:
    """Escapes for element text and for attribute values in either quote style."""
    return xml_escape(text, _XML_QUOTES)


def _stored_request(request: OutboundRequest, redactor: Redactor) -> dict[str, Any]:
    parts = urlsplit(request.url)
    query = "&".join(q for q in (parts.query, urlencode(request.params)) if q)
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    stored: dict[str, Any] = {
        "method": request.method,
        "url": redactor.scrub_url(url),
        "headers": redactor.scrub_headers(request.headers),
    }
    if request.body is not None:
        stored["body"] = _cut(redactor.scrub_text(request.body.decode("utf-8", errors="replace")), 64 * 1024)
    return stored


def _extract(body: Any, headers: CaseInsensitiveDict[str], path: str) -> Any:
    """An output from the parsed body; a path starting with `headers.` reads the response headers when the
    body itself has no `headers` key."""
    if path.startswith("headers.") and not (isinstance(body, dict) and "headers" in body):
        return extract({"headers": headers}, path)
    return extract(body, path)


def secret_paths(steps: Sequence[StepSpec]) -> dict[str, list[tuple[Any, ...]]]:
    """Step name -> paths into that step's results that a later step's auth reads.

    `{"type": "bearer", "token": "{{steps.login.token}}"}` makes `("token",)` of step `login` a secret: it is
    redacted wherever it is stored, and kept (encrypted, by the caller) for a resumed execution.
    """
    found: dict[str, list[tuple[Any, ...]]] = {}
    for step in steps:
        for key, source in step["auth"].items():
            if key in ("type", "in", "name", "credential"):
                continue
            for reference in compile_template(source).references:
                if reference.namespace == "steps" and len(reference.path) > 1:
                    found.setdefault(reference.path[0], []).append(tuple(reference.path[1:]))  # type: ignore[arg-type]
    return found


def _values_at(context: Mapping[str, Any], paths: Iterable[tuple[Any, ...]]) -> list[Any]:
    values = []
    for path in paths:
        try:
            value = resolve(context, path)
        except PathNotFound:
            continue
        if value is not None:
            values.append([list(path), value])
    return values


def _context_of_stored(record: StepRecord) -> dict[str, Any]:
    """Rebuilds what later steps may read from a checkpoint (after a restart the stored, scrubbed copy is
    all there is), with the sealed auth values put back in their places."""
    response = record.response or {}
    context = {
        **record.extracted,
        "response": {
            "status_code": response.get("status_code"),
            "headers": CaseInsensitiveDict(response.get("headers") or {}),
            "body": response.get("body"),
        },
    }
    for path, value in record.sealed:
        _put(context, path, value)
    return context


def _put(target: Any, path: list[Any], value: Any) -> None:
    """Sets `value` at a path of mapping keys, creating mappings on the way; other shapes are left alone
    (the reference then fails to resolve, loudly, instead of sending a redacted value)."""
    for segment in path[:-1]:
        if not isinstance(target, MutableMapping) or not isinstance(segment, str):
            return
        target = target.setdefault(segment, {})
    if isinstance(target, MutableMapping) and isinstance(path[-1], str):
        target[path[-1]] = value


def _is_textual(content_type: str) -> bool:
    return (
        content_type.startswith("text/")
        or content_type.endswith(("+xml", "/xml"))
        or content_type in ("application/x-www-form-urlencoded", "application/javascript")
    )


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            charset = value.strip('"').lower()
            try:
                "".encode(charset)
            except LookupError:
                return "utf-8"
            return charset
    return "utf-8"


def _bounded_outputs(extracted: dict[str, Any], limit: int) -> dict[str, Any]:
    """The stored copy of a step's outputs: at most about `limit` bytes of JSON in all (later steps of the same
    run still read the whole values). The smallest outputs are kept whole first; one that does not fit in what
    is left becomes the start of its JSON text, cut to the remaining budget (an empty string once it is spent).
    """
    encoded = {name: json.dumps(value, ensure_ascii=False) for name, value in extracted.items()}
    kept, used = {}, 0
    for name in sorted(encoded, key=lambda n: len(encoded[n].encode())):
        size = len(encoded[name].encode())
        if used + size <= limit:
            kept[name] = extracted[name]
        else:
            kept[name] = _cut_to_json_size(encoded[name], max(limit - used, 0))
            size = _json_size(kept[name])
        used += size
    return {name: kept[name] for name in extracted}


def _json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode())


def _cut_to_json_size(text: str, budget: int) -> str:
    """The start of `text`, as long as it can be while its JSON encoding (quotes, escapes) fits `budget`."""
    value = _cut(text, budget)
    while value and _json_size(value) > budget:
        value = _cut(value, len(value.encode()) - (_json_size(value) - budget))
    return value


def _cut(text: str, limit: int) -> str:
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")
