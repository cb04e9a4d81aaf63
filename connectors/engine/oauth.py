"""OAuth2 for steps: the runner's view of access tokens, and the token request itself.

The runner only ever sees access tokens, through a `TokenSource` (the caller implements caching, sharing and
the cross-process lock; see credentials/oauth.py). `request_token` is the token endpoint call, made with the
same SSRF-safe client as the steps: a form POST with the client id and secret sent as HTTP Basic (RFC 6749
section 2.3.1). Its errors carry the endpoint's status and OAuth `error` code, never a secret or token.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from connectors.engine.http import HttpError, OutboundRequest, SafeHttpClient

OAUTH_CREDENTIAL_TYPES = ("oauth2_client_credentials", "oauth2_refresh_token")
TOKEN_TIMEOUT_SECONDS = 20.0
TRANSIENT_TOKEN_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class TokenError(Exception):
    """No access token could be had. `transient` says whether trying the step again may help."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


class TokenSource(Protocol):
    def access_token(self, service: str, *, rejected: str | None = None) -> str:
        """A valid access token of the service's OAuth2 credential. `rejected` is a token the API just
        answered 401 to: a different (new) token is returned, fetched from the token endpoint unless another
        execution already did. Raises TokenError."""
        ...


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    expires_in: float | None
    refresh_token: str | None


def grant_form(credential_type: str, fields: Mapping[str, str]) -> dict[str, str]:
    """The form parameters of the token request for a credential of this type (client id and secret go in
    the Authorization header instead)."""
    if credential_type == "oauth2_client_credentials":
        form = {"grant_type": "client_credentials"}
        for name in ("scope", "audience"):
            if fields.get(name):
                form[name] = fields[name]
        return form
    return {"grant_type": "refresh_token", "refresh_token": fields["refresh_token"]}


def request_token(
    client: SafeHttpClient,
    *,
    token_url: str,
    client_id: str,
    client_secret: str,
    form: Mapping[str, str],
    timeout: float = TOKEN_TIMEOUT_SECONDS,
) -> TokenGrant:
    """POSTs the grant to the token endpoint and reads the answer. Raises TokenError naming the endpoint's
    status and its `error` field (transient for connection problems, timeouts and 429/5xx)."""
    basic = base64.b64encode(f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}".encode()).decode()
    request = OutboundRequest(
        method="POST",
        url=token_url,
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
        body=urlencode(dict(form)).encode(),
        timeout=timeout,
    )
    try:
        response = client.send(request)
    except HttpError as error:
        raise TokenError(
            f"the token endpoint could not be reached: {error.message}", transient=error.transient
        ) from None
    answer = _json_object(response.content)
    if not 200 <= response.status_code < 300:
        code = answer.get("error") if isinstance(answer.get("error"), str) else None
        detail = f" ({code[:100]})" if code else ""
        raise TokenError(
            f"the token endpoint refused with HTTP {response.status_code}{detail}",
            transient=response.status_code in TRANSIENT_TOKEN_STATUSES,
        )
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise TokenError(f"the token endpoint answered HTTP {response.status_code} without an access_token")
    expires_in = answer.get("expires_in")
    try:
        lifetime = float(expires_in) if expires_in is not None else None
    except (TypeError, ValueError):
        lifetime = None
    refresh = answer.get("refresh_token")
    return TokenGrant(token, lifetime, refresh if isinstance(refresh, str) and refresh else None)


def _json_object(content: bytes) -> dict[str, Any]:
    try:
        value = json.loads(content.decode("utf-8", errors="replace")) if content else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
