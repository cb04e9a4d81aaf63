"""core.pooled.on_commit: after the transaction's commit inside one; at once outside, without taking a
connection (a worker's is pooled: Django's on_commit would check one out only to learn it is in autocommit)."""

import pytest
from django.db import connection, transaction

from core import pooled


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_action_runs_at_once_without_a_connection():
    connection.close()
    ran = []

    pooled.on_commit(lambda: ran.append(connection.connection))

    assert ran == [None]
    assert connection.connection is None


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_the_action_waits_for_its_commit_and_not_for_a_rollback():
    ran = []

    with transaction.atomic():
        pooled.on_commit(lambda: ran.append("committed"))
        assert ran == []
    with transaction.atomic():
        pooled.on_commit(lambda: ran.append("rolled back"))
        transaction.set_rollback(True)

    assert ran == ["committed"]
