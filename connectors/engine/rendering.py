"""Rendering a step into the request it sends: URL, query, headers, auth and body, each within its size cap
(`spec.MAX_RENDERED_*`), with every value derived from a secret registered as one; and the contact mapping.
Pure Python."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit
from xml.sax.saxutils import escape as xml_escape

from connectors.engine.auth import apply_auth
from connectors.engine.credentials import MissingCredential
from connectors.engine.exchange import Exchange, SendFailure
from connectors.engine.http import OutboundRequest
from connectors.engine.records import StepFailure
from connectors.engine.redaction import Redactor
from connectors.engine.spec import (
    MAX_RENDERED_BODY,
    MAX_RENDERED_HEADER,
    MAX_RENDERED_URL,
    BodyType,
    StepSpec,
)
from connectors.engine.taint import SecretDerived, SecretTaint, refusing_taint
from connectors.engine.templating import (
    RenderBudget,
    RenderTooLarge,
    Taint,
    UnresolvedReference,
    compile_template,
    render_json,
)

_XML_QUOTES = {'"': "&quot;", "'": "&apos;"}
BODY_CONTENT_TYPES = {
    BodyType.JSON: "application/json",
    BodyType.FORM: "application/x-www-form-urlencoded",
    BodyType.XML: "application/xml",
    BodyType.RAW: "text/plain",
}


def render_request(
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
        sensitive = apply_auth(step["auth"], context, headers, params, redactor, exchange, taint)
        where = "body"
        body, default_type = render_body(step, context, taint, RenderBudget(MAX_RENDERED_BODY))
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


def render_body(
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
