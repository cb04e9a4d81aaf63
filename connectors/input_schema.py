"""Untrusted JSON Schemas: what a connector's `input_schema` may contain, and validation that stays bounded.

A member writes the schema and anyone with the connector runs it on every execute call, inside the web process.
So a stored schema must never reach the network or the disk, and no schema/input pair may hold a worker for
long. The rules (docs/security.md lists them):

* `$ref` only as a local `#...` pointer or anchor; `$id` only at the top; `$dynamicRef` / `$recursiveRef` are
  refused. Validation uses a `referencing.Registry` that retrieves nothing, so even an older stored schema
  cannot fetch anything: its remote reference is simply unresolvable (a 400).
* `pattern` and `patternProperties` run on RE2 (linear time, no backtracking); a pattern RE2 cannot compile
  is refused when the schema is saved. `unevaluatedProperties` cannot be combined with `patternProperties`
  (jsonschema evaluates those patterns with Python's backtracking `re`).
* Limits at save time: size, nesting depth, branches per combinator, and the "in-place cost" of every
  subschema (how many subschemas apply to one input value without descending into it, through
  `allOf`/`anyOf`/`oneOf`/`not`/`if`/`$ref`...). A `$ref` loop that never descends into the input
  (`{"$ref": "#"}`) is refused.
* A hard time budget for one validation: every keyword checks the clock; past the budget validation stops
  with a clear error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable

from connectors.schema_graph import MAX_COMBINATOR_BRANCHES, MAX_IN_PLACE_COST, SchemaGraph, SchemaRefused, regex

__all__ = [
    "MAX_COMBINATOR_BRANCHES",
    "MAX_IN_PLACE_COST",
    "MAX_SCHEMA_BYTES",
    "MAX_SCHEMA_DEPTH",
    "VALIDATION_BUDGET_SECONDS",
    "SchemaRefused",
    "check_input_schema",
    "first_input_error",
    "shared_budget",
]

MAX_SCHEMA_BYTES = 64 * 1024
MAX_SCHEMA_DEPTH = 32
VALIDATION_BUDGET_SECONDS = 0.5


class ValidationBudgetExceeded(Exception):
    """Validation ran past its time budget."""


def _refuse_retrieval(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)


# Knows no schema but the one being validated (the validator adds it as its root), and fetches nothing.
_NO_RETRIEVAL = Registry(retrieve=_refuse_retrieval)  # type: ignore[call-arg]


# ------------------------------------------------------------------------------------------------------------
# Save time (the rules that need the schema's graph: connectors.schema_graph)


def check_input_schema(schema: Any) -> None:
    """Raise SchemaRefused unless `schema` is a JSON Schema (2020-12) that follows every rule above."""
    if not isinstance(schema, dict):
        raise SchemaRefused("Must be a JSON Schema object.")
    size = len(json.dumps(schema, ensure_ascii=False).encode())
    if size > MAX_SCHEMA_BYTES:
        raise SchemaRefused(f"The schema is {size} bytes as JSON; at most {MAX_SCHEMA_BYTES} are accepted.")
    depth = _depth(schema)
    if depth > MAX_SCHEMA_DEPTH:
        raise SchemaRefused(f"The schema is nested {depth} levels deep; at most {MAX_SCHEMA_DEPTH} are accepted.")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        raise SchemaRefused(f"Not a valid JSON Schema: {error.message}") from None
    SchemaGraph(schema).check()


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value (a scalar is 0), without recursion."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        item, level = pending.pop()
        deepest = max(deepest, level)
        if deepest > MAX_SCHEMA_DEPTH:
            return deepest
        if isinstance(item, dict):
            pending.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, level + 1) for child in item)
    return deepest


# ------------------------------------------------------------------------------------------------------------
# Execute time

_deadline: ContextVar[float] = ContextVar("input_schema_deadline", default=float("inf"))
# A deadline shared by every validation of one request (a batch validates many inputs): see shared_budget().
_request_deadline: ContextVar[float] = ContextVar("input_schema_request_deadline", default=float("inf"))

Keyword = Callable[[Validator, Any, Any, dict[str, Any]], Iterator[ValidationError]]


def _pattern(validator: Validator, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Validator, patterns: dict[str, Any], instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if regex(pattern).search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Validator, additional: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = [regex(pattern) for pattern in schema.get("patternProperties", {})]
    extras = [key for key in instance if key not in properties and not any(regex.search(key) for regex in patterns)]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        listed = ", ".join(repr(extra) for extra in sorted(extras))
        yield ValidationError(f"Additional properties are not allowed ({listed} unexpected)")


def _unique_items(
    validator: Validator, unique: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    """Linear time (jsonschema compares unhashable items pairwise): items are compared by canonical JSON."""
    if unique and validator.is_type(instance, "array"):
        seen = {json.dumps(_canonical(item), sort_keys=True) for item in instance}
        if len(seen) < len(instance):
            yield ValidationError("has non-unique elements")


def _canonical(value: Any) -> Any:
    """Equal JSON values (in JSON Schema's sense: 1 == 1.0, true != 1) map to equal canonical forms."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


def _budgeted(keyword: Keyword) -> Keyword:
    def check(validator: Validator, value: Any, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
        if time.monotonic() > _deadline.get():
            raise ValidationBudgetExceeded
        yield from keyword(validator, value, instance, schema)

    return check


_REPLACED: dict[str, Keyword] = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "uniqueItems": _unique_items,
}
_BoundedValidator = validators.extend(
    Draft202012Validator,
    validators={
        name: _budgeted(_REPLACED.get(name, keyword))
        for name, keyword in Draft202012Validator.VALIDATORS.items()  # type: ignore[attr-defined]
    },
)


@contextmanager
def shared_budget(seconds: float) -> Iterator[None]:
    """Within the block, all validations together stop after `seconds` (each one still has its own budget):
    a request that validates many inputs (a batch) is bounded as a whole, not per input."""
    token = _request_deadline.set(min(_request_deadline.get(), time.monotonic() + seconds))
    try:
        yield
    finally:
        _request_deadline.reset(token)


def first_input_error(
    schema: dict[str, Any], instance: Any, *, budget_seconds: float = VALIDATION_BUDGET_SECONDS
) -> str | None:
    """The message of the first error (by input path) `instance` has against `schema`, or None when it is valid.

    Never raises for a stored schema: an unresolvable reference, a `$ref` loop or a validation that runs past
    `budget_seconds` are reported as errors of the input schema.
    """
    own = time.monotonic() + budget_seconds
    shared = _request_deadline.get()
    token = _deadline.set(min(own, shared))
    try:
        validator = _BoundedValidator(schema, registry=_NO_RETRIEVAL)
        errors = sorted(validator.iter_errors(instance), key=lambda error: [str(p) for p in error.path])
    except ValidationBudgetExceeded:
        if shared < own:
            return "The inputs of this request could not all be checked against the input_schema in time."
        return f"The input could not be checked against the connector's input_schema within {budget_seconds:g} s."
    except Unresolvable as error:
        return f"The connector's input_schema has a reference that cannot be resolved: {_reference_text(error)}."
    except RecursionError:
        return "The connector's input_schema refers to itself without end."
    finally:
        _deadline.reset(token)
    if not errors:
        return None
    first = errors[0]
    where = ".".join(str(part) for part in first.absolute_path)
    return f"{where + ': ' if where else ''}{first.message}"


def _reference_text(error: Unresolvable) -> str:
    ref = getattr(error, "ref", None)
    return repr(ref) if isinstance(ref, str) else "a $ref"
