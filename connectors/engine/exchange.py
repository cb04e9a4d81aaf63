"""Sending the requests of one step: every attempt and every page passes through `Exchange.send`.

In order, for each request: the outbound rate budget of the credentials the step uses (a short wait here, a
long one hands the execution back to the queue), the `Idempotency-Key` of POST and PATCH requests, the send
itself (SSRF-safe client), one report to `on_request` (the single place that counts requests: per-step
statistics and usage), and for OAuth2 steps one new token and one more request after a 401.

The budget and the token source are interfaces, implemented outside the engine (executions/ratelimit.py,
credentials/oauth.py); without them the step sends as it always did.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from connectors.engine.http import HttpError, OutboundRequest, OutboundResponse, RequestTimeout, SafeHttpClient
from connectors.engine.oauth import TokenError, TokenSource
from connectors.engine.redaction import Redactor
from connectors.engine.templating import compile_template, iter_templates

# The methods whose requests get an Idempotency-Key: the ones not idempotent by themselves.
KEYED_METHODS = frozenset({"POST", "PATCH"})
# Idempotency keys are UUIDs derived from the execution, step and page (uuid5 in this namespace).
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1d2c4e-9a57-4f0b-8a3e-5b7c1d2e3f40")


class RateBudget(Protocol):
    def reserve(self, services: Collection[str]) -> float | None:
        """Reserves a start time for one request of a step using these credentials. Returns the seconds to
        wait before sending (0 for now), or None when none of them has a `rate_limit`. When the wait would be
        longer than the budget's patience nothing is reserved and `RateLimitWait` is raised."""
        ...


class RateLimitWait(Exception):
    """The request's turn is more than the budget's patience away: give the worker back for `delay` s."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"waiting {delay:.1f}s for the outbound rate budget")
        self.delay = delay


@dataclass(frozen=True)
class RequestEvent:
    """One request sent by a step (every attempt and page): for statistics and usage counting."""

    step: str
    status_code: int | None
    elapsed_ms: int
    retry: bool


class SendFailure(Exception):
    """The request could not be made or answered (HttpError) or no token could be had (TokenError)."""

    def __init__(self, message: str, *, transient: bool, timed_out: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.timed_out = timed_out  # the request ran out of its deadline (RequestTimeout)


def idempotency_key(run_key: str | None, step: str, page: int) -> str:
    """The same for every retry and requeue of a step (and page) in one execution, different between
    executions. Without a run key (a one-off test run) a fresh random key."""
    if run_key is None:
        return str(uuid.uuid4())
    name = f"{run_key}/{step}" if page <= 1 else f"{run_key}/{step}/{page}"
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, name))


class Exchange:
    """The requests of one step attempt."""

    def __init__(
        self,
        client: SafeHttpClient,
        step: Mapping[str, Any],
        redactor: Redactor,
        *,
        services: Collection[str] = (),
        budget: RateBudget | None = None,
        tokens: TokenSource | None = None,
        on_request: Callable[[RequestEvent], None] | None = None,
        run_key: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.step = step
        self.redactor = redactor
        self.services = services
        self.budget = budget
        self.tokens = tokens
        self.on_request = on_request
        self.run_key = run_key
        self.sleep = sleep
        self.requests_sent = 0
        # After a 401 and a new token, later requests of this attempt (the next pages) use the new one.
        self._renewed_authorization: str | None = None

    def send(
        self, request: OutboundRequest, sensitive: list[str], *, page: int = 1, retry: bool = False
    ) -> OutboundResponse:
        """Sends `request` (and a copy with a new token after a 401 of an OAuth2 step). `retry` says that an
        earlier attempt of this request failed. Raises RateLimitWait or SendFailure."""
        self.add_idempotency_key(request, page)
        if self._renewed_authorization is not None:
            request.headers["Authorization"] = self._renewed_authorization
        response = self._send_once(request, sensitive, retry)
        auth = self.step["auth"]
        if response.status_code == 401 and auth["type"] == "oauth2" and self.tokens is not None:
            rejected = request.headers["Authorization"].removeprefix("Bearer ")
            self._renewed_authorization = f"Bearer {self._token(auth['credential'], rejected=rejected)}"
            retried = OutboundRequest(
                method=request.method,
                url=request.url,
                headers={**request.headers, "Authorization": self._renewed_authorization},
                params=dict(request.params),
                body=request.body,
                timeout=request.timeout,
            )
            response = self._send_once(retried, sensitive, True)
        return response

    def bearer(self, service: str) -> str:
        """The Authorization value of an OAuth2 step (the token is registered as a secret)."""
        return f"Bearer {self._token(service)}"

    def _token(self, service: str, *, rejected: str | None = None) -> str:
        if self.tokens is None:
            raise SendFailure("OAuth2 steps need a token source; none is configured here", transient=False)
        try:
            token = self.tokens.access_token(service, rejected=rejected)
        except TokenError as error:
            raise SendFailure(f"OAuth2 credential {service!r}: {error.message}", transient=error.transient) from None
        self.redactor.add(token)
        return token

    def add_idempotency_key(self, request: OutboundRequest, page: int) -> None:
        """Sets the page's key on a POST or PATCH request, unless the step sets the header itself or turned
        keys off (`"idempotency_key": false`)."""
        if request.method.upper() not in KEYED_METHODS or self.step.get("idempotency_key") is False:
            return
        if any(name.lower() == "idempotency-key" for name in self.step["headers"]):
            return  # the step sets it itself
        request.headers["Idempotency-Key"] = idempotency_key(self.run_key, self.step["name"], page)

    def _send_once(self, request: OutboundRequest, sensitive: list[str], retry: bool) -> OutboundResponse:
        if self.budget is not None and self.services:
            wait = self.budget.reserve(self.services)
            if wait:
                self.sleep(wait)
        started = time.monotonic()
        status: int | None = None
        try:
            # Headers, query parameters and bodies carrying anything derived from a secret never follow a
            # cross-origin redirect.
            response = self.client.send(request, sensitive_headers=sensitive, is_secret=self.redactor.contains_secret)
            status = response.status_code
            return response
        except HttpError as error:
            timed_out = isinstance(error, RequestTimeout)
            raise SendFailure(error.message, transient=error.transient, timed_out=timed_out) from None
        finally:
            self.requests_sent += 1
            if self.on_request is not None:
                elapsed = int((time.monotonic() - started) * 1000)
                self.on_request(RequestEvent(self.step["name"], status, elapsed, retry))


def step_services(step: Mapping[str, Any]) -> list[str]:
    """The credentials a step uses: its OAuth2 credential and every `workspace.SERVICE` any template reads."""
    auth = step["auth"]
    found = {auth["credential"]} if auth.get("type") == "oauth2" else set()
    sources = [step["url"], *step["headers"].values(), *step["query"].values()]
    sources += [value for key, value in auth.items() if key not in ("type", "in", "name", "credential")]
    if step["body_type"] != "none":
        sources += [source for _location, source in iter_templates(step["body"])]
    for source in sources:
        for reference in compile_template(source).references:
            if reference.namespace == "workspace" and reference.path:
                found.add(str(reference.path[0]))
    return sorted(found)
