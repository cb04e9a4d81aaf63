"""The save-time rules of an untrusted input schema that need its graph (see `connectors.input_schema`): only
local `$ref`s, no dynamic references, `$id` only at the top, RE2-compilable patterns, a bounded number of
branches per combinator and a bounded "in-place cost" (subschemas applied to one input value without descending
into it), and no `$ref` loop that never descends. Also the RE2 compiler shared with validation.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

import re2

MAX_COMBINATOR_BRANCHES = 64
MAX_IN_PLACE_COST = 2_000

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


@lru_cache(maxsize=1024)
def regex(pattern: str) -> Any:
    """The compiled RE2 pattern; raises re2.error when RE2 cannot compile it."""
    return re2.compile(pattern, options=_RE2_OPTIONS)


class SchemaGraph:
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
                regex(pattern)
            except re2.error as error:
                raise SchemaRefused(
                    f"The pattern {pattern!r} at {where} is not supported ({re2_message(error)}); patterns run on "
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


def re2_message(error: Exception) -> str:
    message = error.args[0] if error.args else str(error)
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)
