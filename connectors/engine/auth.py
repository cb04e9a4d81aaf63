"""Auth of a step: placing it on the request (bearer, basic, api_key, oauth2) with its values registered as
secrets, and the step outputs that later steps send as auth (`secret_paths`): secrets too, sealed for a resumed
execution and put back in place when it resumes. Pure Python."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any

from requests.structures import CaseInsensitiveDict

from connectors.engine.exchange import Exchange, SendFailure
from connectors.engine.paths import PathNotFound, resolve
from connectors.engine.records import StepRecord
from connectors.engine.redaction import Redactor
from connectors.engine.spec import AUTH_NAME_FIELDS, MAX_RENDERED_HEADER, AuthType, StepSpec
from connectors.engine.templating import RenderBudget, Taint, compile_template


def apply_auth(
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


def secret_paths(steps: Sequence[StepSpec]) -> dict[str, list[tuple[Any, ...]]]:
    """Step name -> paths into that step's results that a later step's auth reads.

    `{"type": "bearer", "token": "{{steps.login.token}}"}` makes `("token",)` of step `login` a secret: it is
    redacted wherever it is stored, and kept (encrypted, by the caller) for a resumed execution.
    """
    found: dict[str, list[tuple[Any, ...]]] = {}
    for step in steps:
        for key, source in step["auth"].items():
            if key in AUTH_NAME_FIELDS:
                continue
            for reference in compile_template(source).references:
                if reference.namespace == "steps" and len(reference.path) > 1:
                    found.setdefault(reference.path[0], []).append(tuple(reference.path[1:]))  # type: ignore[arg-type]
    return found


def values_at(context: Mapping[str, Any], paths: Iterable[tuple[Any, ...]]) -> list[Any]:
    values = []
    for path in paths:
        try:
            value = resolve(context, path)
        except PathNotFound:
            continue
        if value is not None:
            values.append([list(path), value])
    return values


def context_of_stored(record: StepRecord) -> dict[str, Any]:
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
