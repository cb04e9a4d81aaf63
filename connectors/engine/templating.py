"""The ``{{ ... }}`` template engine: compile once (cached), render many times.

An expression is a reference, optionally followed by filters: ``{{ input.name | default:"n/a" | upper }}``.
A reference starts with a namespace (``input``, ``contact``, ``workspace``, ``steps``) and continues with a
path as in :mod:`connectors.engine.paths`.

Decisions on points docs/api.md §6 leaves open:

* A ``}}`` outside an expression is literal text; an unclosed ``{{`` is a syntax error.
* A template is a single expression only when it is exactly ``{{ ... }}``: surrounding whitespace makes it
  text, so ``" {{input.name}}"`` keeps its space.
* ``default`` applies when the reference is missing or null and otherwise passes the value through with its
  type. Other filters turn their input into text first (``json`` serialises the value itself); they pass a
  missing reference through untouched, so a later ``default`` still catches it.
* The argument of ``default`` is a double-quoted string with JSON escapes (``\\"``, ``\\n``, ``\\u00e9``).
* ``{{workspace.SERVICE}}`` needs a credential with exactly one field; with several it does not resolve.
  ``workspace`` references have the form ``workspace.SERVICE`` or ``workspace.SERVICE.FIELD``.
"""

import base64
import json
import re
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from connectors.engine.paths import PathNotFound, PathSyntaxError, Segment, parse_path, resolve

__all__ = [
    "FILTERS",
    "NAMESPACES",
    "CompiledTemplate",
    "Reference",
    "RenderBudget",
    "RenderTooLarge",
    "Taint",
    "TemplateSyntaxError",
    "UnresolvedReference",
    "compile_template",
    "iter_templates",
    "render_json",
    "to_text",
]

NAMESPACES = frozenset({"input", "contact", "workspace", "steps"})

# Everything up to the closing braces; a quoted filter argument may itself contain "}}". The atomic group
# keeps a failed match linear instead of retrying every argument as plain text.
_EXPRESSION = re.compile(r'\{\{((?:[^:}]|(?>:\s*"(?:[^"\\]|\\.)*"|:)|\}(?!\}))*)\}\}', re.DOTALL)
_FILTER = re.compile(r'\|\s*([^\s|:]*)\s*(?:(:)\s*("(?:[^"\\]|\\.)*")?)?\s*', re.DOTALL)


class TemplateSyntaxError(ValueError):
    """A template that cannot be compiled; the message names the offending expression."""


class RenderTooLarge(ValueError):
    """Rendering would produce more than ``limit`` characters; it stopped as soon as it knew."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} characters")
        self.limit = limit


class RenderBudget:
    """How many characters rendering may still produce; shared by the templates of one place (a body's fields).

    Checked while rendering, piece by piece, so an oversized result is refused before it is built: a template
    of many ``{{input.x}}`` cannot grow to hundreds of MiB first.
    """

    __slots__ = ("left", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def spend(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise RenderTooLarge(self.limit)


class UnresolvedReference(Exception):
    """A reference with no value and no ``default``; ``expression`` is its normalized text."""

    def __init__(self, expression: str) -> None:
        super().__init__(f"unresolved reference {{{{{expression}}}}}")
        self.expression = expression


@dataclass(frozen=True)
class Reference:
    """A reference as written: its namespace, the parsed path after it, and its text (``input.phone``)."""

    namespace: str
    path: tuple[Segment, ...]
    text: str


class _Missing:
    """The value of a reference that did not resolve, while it flows through the filters."""


_MISSING = _Missing()

Filter = Callable[[Any], Any]


class Taint(Protocol):
    """Tracks secrets through rendering: a value derived from a secret is itself a secret.

    ``is_secret`` is asked about every value a reference resolves to; when it says yes, ``record`` receives the
    text of that value after each filter (``{{workspace.svc.key | upper | base64}}`` records the key upper-cased
    and its base64), whatever the filters are, so that every form that can leave the process is known.
    """

    def is_secret(self, reference: Reference, value: Any) -> bool: ...

    def record(self, text: str) -> None: ...


def to_text(value: Any) -> str:
    """Text of a substituted value: str as is, None -> "", bools lowercase, containers as compact JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Mapping | list | tuple):
        return _dumps(value)
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    # Response headers arrive as a CaseInsensitiveDict; anything else exotic is shown as text.
    if isinstance(value, Mapping):
        return dict(value)
    return str(value)


def _text_filter(transform: Callable[[str], str]) -> Filter:
    def apply(value: Any) -> Any:
        return value if value is _MISSING else transform(to_text(value))

    return apply


def _json_filter(value: Any) -> Any:
    return value if value is _MISSING else _dumps(value)


def _default_filter(fallback: str) -> Filter:
    def apply(value: Any) -> Any:
        return fallback if value is _MISSING or value is None else value

    return apply


_PLAIN_FILTERS: dict[str, Filter] = {
    "urlencode": _text_filter(lambda text: urllib.parse.quote(text, safe="")),
    "json": _json_filter,
    "lower": _text_filter(str.lower),
    "upper": _text_filter(str.upper),
    "base64": _text_filter(lambda text: base64.b64encode(text.encode()).decode("ascii")),
}
FILTERS = frozenset({"default", *_PLAIN_FILTERS})


class _Expression:
    """One compiled ``{{ ... }}``: evaluate it against a context."""

    __slots__ = ("filters", "namespace", "path", "reference", "single_field")

    def __init__(self, reference: Reference, filters: tuple[Filter, ...]) -> None:
        self.reference = reference
        self.namespace = reference.namespace
        self.path = reference.path
        self.filters = filters
        self.single_field = reference.namespace == "workspace" and len(reference.path) == 1

    def evaluate(self, context: Mapping[str, Any], taint: Taint | None = None) -> Any:
        """Return the filtered value; raise UnresolvedReference when it is missing and has no default."""
        value = self._lookup(context)
        secret = taint is not None and value is not _MISSING and taint.is_secret(self.reference, value)
        for apply in self.filters:
            value = apply(value)
            if secret and value is not _MISSING:
                taint.record(to_text(value))  # type: ignore[union-attr]
        if value is _MISSING:
            raise UnresolvedReference(self.reference.text)
        return value

    def _lookup(self, context: Mapping[str, Any]) -> Any:
        try:
            root = context[self.namespace]
        except KeyError:
            return _MISSING
        try:
            value = resolve(root, self.path)
        except PathNotFound:
            return _MISSING
        if self.single_field and isinstance(value, Mapping):
            return next(iter(value.values())) if len(value) == 1 else _MISSING
        return value


class CompiledTemplate:
    """A parsed template; immutable, so one instance is shared by every render."""

    __slots__ = (
        "_expressions",
        "_literals",
        "has_expressions",
        "is_single_expression",
        "references",
        "source",
    )

    def __init__(self, source: str, literals: tuple[str, ...], expressions: tuple[_Expression, ...]) -> None:
        self.source = source
        # literals[i] precedes expressions[i]; literals has one more item than expressions.
        self._literals = literals
        self._expressions = expressions
        self.references: tuple[Reference, ...] = tuple(expression.reference for expression in expressions)
        self.has_expressions = bool(expressions)
        self.is_single_expression = len(expressions) == 1 and literals == ("", "")

    def __repr__(self) -> str:
        return f"CompiledTemplate({self.source!r})"

    def render(
        self,
        context: Mapping[str, Any],
        escape: Callable[[str], str] | None = None,
        *,
        taint: Taint | None = None,
        budget: RenderBudget | None = None,
    ) -> str:
        """Render to text, passing each substituted value (never the literal text) through ``escape``.

        Raises UnresolvedReference for a reference with no value and no ``default``, RenderTooLarge when the
        text would exceed ``budget``.
        """
        literals = self._literals
        parts = [literals[0]]
        if budget is not None:
            budget.spend(len(literals[0]))
        for index, expression in enumerate(self._expressions, start=1):
            text = to_text(expression.evaluate(context, taint))
            if escape is not None:
                text = escape(text)
            parts.append(text)
            parts.append(literals[index])
            if budget is not None:
                budget.spend(len(text) + len(literals[index]))
        return "".join(parts)

    def render_value(
        self, context: Mapping[str, Any], *, taint: Taint | None = None, budget: RenderBudget | None = None
    ) -> Any:
        """The value itself, JSON type kept, for a single expression; otherwise the rendered text."""
        if self.is_single_expression:
            value = self._expressions[0].evaluate(context, taint)
            if budget is not None:
                budget.spend(len(value) if isinstance(value, str) else len(_dumps(value)))
            return value
        return self.render(context, taint=taint, budget=budget)


@lru_cache(maxsize=4096)
def compile_template(source: str) -> CompiledTemplate:
    """Parse ``source`` once; raise TemplateSyntaxError when it is malformed."""
    literals: list[str] = []
    expressions: list[_Expression] = []
    pos = 0
    while (start := source.find("{{", pos)) != -1:
        match = _EXPRESSION.match(source, start)
        if match is None:
            raise TemplateSyntaxError(f"unclosed '{{{{' at position {start} in {source!r}")
        literals.append(source[pos:start])
        expressions.append(_compile_expression(match.group(1)))
        pos = match.end()
    literals.append(source[pos:])
    return CompiledTemplate(source, tuple(literals), tuple(expressions))


def _compile_expression(body: str) -> _Expression:
    written = f"{{{{{body}}}}}"
    bar = body.find("|")
    reference_text = (body if bar == -1 else body[:bar]).strip()
    if not reference_text:
        problem = "empty expression" if bar == -1 else "no reference before the filters in"
        raise TemplateSyntaxError(f"{problem} {written}")
    reference = _parse_reference(reference_text, written)
    filters = () if bar == -1 else _parse_filters(body[bar:], written)
    return _Expression(reference, filters)


def _parse_reference(text: str, written: str) -> Reference:
    try:
        segments = parse_path(text)
    except PathSyntaxError as exc:
        raise TemplateSyntaxError(f"bad reference in {written}: {exc}") from None
    namespace, path = segments[0], segments[1:]
    if not isinstance(namespace, str) or namespace not in NAMESPACES:
        valid = ", ".join(sorted(NAMESPACES))
        raise TemplateSyntaxError(f"unknown namespace {namespace!r} in {written}; expected one of: {valid}")
    _check_shape(namespace, path, written)
    return Reference(namespace=namespace, path=path, text=text)


def _check_shape(namespace: str, path: tuple[Segment, ...], written: str) -> None:
    if namespace == "workspace" and not (1 <= len(path) <= 2 and all(isinstance(s, str) for s in path)):
        raise TemplateSyntaxError(f"{written} must be workspace.SERVICE or workspace.SERVICE.FIELD")
    if namespace == "steps" and not (len(path) >= 2 and isinstance(path[0], str)):
        raise TemplateSyntaxError(f"{written} must name a step and what to take from it, e.g. steps.NAME.OUTPUT")


def _parse_filters(text: str, written: str) -> tuple[Filter, ...]:
    filters: list[Filter] = []
    pos = 0
    while pos < len(text):
        match = _FILTER.match(text, pos)
        if match is None:
            raise TemplateSyntaxError(f"unexpected {text[pos:].strip()!r} in {written}")
        name, colon, argument = match.groups()
        filters.append(_make_filter(name, colon is not None, argument, written))
        pos = match.end()
    return tuple(filters)


def _make_filter(name: str, has_colon: bool, argument: str | None, written: str) -> Filter:
    if not name:
        raise TemplateSyntaxError(f"empty filter in {written}")
    if name not in FILTERS:
        valid = ", ".join(sorted(FILTERS))
        raise TemplateSyntaxError(f"unknown filter {name!r} in {written}; expected one of: {valid}")
    if has_colon and argument is None:
        raise TemplateSyntaxError(f"the argument of {name!r} in {written} must be a double-quoted string")
    if name == "default":
        if argument is None:
            raise TemplateSyntaxError(f"'default' needs an argument, e.g. default:\"n/a\", in {written}")
        return _default_filter(_decode_string(argument, written))
    if argument is not None:
        raise TemplateSyntaxError(f"filter {name!r} takes no argument, in {written}")
    return _PLAIN_FILTERS[name]


def _decode_string(literal: str, written: str) -> str:
    try:
        return json.loads(literal, strict=False)  # type: ignore[no-any-return]  # a JSON string literal
    except json.JSONDecodeError as exc:
        raise TemplateSyntaxError(f"bad string {literal} in {written}: {exc.msg}") from None


def render_json(
    value: Any, context: Mapping[str, Any], *, taint: Taint | None = None, budget: RenderBudget | None = None
) -> Any:
    """Render every string inside a JSON value (dict keys excepted) with ``render_value``.

    A string that is exactly one expression keeps the value's JSON type; other values are returned as is.
    Raises TemplateSyntaxError or UnresolvedReference like the templates inside.
    """
    if isinstance(value, str):
        return compile_template(value).render_value(context, taint=taint, budget=budget)
    if isinstance(value, dict):
        return {key: render_json(item, context, taint=taint, budget=budget) for key, item in value.items()}
    if isinstance(value, list):
        return [render_json(item, context, taint=taint, budget=budget) for item in value]
    return value


def iter_templates(value: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Yield ``(location, string)`` for every string in a JSON value; location is its keys and indexes."""
    return _walk_strings(value, ())


def _walk_strings(value: Any, location: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        yield location, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk_strings(item, (*location, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_strings(item, (*location, index))
