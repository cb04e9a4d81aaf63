"""Wall clock of input_schema checks on hostile schemas and inputs (connectors/input_schema.py).

Run by hand (never part of the test suite); pure Python, no database or network:

    .venv/bin/python bench/bench_input_schema.py

For each case it prints the slowest of five runs of the save-time check (`check_input_schema`) or the
execute-time validation (`first_input_error`), and what the answer was. The rule it demonstrates: no schema
and input make one execute call spend more than the validation budget (0.5 s) in validation, and most hostile
cases are refused at save time in milliseconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from connectors.input_schema import VALIDATION_BUDGET_SECONDS, SchemaRefused, check_input_schema, first_input_error


def nested_any_of(levels: int) -> dict[str, Any]:
    defs: dict[str, Any] = {"l0": {"type": "string"}}
    for level in range(1, levels + 1):
        below = {"$ref": f"#/$defs/l{level - 1}"}
        defs[f"l{level}"] = {"anyOf": [below, {"allOf": [below]}]}
    return {"$defs": defs, "$ref": f"#/$defs/l{levels}"}


def save(schema: dict[str, Any]) -> Callable[[], str]:
    def run() -> str:
        try:
            check_input_schema(schema)
        except SchemaRefused as error:
            return f"refused: {str(error)[:70]}"
        return "accepted"

    return run


def validate(schema: dict[str, Any], instance: Any) -> Callable[[], str]:
    def run() -> str:
        return str(first_input_error(schema, instance))[:80]

    return run


CASES: list[tuple[str, Callable[[], str]]] = [
    ("save: pattern ^(a+)+$", save({"pattern": "^(a+)+$"})),
    ("save: 16 levels of anyOf over $ref", save(nested_any_of(16))),
    ("save: {'$ref': '#'}", save({"$ref": "#"})),
    ("save: 64 KiB schema of properties", save({"properties": {f"p{i}": {"type": "string"} for i in range(2500)}})),
    ("run: ^(a+)+$ on 40 a's and '!'", validate({"pattern": "^(a+)+$"}, "a" * 40 + "!")),
    ("run: ^(a+)+$ on 200 KiB", validate({"pattern": "^(a+)+$"}, "a" * 200_000 + "!")),
    (
        "run: patternProperties + additionalProperties, 5000 keys",
        validate(
            {"patternProperties": {"^(a+)+$": {}}, "additionalProperties": False},
            {"a" * 30 + str(i): 1 for i in range(5000)},
        ),
    ),
    ("run: stored 24 levels of anyOf (budget)", validate(nested_any_of(24), 5)),
    ("run: stored {'$ref': '#'}", validate({"$ref": "#"}, {})),
    ("run: uniqueItems, 20000 objects", validate({"uniqueItems": True}, [{"a": i} for i in range(20_000)])),
    (
        "run: 8 levels anyOf under items, 2000 items",
        validate({"$defs": nested_any_of(8)["$defs"], "items": {"$ref": "#/$defs/l8"}}, ["x"] * 2000),
    ),
]


def main() -> None:
    print(f"validation budget: {VALIDATION_BUDGET_SECONDS} s; slowest of 5 runs")
    for name, run in CASES:
        slowest, answer = 0.0, ""
        for _ in range(5):
            started = time.perf_counter()
            answer = run()
            slowest = max(slowest, time.perf_counter() - started)
        print(f"{slowest * 1000:9.1f} ms  {name:<58} {answer}")


if __name__ == "__main__":
    main()
