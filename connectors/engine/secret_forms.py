"""The forms a secret takes on the way out, and a fast pattern matching all of them (for `redaction`).

A secret may leave as itself or base64, URL-encoded (as requests, urllib3 and `quote` write it, escapes in
either case), JSON/Python/XML/HTML-escaped or lower-cased (host names). `derived_forms` lists them;
`compile_forms` builds one regex as a prefix trie (longest match first); `percent_decoded` maps a decoded
text back to the spans of the original. Pure Python.
"""

from __future__ import annotations

import base64
import html
import json
import re
from typing import Any
from urllib.parse import quote, quote_plus
from xml.sax.saxutils import escape as xml_escape

# What requests' ``requote_uri`` leaves unescaped; a secret put into a URL path may go out in this form.
_REQUOTE_SAFE = "!#$%&'()*+,/:;=?@[]~"
# What urllib3 leaves unescaped in a path and a query (RFC 3986); it writes the URL this way in its messages.
_URLLIB3_PATH_SAFE = "!$&'()*+,;=:@/-._~"
_URLLIB3_QUERY_SAFE = _URLLIB3_PATH_SAFE + "?"
_PERCENT_ESCAPE_RE = re.compile(r"%[0-9A-F]{2}")
_ANY_PERCENT_ESCAPE_RE = re.compile(r"%[0-9A-Fa-f]{2}")
# Above this nesting depth the trie pattern would strain the regex compiler: use a flat alternation.
_MAX_TRIE_DEPTH = 100


def derived_forms(secret: str) -> set[str]:
    """The secret and the forms it takes in URLs, headers, JSON, Python reprs, XML and base64."""
    raw = secret.encode("utf-8")
    standard = base64.b64encode(raw).decode("ascii")
    urlsafe = base64.urlsafe_b64encode(raw).decode("ascii")
    forms = {
        secret,
        standard,
        standard.rstrip("="),
        urlsafe,
        urlsafe.rstrip("="),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        html.escape(secret),
        html.escape(secret, quote=False),
        xml_escape(secret, {'"': "&quot;", "'": "&apos;"}),
    }
    for encoded in (
        quote(secret, safe=""),
        quote(secret),
        quote(secret, safe=_REQUOTE_SAFE),
        quote_plus(secret),
        quote(secret, safe=_URLLIB3_PATH_SAFE),
        quote(secret, safe=_URLLIB3_QUERY_SAFE),
        _quote_keeping_escapes(secret, _URLLIB3_PATH_SAFE),
        _quote_keeping_escapes(secret, _URLLIB3_QUERY_SAFE),
    ):
        forms.add(encoded)
        # Some clients write percent-escapes in lower case.
        forms.add(_PERCENT_ESCAPE_RE.sub(lambda match: match.group().lower(), encoded))
    forms.add(secret.lower())  # host names are lower-cased on the way out
    forms.discard("")
    return forms


def _quote_keeping_escapes(text: str, safe: str) -> str:
    """``text`` percent-encoded as urllib3 does when its escapes are all valid: they are kept (upper-cased)."""
    pieces, position = [], 0
    for match in _ANY_PERCENT_ESCAPE_RE.finditer(text):
        pieces.append(quote(text[position : match.start()], safe=safe))
        pieces.append(match.group().upper())
        position = match.end()
    pieces.append(quote(text[position:], safe=safe))
    return "".join(pieces)


def percent_decoded(text: str) -> tuple[str, list[tuple[int, int]]]:
    """``text`` with its percent-escapes decoded (as UTF-8), and for each decoded character its span in
    ``text``."""
    decoded: list[str] = []
    spans: list[tuple[int, int]] = []
    position = 0
    for match in re.finditer(r"(?:%[0-9A-Fa-f]{2})+", text):
        for index in range(position, match.start()):
            decoded.append(text[index])
            spans.append((index, index + 1))
        raw = bytes.fromhex(match.group().replace("%", ""))
        start = match.start()
        for char in raw.decode("utf-8", errors="surrogateescape"):
            width = 3 * len(char.encode("utf-8", errors="surrogateescape"))
            decoded.append(char)
            spans.append((start, start + width))
            start += width
        position = match.end()
    for index in range(position, len(text)):
        decoded.append(text[index])
        spans.append((index, index + 1))
    return "".join(decoded), spans


def _trie_pattern(words: set[str]) -> str | None:
    """A regex matching exactly ``words``, longest match first, as a prefix trie (fast with many words).

    None when the trie is too deep to compile safely.
    """
    end = ""  # a key no character can equal
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[end] = True

    def build(node: dict[str, Any], depth: int) -> str | None:
        if depth > _MAX_TRIE_DEPTH:
            return None
        branches = []
        for char in sorted(key for key in node if key != end):
            # Follow a chain of single, non-terminal children without adding a group per character.
            literal, child = char, node[char]
            while len(child) == 1 and end not in child:
                (next_char,) = child
                literal += next_char
                child = child[next_char]
            rest = build(child, depth + 1)
            if rest is None:
                return None
            branches.append(re.escape(literal) + rest)
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if end in node:
            # Greedy optional: a longer word is tried first, and the word ending here is the fallback.
            body = f"(?:{body})?"
        return body

    return build(root, 0)


def compile_forms(forms: set[str]) -> re.Pattern[str]:
    pattern = _trie_pattern(forms)
    if pattern is None:
        pattern = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
    return re.compile(pattern)
