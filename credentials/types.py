"""Credential types and what each needs: `static` (any fields) and the two OAuth2 grants.

Shared by the API (400 with field errors) and the services (ValueError for other callers). Messages name
fields, never values.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from credentials.models import CredentialType

OAUTH_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    CredentialType.OAUTH2_CLIENT_CREDENTIALS: {
        "required": ("token_url", "client_id", "client_secret"),
        "optional": ("scope", "audience"),
    },
    CredentialType.OAUTH2_REFRESH_TOKEN: {
        "required": ("token_url", "client_id", "client_secret", "refresh_token"),
        "optional": ("scope",),
    },
}
MAX_RATE_REQUESTS = 100_000
MAX_RATE_SECONDS = 86_400


def field_errors(credential_type: str, fields: dict[str, Any]) -> dict[str, list[str]]:
    """What is wrong with these fields for this type (static credentials take any fields)."""
    spec = OAUTH_FIELDS.get(credential_type)
    if spec is None:
        return {}
    errors = {
        name: ["This field is required for this credential type."] for name in spec["required"] if name not in fields
    }
    allowed = {*spec["required"], *spec["optional"]}
    errors |= {name: ["Unknown field for this credential type."] for name in sorted(set(fields) - allowed)}
    token_url = fields.get("token_url")
    if isinstance(token_url, str) and "token_url" not in errors:
        parts = urlsplit(token_url.strip())
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            errors["token_url"] = ["Must be an http:// or https:// URL with a host."]
    return errors


def rate_limit_errors(value: Any) -> list[str]:
    """What is wrong with a `rate_limit` ({"requests": N, "per_seconds": S}, both positive integers)."""
    if value is None:
        return []
    if not isinstance(value, dict) or set(value) != {"requests", "per_seconds"}:
        return ['Must be {"requests": N, "per_seconds": S}.']
    problems = []
    for name, high in (("requests", MAX_RATE_REQUESTS), ("per_seconds", MAX_RATE_SECONDS)):
        number = value[name]
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= high:
            problems.append(f"{name} must be an integer from 1 to {high}.")
    return problems
