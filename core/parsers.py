"""The API's JSON parser: like DRF's, but a body nested too deeply is a 400, never a RecursionError (500).

Every later step (validation, template scanning, JSON Schema checks, storage) walks parsed values
recursively, so depth is bounded here, once, for all of them.
"""

from rest_framework import exceptions, parsers

MAX_JSON_DEPTH = 64


def depth_exceeds(value, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict | list):
            if depth > limit:
                return True
            children = current.values() if isinstance(current, dict) else current
            stack.extend((child, depth + 1) for child in children)
    return False


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels") from None
        if depth_exceeds(data, MAX_JSON_DEPTH):
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels")
        return data
