"""core.rows: the hot paths' statements read and write rows exactly as the ORM does."""

import pytest
from django.db import IntegrityError, ProgrammingError, connection, transaction

from core import rows
from executions.models import Execution
from tests.executions.helpers import make_connector


@pytest.fixture
def connector(acme):
    return make_connector(acme, [{"name": "one", "url": "https://api.example.com/x"}])


def new_execution(connector, **fields) -> Execution:
    values = {"input": {"deep": [1, {"x": None}]}, "notes": ["n"], "idempotency_key": "k1"} | fields
    return Execution(
        workspace_id=connector.workspace_id,
        connector=connector,
        connector_version=connector.version,
        definition=connector.definition,
        **values,
    )


def test_insert_one_writes_what_the_orm_reads_back(connector):
    execution = new_execution(connector)

    assert rows.insert_one(execution) is True

    stored = Execution.objects.get(pk=execution.pk)
    assert not execution._state.adding
    assert stored.created_at == execution.created_at  # auto_now_add applied, as save() does
    assert (stored.input, stored.notes, stored.definition) == (execution.input, ["n"], connector.definition)
    assert (stored.status, stored.attempts, stored.idempotency_key) == ("queued", 0, "k1")
    assert rows.select_one(Execution, pk=execution.pk, workspace_id=connector.workspace_id) == stored


def test_a_skipped_conflict_writes_nothing_and_leaves_the_transaction_usable(connector):
    first = new_execution(connector)
    rows.insert_one(first)

    assert rows.insert_one(new_execution(connector), skip_conflicts=True) is False
    assert list(Execution.objects.values_list("pk", flat=True)) == [first.pk]


def test_without_skipping_a_conflict_fails_as_save_would(connector):
    rows.insert_one(new_execution(connector))

    with pytest.raises(IntegrityError), transaction.atomic():
        rows.insert_one(new_execution(connector))
    assert Execution.objects.count() == 1


def test_prepared_cursor_plans_a_statement_once_per_connection(db):
    statement = "SELECT %s::integer + count(*) FROM executions_execution WHERE status = %s"
    answers = []
    for n in (1, 2):
        with rows.prepared_cursor() as cursor:
            cursor.execute(statement, [n, "queued"])
            answers.append(cursor.fetchone()[0])
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%%executions_execution%%'")
        prepared = [row[0] for row in cursor.fetchall()]

    assert answers == [1, 2]
    assert prepared == [statement.replace("%s", "$1", 1).replace("%s", "$2", 1)]


def test_prepared_cursor_translates_database_errors_as_django_does(db):
    with pytest.raises(ProgrammingError), transaction.atomic(), rows.prepared_cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table WHERE id = %s", [1])


def test_prepared_cursor_keeps_one_cursor_per_connection_and_replaces_it_with_the_connection(transactional_db):
    def cursor_used() -> object:
        with rows.prepared_cursor() as cursor:
            cursor.execute("SELECT %s::integer", [1])
            assert cursor.fetchone() == (1,)
            return cursor.cursor  # the psycopg cursor under Django's wrapper

    first = cursor_used()
    assert cursor_used() is first  # its adapters, found for the first statement, serve the next ones

    first.close()
    replaced = cursor_used()
    assert replaced is not first

    connection.close()  # a new connection gets its own cursor
    assert cursor_used() is not replaced
