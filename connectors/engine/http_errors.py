"""Errors of outbound HTTP, and the secret-free way they name URLs.

Messages never contain header values or the query string (both may carry secrets); URLs appear as
``scheme://host:port/path`` only (``safe_url``). ``translate`` maps whatever requests, urllib3 or a socket
raised to one of these errors. URLs are parsed with urllib3's parser (``parse``): the one that picks the host
when connecting. Pure Python, no Django.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator

import requests
import urllib3
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import Url, parse_url

DEFAULT_PORTS = {"http": 80, "https": 443}


class HttpError(Exception):
    """An outbound request failed. ``transient`` tells the runner whether trying again can help.

    Messages never contain header values or the query string (both may carry secrets); URLs appear as
    ``scheme://host:port/path`` only.
    """

    transient: bool = False

    def __init__(self, message: str, *, transient: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if transient is not None:
            self.transient = transient

    def __str__(self) -> str:
        return self.message


class BlockedDestination(HttpError):
    """The destination address is refused by the address policy. Nothing was sent."""


class InvalidRequest(HttpError):
    """The request cannot be sent as given (bad URL, scheme, method, header or timeout). Nothing was sent."""


class TooManyRedirects(HttpError):
    """The server redirected more often than the client allows."""


class ResponseTooLarge(HttpError):
    """The response body is larger than the client's limit; reading stopped at the limit."""


class ConnectionFailed(HttpError):
    """The connection could not be made or broke. Transient, except for TLS certificate failures."""

    transient = True


class RequestTimeout(HttpError):
    """Connecting or waiting for the response took longer than the request's timeout."""

    transient = True


class ConnectTimeout(TimeoutError):
    """Raised by the transport: connecting (TCP, or the TLS handshake) outlasted the request's deadline."""


def parse(url: str) -> Url:
    """Parse ``url`` exactly as requests and urllib3 will when they connect (never with urllib.parse).

    urllib.parse and urllib3 disagree on URLs such as ``http://a.test\\@b.test/``; deciding origins or
    schemes with a different parser than the one that picks the host would open a gap.
    """
    return parse_url(url)


def safe_url(url: str) -> str:
    """``scheme://host:port/path`` of ``url``: no user info, query or fragment, which may carry secrets."""
    try:
        parts = parse(url)
    except ValueError:
        return "<malformed URL>"
    scheme = (parts.scheme or "").lower()
    port = parts.port or DEFAULT_PORTS.get(scheme)
    return f"{scheme}://{parts.host or ''}{f':{port}' if port else ''}{parts.path or '/'}"


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps: causes, contexts, exceptions in args, MaxRetryError.reason."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend((current.__cause__, current.__context__))
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)


def translate(exc: BaseException, url: str) -> HttpError:
    """Map a requests/urllib3/socket error to an HttpError whose message is free of secrets."""
    chain = list(exception_chain(exc))
    target = safe_url(url)
    for e in chain:
        if isinstance(e, HttpError):
            return e
    # urllib3's NewConnectionError subclasses ConnectTimeoutError for historical reasons: it is not a timeout.
    timeouts = [
        e
        for e in chain
        if isinstance(e, requests.exceptions.Timeout | urllib3.exceptions.TimeoutError | TimeoutError)
        and not isinstance(e, NewConnectionError)
    ]
    if any(isinstance(e, requests.exceptions.ConnectTimeout | ConnectTimeoutError | ConnectTimeout) for e in timeouts):
        return RequestTimeout(f"timed out connecting to {target}")
    if timeouts:
        return RequestTimeout(f"timed out waiting for the response from {target}")
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            detail = f": {e.verify_message}" if e.verify_message else ""
            return ConnectionFailed(f"TLS certificate verification failed for {target}{detail}", transient=False)
    if any(
        isinstance(
            e,
            requests.exceptions.InvalidURL
            | requests.exceptions.InvalidSchema
            | requests.exceptions.MissingSchema
            | requests.exceptions.InvalidHeader
            | urllib3.exceptions.LocationValueError
            | http.client.InvalidURL
            | UnicodeError,
        )
        for e in chain
    ):
        return InvalidRequest(f"the request to {target} is invalid (URL or header)")
    if any(isinstance(e, requests.exceptions.ContentDecodingError | urllib3.exceptions.DecodeError) for e in chain):
        return HttpError(f"the response body from {target} could not be decoded", transient=False)
    if any(isinstance(e, NameResolutionError | socket.gaierror) for e in chain):
        return ConnectionFailed(f"could not resolve the host of {target}")
    if any(isinstance(e, ssl.SSLError | requests.exceptions.SSLError) for e in chain):
        return ConnectionFailed(f"the TLS handshake with {target} failed")
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return ConnectionFailed(f"connection to {target} refused")
        if isinstance(e, ConnectionResetError):
            return ConnectionFailed(f"connection to {target} reset by the server")
    broken = urllib3.exceptions.ProtocolError | requests.exceptions.ChunkedEncodingError | http.client.HTTPException
    if any(isinstance(e, broken) for e in chain):
        return ConnectionFailed(f"the connection to {target} broke before the response was complete")
    for e in chain:
        if isinstance(e, OSError) and e.strerror:
            return ConnectionFailed(f"connection to {target} failed: {e.strerror.lower()}")
    return ConnectionFailed(f"connection to {target} failed ({type(exc).__name__})")
