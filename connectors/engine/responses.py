"""Reading responses of outbound HTTP: the body, decoded, within its size limit and deadline; redirects (where
to, and draining the body of one so its connection can be reused); the headers as one dictionary. Pure
Python, no Django."""

from __future__ import annotations

import http.client
import time
import zlib
from collections.abc import Iterator

from requests.structures import CaseInsensitiveDict

from connectors.engine.http_errors import HttpError, RequestTimeout, ResponseTooLarge, safe_url, translate
from connectors.engine.transport import Reply

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_SIZE = 64 * 1024
REDIRECT_BODY_DRAIN_BYTES = 64 * 1024
# What the client asks for (Accept-Encoding) and so decodes; a body in any other coding is kept as it came.
ACCEPTED_ENCODINGS = "gzip, deflate"
GZIP_WBITS = 16 + zlib.MAX_WBITS


class UndecodableBody(Exception):
    """The body does not decode as its Content-Encoding says."""


def read_body(reply: Reply, url: str, deadline: float, limit: int) -> bytes:
    """The whole body, decoded, read in chunks: refused past `limit` bytes (announced, or decoded) or past the
    deadline. The connection is pooled when the body was read to its end, closed otherwise."""
    response = reply.response
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
        decoder = _Decoder.for_coding(response.headers.get("Content-Encoding", ""))
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read(CHUNK_SIZE):
            for piece in decoder.decode(chunk, limit - size + 1):
                size += len(piece)
                if size > limit:
                    raise ResponseTooLarge(f"the response from {safe_url(url)} is larger than the {limit}-byte limit")
                chunks.append(piece)
            if time.monotonic() > deadline:
                raise RequestTimeout(f"timed out reading the response from {safe_url(url)}")
        if response.length:  # http.client reads a body cut short of its Content-Length as its end
            raise http.client.IncompleteRead(b"", response.length)
        chunks.append(decoder.finish())
        if size + len(chunks[-1]) > limit:
            raise ResponseTooLarge(f"the response from {safe_url(url)} is larger than the {limit}-byte limit")
        consumed = True
        return b"".join(chunks)
    except HttpError:
        raise
    except UndecodableBody:
        raise HttpError(f"the response body from {safe_url(url)} could not be decoded", transient=False) from None
    except (http.client.HTTPException, ValueError, OSError) as exc:  # ValueError: a chunk size that is no number
        raise translate(exc, url) from None
    finally:
        # A body read to its end leaves the connection reusable; any other is closed, never pooled half-read.
        reply.done(reusable=consumed)


def redirect_target(reply: Reply) -> str | None:
    response = reply.response
    if response.status not in REDIRECT_STATUSES or "Location" not in response.headers:
        return None
    raw = response.headers["Location"]
    # As in requests: servers send UTF-8 that http.client decoded as Latin-1.
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return raw


def discard_body(reply: Reply) -> None:
    """Read a small redirect body so the connection returns to the pool; close it on anything larger."""
    read_to_end = False
    try:
        read = 0
        while chunk := reply.response.read(CHUNK_SIZE):
            read += len(chunk)
            if read > REDIRECT_BODY_DRAIN_BYTES:
                break
        else:
            read_to_end = not reply.response.length
    except (http.client.HTTPException, ValueError, OSError):
        pass  # the redirect is still followed, on a new connection
    reply.done(reusable=read_to_end)


def headers_of(reply: Reply) -> CaseInsensitiveDict[str]:
    """The response's headers, a header sent more than once joined with ", " (as urllib3 and requests do)."""
    headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
    for name, value in reply.response.headers.items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


class _Decoder:
    """Content-Encoding gzip or deflate (zlib-wrapped, or raw as some servers send it) decoded with a bound
    on what one chunk may expand to, so a small compressed body cannot fill memory before the limit is
    checked; any other coding passes through."""

    def __init__(self, wbits: int | None) -> None:
        self._wbits = wbits
        self._zlib = zlib.decompressobj(wbits) if wbits is not None else None
        self._first = True

    @classmethod
    def for_coding(cls, coding: str) -> _Decoder:
        coding = coding.strip().lower()
        if coding in ("gzip", "x-gzip"):
            return cls(GZIP_WBITS)
        if coding == "deflate":
            return cls(zlib.MAX_WBITS)
        return cls(None)

    def decode(self, data: bytes, most: int) -> Iterator[bytes]:
        """``data`` decoded, in pieces of at most ``most`` bytes, made one at a time: the caller stops once past
        its limit, before the rest is expanded."""
        if self._zlib is None:
            yield data
            return
        while data:
            yield self._step(data, most)
            if self._zlib.unconsumed_tail:
                data = self._zlib.unconsumed_tail
            elif self._zlib.eof and self._zlib.unused_data and self._wbits == GZIP_WBITS:
                # Another gzip member follows (concatenated gzip files are one valid body).
                data, self._zlib = self._zlib.unused_data, zlib.decompressobj(GZIP_WBITS)
            else:
                data = b""

    def finish(self) -> bytes:
        if self._zlib is None:
            return b""
        try:
            return self._zlib.flush()
        except zlib.error:
            raise UndecodableBody from None

    def _step(self, data: bytes, most: int) -> bytes:
        assert self._zlib is not None
        try:
            return self._zlib.decompress(data, most)
        except zlib.error:
            if not (self._first and self._wbits == zlib.MAX_WBITS):
                raise UndecodableBody from None
            # "deflate" without the zlib wrapper: start again as raw deflate.
            self._wbits = -zlib.MAX_WBITS
            self._zlib = zlib.decompressobj(self._wbits)
            return self._step(data, most)
        finally:
            self._first = False
