"""Reading a step's response (body by response type and charset, extract paths) and the bounded, scrubbed
copies of request, response and outputs that a step record keeps. Pure Python."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from requests.structures import CaseInsensitiveDict

from connectors.engine.http import OutboundRequest, OutboundResponse
from connectors.engine.paths import extract
from connectors.engine.records import BinaryBody, StepFailure
from connectors.engine.redaction import Redactor
from connectors.engine.spec import ResponseType


def parse_body(response_type: str, response: OutboundResponse, stored_body_bytes: int) -> Any:
    """The response body as `response_type` says (`auto`: by Content-Type); a binary body keeps its first
    `stored_body_bytes` bytes. Raises StepFailure for invalid JSON."""
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if response_type == "auto":
        if content_type == "application/json" or content_type.endswith("+json"):
            response_type = "json"
        elif not response.content or _is_textual(content_type):
            response_type = "text"
        else:
            response_type = "binary"
    if response_type == ResponseType.BINARY:
        kept = response.content[:stored_body_bytes]
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


def stored_body(body: Any, redactor: Redactor, stored_body_bytes: int) -> Any:
    """The scrubbed copy of a body that a step record keeps, at most about `stored_body_bytes`."""
    if isinstance(body, BinaryBody):
        # Already bounded: base64 of at most the first stored_body_bytes bytes (docs/api.md §5). The bytes are
        # scrubbed before they are encoded: a secret at any offset would otherwise hide in the base64.
        raw = redactor.scrub(base64.b64decode(body["base64"]))
        return BinaryBody(size=body["size"], sha256=body["sha256"], base64=base64.b64encode(raw).decode("ascii"))
    scrubbed = redactor.scrub(body)
    if isinstance(scrubbed, str):
        return cut(scrubbed, stored_body_bytes)
    if isinstance(scrubbed, dict | list):
        encoded = json.dumps(scrubbed, ensure_ascii=False)
        if len(encoded.encode()) > stored_body_bytes:
            return cut(encoded, stored_body_bytes)
    return scrubbed


def stored_request(request: OutboundRequest, redactor: Redactor) -> dict[str, Any]:
    parts = urlsplit(request.url)
    query = "&".join(q for q in (parts.query, urlencode(request.params)) if q)
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    stored: dict[str, Any] = {
        "method": request.method,
        "url": redactor.scrub_url(url),
        "headers": redactor.scrub_headers(request.headers),
    }
    if request.body is not None:
        stored["body"] = cut(redactor.scrub_text(request.body.decode("utf-8", errors="replace")), 64 * 1024)
    return stored


def extract_output(body: Any, headers: CaseInsensitiveDict[str], path: str) -> Any:
    """An output from the parsed body; a path starting with `headers.` reads the response headers when the
    body itself has no `headers` key."""
    if path.startswith("headers.") and not (isinstance(body, dict) and "headers" in body):
        return extract({"headers": headers}, path)
    return extract(body, path)


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


def bounded_outputs(extracted: dict[str, Any], limit: int) -> dict[str, Any]:
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
    value = cut(text, budget)
    while value and _json_size(value) > budget:
        value = cut(value, len(value.encode()) - (_json_size(value) - budget))
    return value


def cut(text: str, limit: int) -> str:
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")
