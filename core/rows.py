"""One model row by equality on a few columns, or one new row, without building an ORM query per call.

The ORM compiles every query anew: for a model with a dozen columns that is about 0.5 ms of CPU, five times
the cost of sending the statement (docs/performance.md). `select_one` builds the statement once per model
and set of columns and reads the row into a model instance the way the ORM does (the fields' `from_db_value`
conversions, `Model.from_db`); `insert_one` writes a new instance as `save()` would, and can let a unique
constraint skip it instead of failing the transaction; both run through `hot_cursor`, which prepares them
on PostgreSQL, as do other statements of every execution (the quota's upsert). `prepared_cursor` runs a
statement whose planning costs more than its execution as a prepared statement. For hot paths only;
everything else uses the ORM.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)


@cache
def _statement(model: type[Model], columns: tuple[str, ...]) -> tuple[str, list[Field]]:
    fields = list(model._meta.concrete_fields)
    where = [model._meta.pk if name == "pk" else model._meta.get_field(name) for name in columns]
    quoted = ", ".join(f'"{field.column}"' for field in fields)
    conditions = " AND ".join(f'"{field.column}" = %s' for field in where)
    return f'SELECT {quoted} FROM "{model._meta.db_table}" WHERE {conditions}', where  # noqa: S608


def _converters(model: type[Model], connection: Any) -> list[tuple[int, Callable[..., Any], Any]]:
    """What the ORM applies to each column read: the backend's conversions (SQLite's UUIDs, for one), then the
    field's own `from_db_value`, each with the column expression."""
    key = (model, connection.alias)
    if key not in _converters_of:
        found = []
        for index, field in enumerate(model._meta.concrete_fields):
            column = field.get_col(model._meta.db_table)
            for convert in [*connection.ops.get_db_converters(column), *field.get_db_converters(connection)]:
                found.append((index, convert, column))
        _converters_of[key] = found
    return _converters_of[key]


_converters_of: dict[tuple[type[Model], str], list[tuple[int, Callable[..., Any], Any]]] = {}


def select_one(model: type[M], using: str = DEFAULT_DB_ALIAS, **equal: Any) -> M | None:
    """The row of `model` whose columns equal `equal` (at most one must match), or None."""
    sql, where = _statement(model, tuple(equal))
    connection = connections[using]
    params = [field.get_db_prep_value(value, connection) for field, value in zip(where, equal.values(), strict=True)]
    with hot_cursor(connection) as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    return from_row(model, row, using)


def from_row(model: type[M], row: Any, using: str = DEFAULT_DB_ALIAS) -> M:
    """The instance of a row of all of `model`'s columns in field order (`select_one`'s, or another statement's
    such as the claim's, executions.lifecycle), converted as the ORM does."""
    connection = connections[using]
    values = list(row)
    for index, convert, column in _converters(model, connection):
        values[index] = convert(values[index], column, connection)
    return model.from_db(using, [field.attname for field in model._meta.concrete_fields], values)


@cache
def _insert_statement(model: type[Model], skip_conflicts: bool) -> str:
    fields = model._meta.concrete_fields
    columns = ", ".join(f'"{field.column}"' for field in fields)
    placeholders = ", ".join("%s" for _ in fields)
    conflict = " ON CONFLICT DO NOTHING" if skip_conflicts else ""
    return f'INSERT INTO "{model._meta.db_table}" ({columns}) VALUES ({placeholders}){conflict}'  # noqa: S608


def insert_one(instance: Model, using: str = DEFAULT_DB_ALIAS, *, skip_conflicts: bool = False) -> bool:
    """INSERTs a new instance whose primary key is set by its default (a UUID), as `save()` would, without
    signals; returns whether the row was written. With `skip_conflicts`, a row that would break a unique
    constraint is not written (False) and the transaction goes on: no savepoint is needed around it."""
    connection = connections[using]
    fields = instance._meta.concrete_fields
    values = [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
    with hot_cursor(connection) as cursor:
        cursor.execute(_insert_statement(type(instance), skip_conflicts), values)
        written = cursor.rowcount == 1
    if written:
        instance._state.adding = False
        instance._state.db = using
    return written


def hot_cursor(connection: Any) -> Any:
    """A cursor for a statement that runs all the time with new values: prepared on PostgreSQL (binding them
    on the server spares the client quoting every value into the text, a whole connector definition for an
    execution's INSERT, and the server parsing and planning it again), Django's own elsewhere. Parameters are
    typed from their Python values, as for `prepared_cursor`."""
    return prepared_cursor(connection.alias) if connection.vendor == "postgresql" else connection.cursor()


@contextmanager
def prepared_cursor(using: str = DEFAULT_DB_ALIAS) -> Iterator[Any]:
    """A cursor (PostgreSQL only) whose statements are prepared on the server: each statement text is planned
    once per connection, then only bound and executed. For large statements that run all the time, such as a
    run's finish, whose planning costs three times its execution (docs/performance.md).

    Django's cursors bind parameters on the client, which cannot prepare; this is a psycopg cursor with
    server-side binding, wrapped as `connection.cursor()` wraps its own (database errors translated, queries
    logged when debugging). Parameters are typed by psycopg from their Python values, so the statement casts
    what PostgreSQL cannot infer.

    The psycopg cursor is kept with the connection and used again, never by two statements at once (each
    caller reads its rows before the next statement): it keeps the adapters it found for each type of
    parameter and column, which a new cursor looks up again (in process, 100 µs of CPU for the 42 parameters
    of a run's finish; docs/performance.md)."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection = connections[using]
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    raw = connection.connection
    raw.prepare_threshold = 0  # only server-binding cursors, which only this function opens, prepare
    server_binding = getattr(raw, "kept_server_binding_cursor", None)
    if server_binding is None or server_binding.closed:
        with connection.wrap_database_errors:
            server_binding = raw.kept_server_binding_cursor = ServerBindingCursor(raw)
    yield (
        _LoggedStatement(server_binding, connection)
        if connection.queries_logged
        else connection.make_cursor(server_binding)
    )


class _LoggedStatement(CursorDebugWrapper):
    """Django's debug wrapper logging the statement's text: a prepared statement has no composed query for
    `last_executed_query` to show (query logs, `CaptureQueriesContext`)."""

    def execute(self, sql: str, params: Any = None) -> Any:
        with self.debug_sql(sql, params):
            return CursorWrapper.execute(self, sql, params)
