"""Runs the steps of a connector definition: render, send, parse, extract, report.

Pure engine code: no database, no Celery. The caller (executions.runtime) owns persistence; it hands the
runner a context and hooks, and gets back step records to checkpoint and a verdict. One call to
`Runner.advance` runs steps until the execution finishes, must wait before a retry (the caller reschedules it
instead of sleeping in a worker), or is told to stop.

The parts: `records` (what is reported), `rendering` (step -> request), `auth` (auth and the secrets it
makes), `parsing` (response -> body, outputs, stored copies); this module runs the steps in order, with
retries, pagination and the deadline. Their public names are importable from here.

Secrets: every value read from the `workspace` namespace and every auth value is registered with the
execution's Redactor before it is placed into a request, and everything a record holds is scrubbed.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC
from typing import Any

from connectors.engine.auth import context_of_stored, secret_paths, values_at
from connectors.engine.exchange import Exchange, RateLimitWait, SendFailure, step_services
from connectors.engine.http import OutboundRequest, OutboundResponse, SafeHttpClient
from connectors.engine.pagination import PageState, PaginationError, Paginator
from connectors.engine.parsing import bounded_outputs, extract_output, parse_body, stored_body, stored_request
from connectors.engine.records import BinaryBody, Hooks, Outcome, PendingRetry, StepFailure, StepRecord, utcnow
from connectors.engine.redaction import Redactor
from connectors.engine.rendering import render_contact_mapping, render_request
from connectors.engine.spec import DefinitionSpec, StepSpec, StepState
from connectors.engine.templating import to_text

__all__ = [
    "BinaryBody",
    "Hooks",
    "Outcome",
    "PendingRetry",
    "Runner",
    "StepFailure",
    "StepRecord",
    "backoff_delay",
    "parse_retry_after",
    "render_contact_mapping",
    "secret_paths",
]

TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_BACKOFF_SECONDS = 60.0
MAX_RETRY_AFTER_SECONDS = 300.0
DEFAULT_STORED_BODY_BYTES = 64 * 1024
MAX_PAGE_PROGRESS_BYTES = 256 * 1024


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
        context["steps"] = {r.name: r.context or context_of_stored(r) for r in succeeded}
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
            record.request = stored_request(request, redactor)
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
        """The request a step sends (see `rendering.render_request`)."""
        return render_request(step, context, redactor, exchange=exchange)

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
            **({name: extract_output(body, response.headers, path) for name, path in step["extract"].items()}),
            "response": {"status_code": response.status_code, "headers": response.headers, "body": body},
        }
        if succeeded:
            # Values a later step sends as auth are secrets too: register them before anything is stored.
            record.sealed = values_at(context, secret_outputs)
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
        record.extracted = bounded_outputs(redactor.scrub(extracted), self.stored_body_bytes)
        record.status = StepState.SUCCEEDED
        record.context = context

    def _parse_body(self, response_type: str, response: OutboundResponse) -> Any:
        return parse_body(response_type, response, self.stored_body_bytes)

    def _stored_body(self, body: Any, redactor: Redactor) -> Any:
        return stored_body(body, redactor, self.stored_body_bytes)


def _continues(steps: Sequence[StepSpec], index: int) -> bool:
    return bool(steps[index]["continue_on_error"])


def _remaining(deadline: float | None) -> float:
    if deadline is None:
        return float("inf")
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise StepFailure("the execution ran out of time (max_duration_seconds)")
    return remaining
