"""Scrubbing secrets out of everything stored or logged about an execution.

A :class:`Redactor` is built per execution: the runner registers every credential value, auth value and
whatever was rendered from them (:meth:`Redactor.add`, :meth:`Redactor.add_basic`), plus header and
query-parameter names that carry secrets, and passes every request, response, error message and output through
it before storing them. Each secret is registered with the forms it takes on the way out (base64,
URL-encoding, JSON/Python/XML escaping), and every occurrence of any form is replaced by ``[REDACTED]``.

Overlapping occurrences are merged: the whole union of all matches is replaced, so two overlapping secrets
never leave a piece of either behind (``abcd`` and ``cdef`` in ``abcdef`` give ``[REDACTED]``, not
``[REDACTED]ef``).

Trade-offs:

* Secrets shorter than 4 characters are still registered, because leaking one is worse than over-redacting;
  such a secret (and its short derived forms) will also replace unrelated text that happens to contain it.
* The marker itself is text: a secret that is a piece of ``[REDACTED]`` (say ``ACT``) still "appears" in the
  output, inside the markers. That reveals nothing beyond the marker.
* A dict whose keys become equal once scrubbed keeps the last value.

The forms a secret takes and the pattern matching them are built in :mod:`connectors.engine.secret_forms`.

Logs: :func:`redaction_scope` binds redactors to the current context (a ContextVar, so it follows ``asyncio``
tasks; threads must run in a copied context), and :class:`RedactingLogFilter`, installed on the root handlers,
scrubs every record emitted inside a scope. Outside any scope it passes records through untouched.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import threading
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit, urlunsplit

from connectors.engine.secret_forms import compile_forms, derived_forms, percent_decoded

REDACTED = "[REDACTED]"

# Headers whose value is a credential whatever it holds. Names are compared lower-cased with '_' read as '-'.
SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "apikey",
        "x-auth-token",
        "x-access-token",
        "x-amz-security-token",
        "x-goog-api-key",
    }
)

# Query (and fragment) parameters whose value is a credential whatever it holds. Names are compared
# lower-cased with '-' read as '_'. ``key`` is here because many APIs (Google's among them) take their API key
# that way.
SENSITIVE_QUERY_PARAMS = frozenset(
    {
        "api_key",
        "apikey",
        "access_key",
        "accesskey",
        "key",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "auth_token",
        "client_secret",
        "secret",
        "password",
        "passwd",
        "signature",
        "x_amz_signature",
        "x_amz_credential",
        "x_amz_security_token",
    }
)


def _header_key(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _param_key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


class Redactor:
    """Registered secrets and sensitive names, and the scrubbing of text, structures, headers and URLs.

    Safe to share between threads: registration and the lazy (re)compilation of the pattern hold a lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._forms: set[str] = set()
        self._header_names: set[str] = set(SENSITIVE_HEADERS)
        self._query_params: set[str] = set(SENSITIVE_QUERY_PARAMS)
        self._pattern: re.Pattern[str] | None = None

    def __repr__(self) -> str:
        return f"<Redactor secrets={self.secret_count}>"

    @property
    def secret_count(self) -> int:
        """How many distinct secret values are registered (derived forms are not counted)."""
        return len(self._secrets)

    def add(self, secret: str) -> None:
        """Register a secret value and its derived forms. Empty strings are ignored; short ones are not."""
        if not isinstance(secret, str):
            raise TypeError(f"secrets must be strings, not {type(secret).__name__}")
        if not secret:
            return
        self._add_forms(secret, derived_forms(secret))

    def add_basic(self, username: str, password: str) -> None:
        """Register HTTP Basic credentials: the password, ``username:password`` and its base64 (the header).

        The username alone is not a secret. With an empty password only the base64 of ``username:`` is
        registered, since the bare ``username:`` would redact ordinary text.
        """
        self.add(password)
        pair = f"{username}:{password}"
        if password:
            self.add(pair)
            return
        encoded = base64.b64encode(pair.encode("utf-8")).decode("ascii")
        self._add_forms(pair, {encoded, encoded.rstrip("=")})

    def _add_forms(self, secret: str, forms: set[str]) -> None:
        with self._lock:
            self._secrets.add(secret)
            if not forms <= self._forms:
                self._forms |= forms
                self._pattern = None

    def add_header_name(self, name: str) -> None:
        """Mark a header (e.g. the header of an ``api_key`` auth) whose value is always redacted."""
        with self._lock:
            self._header_names.add(_header_key(name))

    def add_query_param(self, name: str) -> None:
        """Mark a query parameter whose value is always redacted in URLs."""
        with self._lock:
            self._query_params.add(_param_key(name))

    def _compiled(self) -> re.Pattern[str] | None:
        pattern = self._pattern
        if pattern is None and self._forms:
            with self._lock:
                if self._pattern is None:
                    self._pattern = compile_forms(self._forms)
                pattern = self._pattern
        return pattern

    def scrub_text(self, text: str) -> str:
        """``text`` with every occurrence of every registered form replaced by :data:`REDACTED`.

        Overlapping or touching occurrences become one marker covering all of them.
        """
        if not isinstance(text, str):
            raise TypeError(f"scrub_text takes a string, not {type(text).__name__}")
        pattern = self._compiled()
        if pattern is None or not text:
            return text
        pieces: list[str] = []
        kept_from = 0
        position = 0
        while (match := pattern.search(text, position)) is not None:
            start, end = match.span()
            # The match is the longest starting at `start`; a match starting inside it may reach further.
            inner = start + 1
            while inner < end:
                overlapping = pattern.match(text, inner)
                if overlapping is not None and overlapping.end() > end:
                    end = overlapping.end()
                inner += 1
            if start > kept_from or not pieces:
                pieces.append(text[kept_from:start])
                pieces.append(REDACTED)
            # else: it touches the previous occurrence, whose marker already covers it.
            kept_from = position = end
        if not pieces:
            return text
        pieces.append(text[kept_from:])
        return "".join(pieces)

    def contains_secret(self, text: str) -> bool:
        """Whether ``text`` holds any registered form of any secret."""
        pattern = self._compiled()
        return pattern is not None and pattern.search(text) is not None

    def scrub_message(self, text: str) -> str:
        """Scrub text that may have gone through a layer that re-encodes it (an error message quoting a URL a
        library percent-encoded its own way, a log line): :meth:`scrub_text`, then every secret found once the
        percent-escapes are decoded is redacted in place, whatever escapes spelled it."""
        text = self.scrub_text(text)
        pattern = self._compiled()
        if pattern is None or "%" not in text or not pattern.search(unquote(text, errors="surrogateescape")):
            return text
        decoded, spans = percent_decoded(text)
        matches = [match.span() for match in pattern.finditer(decoded)]
        if not matches:
            return text
        pieces, kept_from = [], 0
        for start, end in matches:
            first, last = spans[start][0], spans[end - 1][1]
            if first < kept_from:
                continue
            pieces += [text[kept_from:first], REDACTED]
            kept_from = last
        pieces.append(text[kept_from:])
        return "".join(pieces)

    def scrub(self, value: Any) -> Any:
        """Scrub a JSON-like structure: strings (with :meth:`scrub_message`), dict keys and values, lists and
        tuples, recursively.

        Bytes are scrubbed as UTF-8 (undecodable bytes kept as they are); other values are returned unchanged.
        """
        if isinstance(value, str):
            return self.scrub_message(value)
        if isinstance(value, Mapping):
            return {self.scrub(key): self.scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.scrub(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.scrub(item) for item in value)
        if isinstance(value, bytes | bytearray):
            text = bytes(value).decode("utf-8", errors="surrogateescape")
            return self.scrub_text(text).encode("utf-8", errors="surrogateescape")
        return value

    def scrub_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """A new dict: sensitive headers (case-insensitive) read :data:`REDACTED`, the others are scrubbed."""
        scrubbed: dict[str, str] = {}
        for name, value in headers.items():
            if _header_key(name) in self._header_names:
                scrubbed[self.scrub_text(name)] = REDACTED
            else:
                scrubbed[self.scrub_text(name)] = self.scrub(value)
        return scrubbed

    def scrub_url(self, url: str) -> str:
        """``url`` with sensitive query/fragment values and the userinfo password redacted, then scrubbed.

        Parameters are matched case-insensitively (``-`` and ``_`` alike) against
        :data:`SENSITIVE_QUERY_PARAMS` and the names added with :meth:`add_query_param`. A URL that cannot be
        parsed is only scrubbed as text.
        """
        try:
            parts = urlsplit(url)
        except ValueError:
            return self.scrub_text(url)
        netloc = parts.netloc
        userinfo, at, hostport = netloc.rpartition("@")
        if at and ":" in userinfo:
            netloc = f"{userinfo.partition(':')[0]}:{REDACTED}@{hostport}"
        fragment = parts.fragment
        if "=" in fragment:  # e.g. an OAuth implicit-flow "#access_token=..."
            fragment = self._redact_params(fragment)
        rebuilt = urlunsplit(
            (parts.scheme, netloc, parts.path, self._redact_params(parts.query), fragment),
        )
        return self.scrub_message(rebuilt)

    def _redact_params(self, query: str) -> str:
        if not query:
            return query
        pairs = []
        for pair in query.split("&"):
            name, equals, _value = pair.partition("=")
            if equals and _param_key(unquote_plus(name)) in self._query_params:
                pair = f"{name}={REDACTED}"
            pairs.append(pair)
        return "&".join(pairs)


# Redactors of the enclosing scopes, innermost last. A tuple, so nested scopes all apply.
_scopes: ContextVar[tuple[Redactor, ...]] = ContextVar("connectors_redaction_scopes", default=())


@contextlib.contextmanager
def redaction_scope(redactor: Redactor) -> Iterator[Redactor]:
    """Within the block, log records are scrubbed by ``redactor`` (and by those of enclosing scopes)."""
    token = _scopes.set((*_scopes.get(), redactor))
    try:
        yield redactor
    finally:
        _scopes.reset(token)


def current_redactors() -> tuple[Redactor, ...]:
    """The redactors of the scopes around the caller, outermost first; empty outside any scope."""
    return _scopes.get()


class RedactingLogFilter(logging.Filter):
    """Scrubs log records emitted inside a :func:`redaction_scope`; install it on handlers (the root's too).

    The message is rendered (``msg % args``), scrubbed and stored back with empty ``args``; exception and
    stack text are rendered, scrubbed and stored in ``exc_text``/``stack_info``, and ``exc_info`` is cleared
    so no formatter can render the unscrubbed exception again. The filter never drops a record and never
    raises: a message whose arguments do not format is logged with its arguments dropped. Install it on
    handlers rather than loggers: a logger's filters do not see records propagated from children.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        redactors = _scopes.get()
        if not redactors:
            return True

        def scrub(text: str) -> str:
            for redactor in redactors:
                text = redactor.scrub_message(text)
            return text

        try:
            message = record.getMessage()
        except Exception:  # a logging filter must never raise; the message says the arguments were dropped
            message = f"{record.msg!s} [log arguments dropped: they did not format]"
        record.msg = scrub(message)
        record.args = ()
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True
