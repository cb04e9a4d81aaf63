"""Validation and normalization of connector definitions (docs/api.md §5, §6).

The serializers here are the single validator of definitions: connectors and templates both use
`DefinitionSerializer`. A valid definition comes back with every default filled in, which is the form stored
and read by the engine. Errors are DRF field errors that point at the step index and field, e.g.
`{"steps": [{}, {"url": ["..."]}]}`. Templates are parsed with the engine's own parser, so what saves is
what runs.
"""

import json
import re
from typing import Any
from urllib.parse import urlsplit

from rest_framework import serializers

from connectors.definition_fields import (
    MethodField,
    StrictSerializer,
    StringField,
    TemplateField,
    TemplateMapField,
    check_template,
)
from connectors.engine.paths import PathSyntaxError, parse_path
from connectors.engine.runner import secret_paths
from connectors.engine.spec import (
    API_KEY_LOCATIONS,
    AUTH_FIELDS,
    AUTH_NAME_FIELDS,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_DURATION_SECONDS,
    DEFAULT_MAX_PAGES,
    DEFAULT_TIMEOUT_SECONDS,
    MAX_ATTEMPTS,
    MAX_CONTENT_TYPE_LENGTH,
    MAX_DEFINITION_BYTES,
    MAX_DURATION_SECONDS,
    MAX_ENTRIES,
    MAX_EXTRACT_PATH_LENGTH,
    MAX_PAGES,
    MAX_STEPS,
    MAX_TEMPLATE_LENGTH,
    MAX_TIMEOUT_SECONDS,
    MAX_URL_LENGTH,
    AuthType,
    BodyType,
    HttpMethod,
    PaginationType,
    ResponseType,
)
from connectors.engine.templating import Reference, TemplateSyntaxError, compile_template, iter_templates
from connectors.input_schema import SchemaRefused, check_input_schema
from contacts.models import MAPPABLE_FIELDS
from credentials.names import SERVICE_NAME_RE

STEP_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")
CUSTOM_FIELD_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class RetrySerializer(StrictSerializer):
    """How often a transient failure (connection error, timeout, 408, 425, 429, 5xx gateway errors) is tried."""

    max_attempts = serializers.IntegerField(min_value=1, max_value=MAX_ATTEMPTS, default=DEFAULT_MAX_ATTEMPTS)


class StepSerializer(StrictSerializer):
    """One HTTP request of a connector: what to send (templates), how to read the answer, what to extract."""

    name = serializers.RegexField(
        STEP_NAME, error_messages={"invalid": "Use lowercase letters, digits and _, starting with a letter."}
    )
    method = MethodField(choices=[m.value for m in HttpMethod], default=HttpMethod.GET.value)
    url = TemplateField(max_length=MAX_URL_LENGTH)
    headers = TemplateMapField(key_pattern=HEADER_NAME, default=dict)
    query = TemplateMapField(default=dict)
    auth = serializers.JSONField(default=lambda: {"type": AuthType.NONE.value})
    body_type = serializers.ChoiceField(choices=[t.value for t in BodyType], default=BodyType.NONE.value)
    body = serializers.JSONField(default=None, allow_null=True)
    content_type = StringField(default=None, allow_null=True, max_length=MAX_CONTENT_TYPE_LENGTH)
    timeout_seconds = serializers.IntegerField(
        min_value=1, max_value=MAX_TIMEOUT_SECONDS, default=DEFAULT_TIMEOUT_SECONDS
    )
    response_type = serializers.ChoiceField(choices=[t.value for t in ResponseType], default=ResponseType.AUTO.value)
    extract = serializers.DictField(child=StringField(max_length=MAX_EXTRACT_PATH_LENGTH), default=dict)
    continue_on_error = serializers.BooleanField(default=False)
    retry = RetrySerializer(default=lambda: {"max_attempts": DEFAULT_MAX_ATTEMPTS})
    # Optional, and absent from the stored form when not given (docs/connectors.md, "HTTP features").
    paginate = serializers.JSONField(required=False)
    idempotency_key = serializers.BooleanField(required=False)

    def validate_url(self, value: str) -> str:
        literal_prefix = value.split("{{", 1)[0]
        if "://" in literal_prefix or not compile_template(value).references:
            parts = urlsplit(literal_prefix if "{{" in value else value)
            if parts.scheme.lower() not in ("http", "https"):
                raise serializers.ValidationError("The URL must start with http:// or https://.")
            if "{{" not in value and not parts.hostname:
                raise serializers.ValidationError("The URL has no host.")
        return value

    def validate_auth(self, value: Any) -> dict:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be an object with a type.")
        auth_type = value.get("type")
        if auth_type not in AUTH_FIELDS:
            raise serializers.ValidationError({"type": [f"Unknown auth type; use one of {', '.join(AUTH_FIELDS)}."]})
        allowed = {"type", *AUTH_FIELDS[auth_type]}
        errors: dict[str, list[str]] = {key: ["Unknown field."] for key in sorted(set(value) - allowed)}
        for field in AUTH_FIELDS[auth_type]:
            if field not in value:
                errors[field] = ["This field is required."]
            elif not isinstance(value[field], str) or (field != "password" and not value[field]):
                errors[field] = ["Must be a non-empty string."]
            elif field == "in" and value[field] not in API_KEY_LOCATIONS:
                errors[field] = ['Must be "header" or "query".']
            elif field == "name" and value.get("in") == "header" and not HEADER_NAME.match(value[field]):
                errors[field] = ["Not a valid header name."]
            elif field == "credential" and not SERVICE_NAME_RE.match(value[field]):
                errors[field] = [f"Name a credential's service_name: {SERVICE_NAME_RE.pattern}."]
            elif field not in AUTH_NAME_FIELDS:
                try:
                    check_template(value[field])
                except serializers.ValidationError as error:
                    errors[field] = error.detail
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def validate_paginate(self, value: Any) -> dict:
        return validate_paginate(value)

    def validate_extract(self, value: dict) -> dict:
        if len(value) > MAX_ENTRIES:
            raise serializers.ValidationError(f"At most {MAX_ENTRIES} outputs.")
        errors = {}
        for output, path in value.items():
            if output == "response":
                errors[output] = ['"response" is reserved for the step\'s response; pick another name.']
                continue
            if not STEP_NAME.match(output) and not re.match(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$", output):
                errors[output] = ["Output names use letters, digits, _ and -."]
                continue
            try:
                parse_path(path)
            except PathSyntaxError as error:
                errors[output] = [str(error)]
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def validate(self, attrs: dict) -> dict:
        body_type, body = attrs["body_type"], attrs["body"]
        error = _body_error(body_type, body)
        if error:
            raise serializers.ValidationError({"body": [error]})
        if attrs["content_type"] is not None and body_type not in ("xml", "raw"):
            raise serializers.ValidationError(
                {"content_type": ["Only xml and raw bodies take content_type; set a Content-Type header instead."]}
            )
        return attrs


PAGINATE_FIELDS = {
    "cursor": {"required": ("cursor_path", "param"), "optional": ()},
    "next_url": {"required": (), "optional": ("path",)},
    "offset": {"required": ("param", "limit_param", "limit"), "optional": ()},
    "page": {"required": ("param",), "optional": ("start",)},
}
PATH_KEYS = ("cursor_path", "path", "items_path")


def validate_paginate(value: Any) -> dict:
    """`{"type", ...type fields, "items_path"?, "max_pages"? [10]}`; returns it with `max_pages` filled in."""
    if not isinstance(value, dict):
        raise serializers.ValidationError("Must be an object with a type.")
    kind = value.get("type")
    if kind not in list(PaginationType):
        raise serializers.ValidationError(
            {"type": [f"Unknown pagination type; use one of {', '.join(PaginationType)}."]}
        )
    spec = PAGINATE_FIELDS[kind]
    allowed = {"type", "items_path", "max_pages", *spec["required"], *spec["optional"]}
    errors: dict[str, list[str]] = {key: ["Unknown field."] for key in sorted(set(value) - allowed)}
    for name in spec["required"]:
        if name not in value:
            errors[name] = ["This field is required."]
    for name in ("param", "limit_param"):
        if name in value and (not isinstance(value[name], str) or not value[name] or len(value[name]) > 256):
            errors[name] = ["Must be a non-empty string (a query parameter name)."]
    for name in PATH_KEYS:
        if name in value:
            if not isinstance(value[name], str) or not value[name]:
                errors[name] = ["Must be a non-empty path."]
                continue
            try:
                parse_path(value[name])
            except PathSyntaxError as error:
                errors[name] = [str(error)]
    for name, low, high in (("limit", 1, 10_000), ("start", 0, 1_000_000), ("max_pages", 1, MAX_PAGES)):
        if name in value and (
            isinstance(value[name], bool) or not isinstance(value[name], int) or not low <= value[name] <= high
        ):
            errors[name] = [f"Must be an integer from {low} to {high}."]
    if errors:
        raise serializers.ValidationError(errors)
    return {**value, "max_pages": value.get("max_pages", DEFAULT_MAX_PAGES)}


def _body_error(body_type: str, body: Any) -> str | None:
    """What is wrong with `body` for its `body_type`, or None."""
    if body_type == "none":
        return None if body is None else 'A body needs a body_type other than "none".'
    if body_type == "form":
        if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
            return "A form body is an object of strings."
    elif body_type in ("xml", "raw"):
        if not isinstance(body, str):
            return f"A {body_type} body is a string."
    elif body is None:
        return "A json body cannot be null; use body_type none."
    for _location, source in iter_templates(body):
        if len(source) > MAX_TEMPLATE_LENGTH:
            return f"Strings in a body are at most {MAX_TEMPLATE_LENGTH} characters."
        try:
            compile_template(source)
        except TemplateSyntaxError as error:
            return str(error)
    return None


def _step_references(step: dict) -> list[tuple[str, Any]]:
    """(field, reference) for every template reference of a step."""
    found = []
    sources: list[tuple[str, str]] = [("url", step["url"])]
    sources += [("headers", v) for v in step["headers"].values()]
    sources += [("query", v) for v in step["query"].values()]
    sources += [("auth", v) for k, v in step["auth"].items() if k not in AUTH_NAME_FIELDS]
    sources += [("body", s) for _loc, s in iter_templates(step["body"])] if step["body_type"] != "none" else []
    for field, source in sources:
        found += [(field, reference) for reference in compile_template(source).references]
    return found


class DefinitionSerializer(StrictSerializer):
    """The definition shared by connectors and templates."""

    input_schema = serializers.JSONField(default=dict)
    max_duration_seconds = serializers.IntegerField(
        min_value=1, max_value=MAX_DURATION_SECONDS, default=DEFAULT_MAX_DURATION_SECONDS
    )
    steps = StepSerializer(many=True, allow_empty=False, max_length=MAX_STEPS)
    contact_mapping = serializers.JSONField(default=dict)

    def validate_input_schema(self, value: Any) -> dict:
        try:
            check_input_schema(value)
        except SchemaRefused as error:
            raise serializers.ValidationError(str(error)) from None
        return value

    def validate_contact_mapping(self, value: Any) -> dict:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be an object of contact field -> template.")
        errors = {}
        for target, source in value.items():
            custom_key = target.removeprefix("custom_fields.") if target.startswith("custom_fields.") else None
            if custom_key is None and target not in MAPPABLE_FIELDS:
                errors[target] = [f"Unknown contact field; use {', '.join(MAPPABLE_FIELDS)} or custom_fields.<key>."]
            elif custom_key is not None and not CUSTOM_FIELD_KEY.match(custom_key):
                errors[target] = ["Custom field keys use letters, digits, _ and -, at most 64."]
            elif not isinstance(source, str):
                errors[target] = ["Must be a template string."]
            else:
                try:
                    check_template(source)
                except serializers.ValidationError as error:
                    errors[target] = error.detail
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def validate(self, attrs: dict) -> dict:
        definition = {name: attrs.get(name) for name in ("input_schema", "steps", "contact_mapping")}
        size = len(json.dumps(definition, ensure_ascii=False).encode())
        if size > MAX_DEFINITION_BYTES:
            raise serializers.ValidationError(
                f"The definition is {size} bytes as JSON; at most {MAX_DEFINITION_BYTES} are accepted."
            )
        steps = attrs.get("steps", [])
        step_errors: list[dict] = [{} for _ in steps]
        seen: set[str] = set()
        for index, step in enumerate(steps):
            if step["name"] in seen:
                step_errors[index]["name"] = ["Step names must be unique within the connector."]
            for field, reference in _step_references(step):
                problem = _reference_problem(reference, seen)
                if problem and field not in step_errors[index]:
                    step_errors[index][field] = [problem]
            seen.add(step["name"])
        secrets = secret_paths(steps)
        mapping_errors = {
            target: [problem]
            for target, source in attrs.get("contact_mapping", {}).items()
            for reference in compile_template(source).references
            if (problem := _reference_problem(reference, seen) or _secret_problem(reference, secrets))
        }
        errors: dict[str, Any] = {}
        if any(step_errors):
            errors["steps"] = step_errors
        if mapping_errors:
            errors["contact_mapping"] = mapping_errors
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def _secret_problem(reference: Reference, secrets: dict[str, list[tuple]]) -> str | None:
    """Why a contact_mapping reference would store a secret (a credential, or a step output sent as auth)."""
    if reference.namespace == "workspace":
        return f"{{{{{reference.text}}}}} is a credential; contacts never store secrets or values derived from them."
    if reference.namespace == "steps":
        step, path = reference.path[0], tuple(reference.path[1:])
        if any(path[: len(secret)] == secret or secret[: len(path)] == path for secret in secrets.get(step, ())):
            return (
                f"{{{{{reference.text}}}}} is sent as auth by a later step, so it is a secret; "
                "contacts never store secrets or values derived from them."
            )
    return None


def _reference_problem(reference, earlier_steps: set[str]) -> str | None:
    if reference.namespace != "steps":
        return None
    step_name = reference.path[0]
    if step_name not in earlier_steps:
        return f"{{{{{reference.text}}}}} refers to step {step_name!r}, which is not defined before this step."
    return None
