"""Reading responses of outbound HTTP: the body within its size limit and deadline, and redirects (where
to, and draining the body of one so its connection can be reused). Pure Python, no Django."""

from __future__ import annotations

import time

import urllib3

from connectors.engine.http_errors import HttpError, RequestTimeout, ResponseTooLarge, safe_url, translate

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_SIZE = 64 * 1024
REDIRECT_BODY_DRAIN_BYTES = 64 * 1024


def read_body(response: urllib3.BaseHTTPResponse, url: str, deadline: float, limit: int) -> bytes:
    """The whole body, read in chunks: refused past `limit` bytes (announced or read) or past the deadline;
    the response is closed either way."""
    try:
        declared = int(response.headers.get("Content-Length", ""))
    except ValueError:
        declared = None
    consumed = False
    try:
        if declared is not None and declared > limit:
            raise ResponseTooLarge(
                f"the response from {safe_url(url)} announces {declared} bytes, over the {limit}-byte limit"
            )
        chunks: list[bytes] = []
        size = 0
        for chunk in response.stream(CHUNK_SIZE, decode_content=True):
            size += len(chunk)
            if size > limit:
                raise ResponseTooLarge(f"the response from {safe_url(url)} is larger than the {limit}-byte limit")
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise RequestTimeout(f"timed out reading the response from {safe_url(url)}")
        consumed = True
        return b"".join(chunks)
    except HttpError:
        raise
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise translate(exc, url) from None
    finally:
        # A body read to its end leaves the connection reusable; any other is closed, never pooled half-read.
        if not consumed:
            response.close()
        response.release_conn()


def redirect_target(response: urllib3.BaseHTTPResponse) -> str | None:
    if response.status not in REDIRECT_STATUSES or "Location" not in response.headers:
        return None
    raw = response.headers["Location"]
    # As in requests: servers send UTF-8 that http.client decoded as Latin-1.
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return raw


def discard_body(response: urllib3.BaseHTTPResponse) -> None:
    """Read a small redirect body so the connection returns to the pool; close it on anything larger."""
    try:
        read = 0
        for chunk in response.stream(CHUNK_SIZE, decode_content=False):
            read += len(chunk)
            if read > REDIRECT_BODY_DRAIN_BYTES:
                response.close()
                break
    except (urllib3.exceptions.HTTPError, OSError):
        response.close()  # the redirect is still followed, on a new connection
    response.release_conn()
