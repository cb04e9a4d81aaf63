"""The shape of a connector definition, as stored and as the engine reads it, and its limits.

`connectors.validation` turns what a client sends into this shape (every default filled in); the runner, the
execution lifecycle and the admin read it. The limits are named here once, so the validator's bounds, the
runner's defaults and what the documentation says cannot drift apart. Pure Python: no Django.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NotRequired, TypedDict

# Definition-wide limits.
DEFAULT_MAX_DURATION_SECONDS = 300
MAX_DURATION_SECONDS = 900
MAX_STEPS = 20
MAX_DEFINITION_BYTES = 512 * 1024

# Step limits.
DEFAULT_TIMEOUT_SECONDS = 30
MAX_TIMEOUT_SECONDS = 120
DEFAULT_MAX_ATTEMPTS = 3
MAX_ATTEMPTS = 10
MAX_TEMPLATE_LENGTH = 65_536
MAX_URL_LENGTH = 8_192
MAX_HEADER_VALUE_LENGTH = 8_192
MAX_CONTENT_TYPE_LENGTH = 255
MAX_EXTRACT_PATH_LENGTH = 1_024
# Caps on what a step renders, checked while rendering (characters): the URL with its query, each header, the body.
MAX_RENDERED_URL = 16 * 1024
MAX_RENDERED_HEADER = 16 * 1024
MAX_RENDERED_BODY = 2 * 1024 * 1024
# Entries of one header, query, form or extract object.
MAX_ENTRIES = 100

# Pagination limits.
DEFAULT_MAX_PAGES = 10
MAX_PAGES = 100


class HttpMethod(StrEnum):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"
    HEAD = "HEAD"
    OPTIONS = "OPTIONS"


class BodyType(StrEnum):
    NONE = "none"
    JSON = "json"
    FORM = "form"
    XML = "xml"
    RAW = "raw"


class ResponseType(StrEnum):
    AUTO = "auto"
    JSON = "json"
    TEXT = "text"
    BINARY = "binary"


class AuthType(StrEnum):
    NONE = "none"
    BEARER = "bearer"
    API_KEY = "api_key"
    BASIC = "basic"
    OAUTH2 = "oauth2"


class PaginationType(StrEnum):
    CURSOR = "cursor"
    NEXT_URL = "next_url"
    OFFSET = "offset"
    PAGE = "page"


class StepState(StrEnum):
    """How a step ended (what an execution's step record says)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


# The fields each auth type takes besides `type` (all strings; templates except `in`, `name` and `credential`).
AUTH_FIELDS: dict[AuthType, tuple[str, ...]] = {
    AuthType.NONE: (),
    AuthType.BEARER: ("token",),
    AuthType.API_KEY: ("in", "name", "value"),
    AuthType.BASIC: ("username", "password"),
    AuthType.OAUTH2: ("credential",),
}
# Auth fields that are names, not templates.
AUTH_NAME_FIELDS = frozenset({"type", "in", "name", "credential"})
# Where an api_key auth puts its value.
API_KEY_LOCATIONS = ("header", "query")


# `{"type": "none"}`, or a type with its fields (see AUTH_FIELDS). The functional form, because an api_key
# auth's `in` is a Python keyword.
AuthSpec = TypedDict(
    "AuthSpec",
    {
        "type": AuthType | str,
        "token": NotRequired[str],
        "in": NotRequired[str],
        "name": NotRequired[str],
        "value": NotRequired[str],
        "username": NotRequired[str],
        "password": NotRequired[str],
        "credential": NotRequired[str],
    },
)


class RetrySpec(TypedDict):
    max_attempts: int


class PaginateSpec(TypedDict):
    """`type` with its fields; `max_pages` is always filled in by the validator."""

    type: PaginationType | str
    max_pages: int
    items_path: NotRequired[str]
    cursor_path: NotRequired[str]
    path: NotRequired[str]
    param: NotRequired[str]
    limit_param: NotRequired[str]
    limit: NotRequired[int]
    start: NotRequired[int]


class StepSpec(TypedDict):
    """One HTTP request of a connector, every default filled in (`paginate` and `idempotency_key` only if given)."""

    name: str
    method: HttpMethod | str
    url: str
    headers: dict[str, str]
    query: dict[str, str]
    auth: AuthSpec
    body_type: BodyType | str
    body: Any
    content_type: str | None
    timeout_seconds: int
    response_type: ResponseType | str
    extract: dict[str, str]
    continue_on_error: bool
    retry: RetrySpec
    paginate: NotRequired[PaginateSpec]
    idempotency_key: NotRequired[bool]


class DefinitionSpec(TypedDict):
    """A connector definition as stored (and as an execution keeps a copy of it)."""

    input_schema: dict[str, Any]
    max_duration_seconds: int
    steps: list[StepSpec]
    contact_mapping: dict[str, str]
