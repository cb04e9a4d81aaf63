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
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

import re2
from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable

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
MAX_COMBINATOR_BRANCHES = 64
MAX_IN_PLACE_COST = 2_000
VALIDATION_BUDGET_SECONDS = 0.5

# Keywords whose value is a subschema / an object of subschemas / an array of subschemas.
_SCHEMA_KEYWORDS = (
    "not",
    "if",
    "then",
    "else",
    "items",
    "contains",
    "additionalProperties",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
)
_SCHEMA_MAP_KEYWORDS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LIST_KEYWORDS = ("allOf", "anyOf", "oneOf", "prefixItems")
# Applied to the same input value (no descent into it): these chain into the in-place cost.
_IN_PLACE_KEYWORDS = ("not", "if", "then", "else")
_IN_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
_REFUSED_KEYWORDS = ("$dynamicRef", "$recursiveRef", "$dynamicAnchor", "$recursiveAnchor")

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


class SchemaRefused(ValueError):
    """The schema breaks one of the rules above; the message says which, and where (a JSON pointer)."""


class ValidationBudgetExceeded(Exception):
    """Validation ran past its time budget."""


def _refuse_retrieval(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)


# Knows no schema but the one being validated (the validator adds it as its root), and fetches nothing.
_NO_RETRIEVAL = Registry(retrieve=_refuse_retrieval)  # type: ignore[call-arg]


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> Any:
    """The compiled RE2 pattern; raises re2.error when RE2 cannot compile it."""
    return re2.compile(pattern, options=_RE2_OPTIONS)


# ------------------------------------------------------------------------------------------------------------
# Save time


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
    _Graph(schema).check()


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


class _Graph:
    """The subschemas reachable from the root (through keywords and local `$ref`s), and the in-place edges."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.anchors: dict[str, Any] = {}
        self.pointers: dict[int, str] = {}
        self.in_place: dict[int, list[Any]] = {}
        self.has_pattern_properties = False
        self.unevaluated_properties_at: str | None = None

    def check(self) -> None:
        self._collect_anchors()
        pending: list[tuple[Any, str]] = [(self.root, "")]
        while pending:
            schema, pointer = pending.pop()
            if id(schema) in self.pointers or not isinstance(schema, dict):
                continue
            self.pointers[id(schema)] = pointer
            pending.extend(self._visit(schema, pointer))
        if self.has_pattern_properties and self.unevaluated_properties_at is not None:
            raise SchemaRefused(
                f"unevaluatedProperties at {self.unevaluated_properties_at or '/'} cannot be combined with "
                "patternProperties; use additionalProperties instead."
            )
        self._check_cost()

    def _collect_anchors(self) -> None:
        for schema, _pointer in _subschemas(self.root, ""):
            anchor = schema.get("$anchor")
            if isinstance(anchor, str):
                self.anchors[anchor] = schema

    def _visit(self, schema: dict[str, Any], pointer: str) -> Iterator[tuple[Any, str]]:
        """Checks one subschema's own keywords; yields the subschemas it leads to."""
        where = pointer or "/"
        for keyword in _REFUSED_KEYWORDS:
            if keyword in schema:
                raise SchemaRefused(f"{keyword} at {where} is not supported; use $ref with a local pointer.")
        if "$id" in schema and schema is not self.root:
            raise SchemaRefused(f"$id at {where} is only allowed at the top of the schema.")
        if "unevaluatedProperties" in schema:
            self.unevaluated_properties_at = pointer
        self._check_patterns(schema, where)
        edges: list[Any] = []
        for keyword in _IN_PLACE_KEYWORDS:
            if keyword in schema:
                edges.append(schema[keyword])
        for keyword in _IN_PLACE_LISTS:
            branches = schema.get(keyword, ())
            if len(branches) > MAX_COMBINATOR_BRANCHES:
                raise SchemaRefused(
                    f"{keyword} at {where} has {len(branches)} branches; at most {MAX_COMBINATOR_BRANCHES}."
                )
            edges.extend(branches)
        edges.extend(schema.get("dependentSchemas", {}).values())
        if "$ref" in schema:
            target, target_pointer = self._resolve(schema["$ref"], where)
            edges.append(target)
            yield target, target_pointer
        self.in_place[id(schema)] = edges
        yield from _children(schema, pointer)

    def _check_patterns(self, schema: dict[str, Any], where: str) -> None:
        patterns = [schema["pattern"]] if isinstance(schema.get("pattern"), str) else []
        if isinstance(schema.get("patternProperties"), dict):
            self.has_pattern_properties = True
            patterns += list(schema["patternProperties"])
        for pattern in patterns:
            try:
                _regex(pattern)
            except re2.error as error:
                raise SchemaRefused(
                    f"The pattern {pattern!r} at {where} is not supported ({_re2_message(error)}); patterns run on "
                    "RE2: no backreferences or lookaround."
                ) from None

    def _resolve(self, ref: Any, where: str) -> tuple[Any, str]:
        """The subschema a local `$ref` points at, and its pointer; SchemaRefused for anything else."""
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise SchemaRefused(
                f"$ref at {where} must be a local reference starting with '#' (e.g. '#/$defs/name'); "
                "references to other documents, URLs or files are not allowed."
            )
        fragment = unquote(ref[1:])
        if fragment and not fragment.startswith("/"):
            if fragment not in self.anchors:
                raise SchemaRefused(f"$ref {ref!r} at {where} names no $anchor of this schema.")
            return self.anchors[fragment], f"#{fragment}"
        target: Any = self.root
        for token in fragment.split("/")[1:] if fragment else ():
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and token in target:
                target = target[token]
            elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
                target = target[int(token)]
            else:
                raise SchemaRefused(f"$ref {ref!r} at {where} points at nothing in this schema.")
        if not isinstance(target, dict | bool):
            raise SchemaRefused(f"$ref {ref!r} at {where} does not point at a schema.")
        return target, fragment

    def _check_cost(self) -> None:
        """Refuses in-place loops, and subschemas that apply too many subschemas to one value."""
        cost: dict[int, int] = {}
        for start in list(self.in_place):
            if start in cost:
                continue
            # Iterative depth-first search; `on_path` holds the nodes whose cost is being computed.
            stack: list[tuple[int, Iterator[Any]]] = [(start, iter(self.in_place[start]))]
            on_path = {start}
            totals = {start: 1}
            while stack:
                node, children = stack[-1]
                child = next(children, None)
                if child is None:
                    stack.pop()
                    on_path.discard(node)
                    cost[node] = totals.pop(node)
                    if cost[node] > MAX_IN_PLACE_COST:
                        raise SchemaRefused(
                            f"The subschema at {self.pointers.get(node) or '/'} applies {cost[node]} subschemas "
                            f"to one value (through $ref and combinators); at most {MAX_IN_PLACE_COST}."
                        )
                    if stack:
                        totals[stack[-1][0]] += cost[node]
                    continue
                if not isinstance(child, dict):
                    totals[node] += 1
                    continue
                key = id(child)
                if key in on_path:
                    raise SchemaRefused(
                        f"The subschema at {self.pointers.get(key) or '/'} refers back to itself without descending "
                        "into the input ($ref loop); validation would never end."
                    )
                if key in cost:
                    totals[node] += cost[key]
                    continue
                on_path.add(key)
                totals[key] = 1
                stack.append((key, iter(self.in_place.get(key, ()))))


def _children(schema: dict[str, Any], pointer: str) -> Iterator[tuple[Any, str]]:
    """The direct subschemas of `schema` with their JSON pointers."""
    for keyword in _SCHEMA_KEYWORDS:
        if keyword in schema:
            yield schema[keyword], f"{pointer}/{keyword}"
    for keyword in _SCHEMA_MAP_KEYWORDS:
        value = schema.get(keyword)
        if isinstance(value, dict):
            for name, child in value.items():
                yield child, f"{pointer}/{keyword}/{_escape(name)}"
    for keyword in _SCHEMA_LIST_KEYWORDS:
        value = schema.get(keyword)
        if isinstance(value, list):
            for index, child in enumerate(value):
                yield child, f"{pointer}/{keyword}/{index}"


def _subschemas(root: Any, pointer: str) -> Iterator[tuple[dict[str, Any], str]]:
    pending = [(root, pointer)]
    while pending:
        schema, where = pending.pop()
        if isinstance(schema, dict):
            yield schema, where
            pending.extend(_children(schema, where))


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _re2_message(error: Exception) -> str:
    message = error.args[0] if error.args else str(error)
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)


# ------------------------------------------------------------------------------------------------------------
# Execute time

_deadline: ContextVar[float] = ContextVar("input_schema_deadline", default=float("inf"))
# A deadline shared by every validation of one request (a batch validates many inputs): see shared_budget().
_request_deadline: ContextVar[float] = ContextVar("input_schema_request_deadline", default=float("inf"))

Keyword = Callable[[Validator, Any, Any, dict[str, Any]], Iterator[ValidationError]]


def _pattern(validator: Validator, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Validator, patterns: dict[str, Any], instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _regex(pattern).search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Validator, additional: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = [_regex(pattern) for pattern in schema.get("patternProperties", {})]
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
