"""Paths into parsed JSON-like data: ``country.name``, ``items[0].id``, ``items.-1``, ``items[*].id``.

A path is dot-separated segments. A segment holds any character but ``.``, ``[``, ``]``, ``|``, ``}`` and
whitespace (so ``X-Token`` is one segment) and may be followed by bracket suffixes: ``[N]`` (an integer
index, negative counts from the end) or ``[*]`` (every item of a list). A path may also start with a bracket
(``[0].id``, ``[*].id``) to reach into a top-level list. A purely numeric dot segment (``items.0``) stays a
string: it indexes a list and looks up a key in a mapping.
"""

import enum
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

__all__ = [
    "WILDCARD",
    "PathNotFound",
    "PathSyntaxError",
    "Segment",
    "Wildcard",
    "extract",
    "parse_path",
    "resolve",
]


class Wildcard(enum.Enum):
    """Type of the ``[*]`` segment; its only member is ``WILDCARD``."""

    WILDCARD = "[*]"

    def __repr__(self) -> str:
        return "WILDCARD"


WILDCARD = Wildcard.WILDCARD

Segment = str | int | Wildcard

_NAME = re.compile(r"[^.\[\]|}\s]+")
_BRACKET = re.compile(r"\[([^\[\]]*)\]")
_INTEGER = re.compile(r"-?[0-9]+")


class PathSyntaxError(ValueError):
    """A path that cannot be parsed; the message names the path and what is wrong with it."""


class PathNotFound(KeyError):
    """Nothing at ``segment`` while resolving a path (missing key, index out of range, wrong type)."""

    def __init__(self, segment: Segment) -> None:
        super().__init__(segment)
        self.segment = segment

    def __str__(self) -> str:
        return f"no value at segment {self.segment!r}"


@lru_cache(maxsize=4096)
def parse_path(path: str) -> tuple[Segment, ...]:
    """Parse ``path`` into its segments; raise PathSyntaxError when it is malformed."""
    if not path:
        raise PathSyntaxError("empty path")
    segments: list[Segment] = []
    pos = 0
    while True:
        name = _NAME.match(path, pos)
        if name:
            segments.append(name.group())
            pos = name.end()
        elif pos > 0 or path[0] != "[":
            raise _unexpected(path, pos)
        while path.startswith("[", pos):
            bracket = _BRACKET.match(path, pos)
            if bracket is None:
                raise PathSyntaxError(f"unclosed '[' at position {pos} in path {path!r}")
            segments.append(_bracket_segment(bracket.group(1), path))
            pos = bracket.end()
        if pos == len(path):
            return tuple(segments)
        if path[pos] != ".":
            raise _unexpected(path, pos)
        pos += 1


def _bracket_segment(content: str, path: str) -> int | Wildcard:
    if content == "*":
        return WILDCARD
    if _INTEGER.fullmatch(content):
        return int(content)
    raise PathSyntaxError(f"brackets must hold an integer or '*', not {content!r}, in path {path!r}")


def _unexpected(path: str, pos: int) -> PathSyntaxError:
    if pos == len(path) or path[pos] in ".[":
        return PathSyntaxError(f"empty segment at position {pos} in path {path!r}")
    return PathSyntaxError(f"unexpected {path[pos]!r} at position {pos} in path {path!r}")


def resolve(data: Any, segments: tuple[Segment, ...]) -> Any:
    """Walk ``segments`` into ``data`` and return what is there (``None`` included).

    Mappings are read by string key only through ``mapping[key]`` (so lazy or case-insensitive mappings
    work); lists and tuples by integer index, negative from the end. ``[*]`` maps the rest of the path over
    every item of a list and returns the list of results, ``None`` where an item has nothing there.
    Raises PathNotFound when the path leads nowhere.
    """
    current = data
    for depth, segment in enumerate(segments):
        if segment is WILDCARD:
            if not isinstance(current, list | tuple):
                raise PathNotFound(segment)
            rest = segments[depth + 1 :]
            return [_resolve_or_none(item, rest) for item in current]
        current = _step(current, segment)
    return current


def _step(current: Any, segment: str | int) -> Any:
    # The exact-type test spares the slower ABC check for plain dicts, the common case on the hot path.
    if type(current) is dict or isinstance(current, Mapping):
        if isinstance(segment, str):
            try:
                return current[segment]
            except KeyError:
                raise PathNotFound(segment) from None
    elif isinstance(current, list | tuple):
        index = _as_index(segment)
        if index is not None and -len(current) <= index < len(current):
            return current[index]
    raise PathNotFound(segment)


def _as_index(segment: str | int) -> int | None:
    if isinstance(segment, int):
        return segment
    return int(segment) if _INTEGER.fullmatch(segment) else None


def _resolve_or_none(data: Any, segments: tuple[Segment, ...]) -> Any:
    try:
        return resolve(data, segments)
    except PathNotFound:
        return None


def extract(data: Any, path: str) -> Any:
    """Return the value at ``path`` in ``data``, or ``None`` when there is none.

    A missing path is not an error; a malformed one raises PathSyntaxError (definitions are validated on
    save, so this means a programming error).
    """
    return _resolve_or_none(data, parse_path(path))
