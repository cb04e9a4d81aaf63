"""PostgreSQL row-level security, the second wall between workspaces (core/rls.py, migration core/0001_rls).

Inside a workspace-scoped request the database itself hides other workspaces' rows, so a query that forgets
its workspace filter still finds nothing of theirs; everything outside such a request works as before.
"""

import importlib
import uuid

import pytest
from django.apps import apps
from django.db import ProgrammingError, connection, transaction
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework_simplejwt.tokens import RefreshToken

from alerts.models import AlertSettings
from audit.models import AuditEntry
from batches.models import Batch
from connectors.models import Connector, ConnectorVersion
from contacts.models import Contact
from core import rls
from credentials.models import Credential
from credentials.services import credential_upsert
from executions.models import (
    ConnectorDailyStats,
    ConnectorDurationBucket,
    Execution,
    ExecutionStep,
    StepDailyStats,
)
from tests.factories import ConnectorFactory, ContactFactory
from triggers.models import Trigger
from triggers.services import trigger_create
from usage.models import MonthlyHttpRequests, MonthlyUsage, WorkspaceQuota
from usage.services import add_http_requests, reserve_executions
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import endpoint_create, endpoint_send_test
from workspaces.api_keys import api_key_create
from workspaces.models import ApiKey, Membership, Workspace
from workspaces.scoping import WorkspaceScopedViewSet

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row-level security exists on PostgreSQL only (SQLite: app layer)"
)

MIGRATION = importlib.import_module("core.migrations.0001_rls")
# Migrations that put the policy on tables created after core/0001.
LATER_MIGRATIONS = [
    importlib.import_module("connectors.migrations.0005_version_history"),
    importlib.import_module("executions.migrations.0003_step_daily_stats"),
    importlib.import_module("core.migrations.0002_rls_integrations"),
    importlib.import_module("executions.migrations.0006_duration_histogram"),
    importlib.import_module("usage.migrations.0001_initial"),
    importlib.import_module("usage.migrations.0002_http_requests_apart"),
    importlib.import_module("audit.migrations.0001_initial"),
    importlib.import_module("alerts.migrations.0001_initial"),
]

SCOPED_MODELS = [
    Workspace,
    Membership,
    Connector,
    ConnectorVersion,
    Contact,
    Credential,
    Execution,
    ExecutionStep,
    ConnectorDailyStats,
    StepDailyStats,
    ApiKey,
    Trigger,
    WebhookEndpoint,
    WebhookDelivery,
    Batch,
    ConnectorDurationBucket,
    MonthlyUsage,
    MonthlyHttpRequests,
    WorkspaceQuota,
    AuditEntry,
    AlertSettings,
]


class UnscopedCountsViewSet(WorkspaceScopedViewSet):
    """Test-only endpoint that deliberately queries without any workspace filter."""

    def get_unscoped_queryset(self):
        return Connector.objects.all()

    def list(self, request):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user, current_setting('app.workspace_id', true)")
            role, setting = cursor.fetchone()
        counts = {model.__name__: model.objects.count() for model in SCOPED_MODELS}
        connector_ids = sorted(str(pk) for pk in Connector.objects.values_list("pk", flat=True))
        return Response({"role": role, "setting": setting, "counts": counts, "connector_ids": connector_ids})


def call_unscoped_view(user, workspace):
    request = APIRequestFactory().get(
        "/unscoped",
        HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}",
        HTTP_X_WORKSPACE_ID=str(workspace.id),
    )
    return UnscopedCountsViewSet.as_view({"get": "list"})(request)


def workspace_rows(workspace, name: str) -> None:
    """One row of every workspace-scoped kind in `workspace`."""
    connector = ConnectorFactory(workspace=workspace, name=name)
    contact = ContactFactory(workspace=workspace)
    execution = Execution.objects.create(
        workspace=workspace, connector=connector, connector_version=1, definition=connector.definition, input={}
    )
    ExecutionStep.objects.create(execution=execution, index=0, name="fetch", status="succeeded")
    today = timezone.now().date()
    ConnectorDailyStats.objects.create(connector=connector, workspace=workspace, date=today, succeeded=1)
    StepDailyStats.objects.create(connector=connector, workspace=workspace, date=today, step_name="fetch")
    credential_upsert(workspace=workspace, service_name="svc", fields={"key": f"{name}-secret"})
    integration_rows(workspace)
    # + an audit entry from credential_upsert
    ConnectorDurationBucket.objects.create(connector=connector, workspace=workspace, bucket_ms=100, count=1)
    reserve_executions(workspace_id=workspace.id, count=1)
    add_http_requests(workspace_id=workspace.id, count=2)
    WorkspaceQuota.objects.create(workspace=workspace, executions_per_month=10)
    AlertSettings.objects.create(workspace=workspace, emails=["ops@example.com"])
    # The writes above each left an audit entry: keep one, like every other kind (entries may be deleted, never
    # changed).
    first = AuditEntry.objects.filter(workspace=workspace).order_by("id").first()
    AuditEntry.objects.filter(workspace=workspace).exclude(pk=first.pk).delete()
    assert contact.workspace_id == workspace.id


def integration_rows(workspace) -> None:
    """One API key, trigger, webhook endpoint, delivery and batch of `workspace`."""
    api_key_create(workspace=workspace, name="k", role="member", expires_at=None, created_by=None)
    connector = Connector.objects.filter(workspace=workspace).first()
    trigger_create(connector=connector, data={"type": "webhook"})
    endpoint, _ = endpoint_create(
        workspace=workspace, data={"url": "https://hooks.example/in", "events": ["execution.failed"]}
    )
    endpoint_send_test(endpoint=endpoint)
    Batch.objects.create(workspace=workspace, connector=connector, count=0)


@pytest.fixture
def two_tenants(acme, alice, globex, bob):
    workspace_rows(acme, "Acme connector")
    workspace_rows(globex, "Globex connector")
    return acme, globex


def _scoped_tables() -> set[str]:
    """Tables of every model that belongs to one workspace: Workspace itself, models with a non-null foreign key
    to it, and (transitively) models with a non-null foreign key to such a model."""
    scoped = {Workspace}
    grew = True
    while grew:
        grew = False
        for model in apps.get_models():
            if model in scoped:
                continue
            parents = [
                f.related_model
                for f in model._meta.get_fields()
                if (f.many_to_one or f.one_to_one) and f.concrete and not f.null and f.related_model in scoped
            ]
            if parents:
                scoped.add(model)
                grew = True
    return {model._meta.db_table for model in scoped}


def test_the_scoped_models_are_those_the_policies_cover():
    assert _scoped_tables() == {model._meta.db_table for model in SCOPED_MODELS}


def test_every_workspace_scoped_table_has_forced_rls_and_the_policy(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
            " EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = %s)"
            " FROM pg_class c WHERE c.relname = ANY(%s)",
            [rls.POLICY_NAME, sorted(_scoped_tables())],
        )
        rows = {name: flags for name, *flags in cursor.fetchall()}

    assert rows == {table: [True, True, True] for table in _scoped_tables()}
    covered = set(MIGRATION.SCOPED_TABLES).union(*(set(m.SCOPED_TABLES) for m in LATER_MIGRATIONS))
    assert covered == _scoped_tables()


def test_the_app_role_can_neither_log_in_nor_bypass_rls(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper, rolbypassrls, rolcanlogin, rolcreaterole FROM pg_roles WHERE rolname = %s",
            [rls.APP_ROLE],
        )
        assert cursor.fetchone() == (False, False, False, False)
    assert rls.is_available()


def test_an_unscoped_query_in_a_request_for_a_sees_only_a(two_tenants, alice):
    acme, _ = two_tenants

    response = call_unscoped_view(alice, acme)

    assert response.status_code == 200
    assert response.data["role"] == rls.APP_ROLE
    assert response.data["setting"] == str(acme.id)
    assert response.data["counts"] == {model.__name__: 1 for model in SCOPED_MODELS}
    assert response.data["connector_ids"] == [str(Connector.objects.get(workspace=acme).pk)]


def test_after_the_request_the_test_transaction_sees_every_workspace_again(two_tenants, alice):
    acme, _ = two_tenants

    call_unscoped_view(alice, acme)

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user = session_user, current_setting('app.workspace_id', true)")
        assert cursor.fetchone() in {(True, ""), (True, None)}
    assert Connector.objects.count() == 2
    assert ExecutionStep.objects.count() == 2


def test_an_api_request_leaves_no_workspace_context_behind(two_tenants, alice_api):
    response = alice_api.get("/api/v1/connectors")

    assert [c["name"] for c in response.json()["results"]] == ["Acme connector"]
    assert Connector.objects.count() == 2


def _as_workspace(workspace_id):
    """The state a request is in after its workspace is resolved: app role, app.workspace_id set."""
    return _AppRole(workspace_id)


class _AppRole:
    def __init__(self, workspace_id):
        self.workspace_id = workspace_id

    def __enter__(self):
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        if self.workspace_id is None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('role', %s, true)", [rls.APP_ROLE])
        else:
            assert rls.enter_workspace(self.workspace_id)

    def __exit__(self, *exc):
        # Roll the savepoint back: that ends the SET LOCAL role and setting, and undoes any write.
        transaction.set_rollback(True)
        return self._atomic.__exit__(*exc)


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda m: m.__name__)
def test_the_database_hides_other_workspaces_rows_of_every_table(two_tenants, model):
    acme, _ = two_tenants

    with _as_workspace(acme.id):
        visible = model.objects.count()

    assert visible == 1
    assert model.objects.count() == 2


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda m: m.__name__)
def test_the_app_role_without_a_workspace_sees_nothing(two_tenants, model):
    with _as_workspace(None):
        visible = model.objects.count()

    assert visible == 0


def test_updates_and_deletes_cannot_reach_another_workspace(two_tenants):
    acme, globex = two_tenants

    with _as_workspace(acme.id):
        updated = Connector.objects.filter(workspace=globex).update(name="Hijacked")
        executions_updated = Execution.objects.update(status="cancelled")
        deleted, _ = Contact.objects.filter(workspace=globex).delete()

    assert (updated, executions_updated, deleted) == (0, 1, 0)
    assert Connector.objects.get(workspace=globex).name == "Globex connector"


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda globex, _: ConnectorFactory(workspace=globex), id="connector"),
        pytest.param(lambda globex, _: ContactFactory(workspace=globex), id="contact"),
        pytest.param(
            lambda globex, _: Credential.objects.create(workspace=globex, service_name="x", ciphertext="c", key_id="k"),
            id="credential",
        ),
        pytest.param(
            lambda _, execution_id: ExecutionStep.objects.create(
                execution_id=execution_id, index=9, name="x", status="succeeded"
            ),
            id="step-of-another-workspaces-execution",
        ),
    ],
)
def test_inserting_a_row_for_another_workspace_is_refused(two_tenants, write):
    acme, globex = two_tenants
    globex_execution_id = Execution.objects.get(workspace=globex).pk

    with _as_workspace(acme.id), pytest.raises(ProgrammingError, match="row-level security"):
        write(globex, globex_execution_id)


def test_moving_a_row_to_another_workspace_is_refused(two_tenants):
    acme, globex = two_tenants

    with _as_workspace(acme.id), pytest.raises(ProgrammingError, match="row-level security"):
        Contact.objects.filter(workspace=acme).update(workspace=globex)


def test_a_non_superuser_role_other_than_the_app_role_sees_every_row(two_tenants):
    # Production may connect as the tables' owner without superuser rights: FORCE makes RLS bind it too, and the
    # policy must admit it (workers, admin and commands run as it). A throw-away role stands in for it.
    probe = f"connectors_probe_{uuid.uuid4().hex[:12]}"
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE ROLE {probe} NOLOGIN NOBYPASSRLS")
            cursor.execute(f"GRANT SELECT ON connectors_connector, executions_executionstep TO {probe}")
            cursor.execute(f"GRANT SELECT ON executions_execution TO {probe}")
            cursor.execute("SELECT set_config('role', %s, true)", [probe])
            cursor.execute("SELECT count(*) FROM connectors_connector")
            connectors = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM executions_executionstep")
            steps = cursor.fetchone()[0]
        transaction.set_rollback(True)

    assert (connectors, steps) == (2, 2)


def test_the_migration_can_run_again_when_the_role_already_exists(db):
    with connection.cursor() as cursor:
        cursor.execute(MIGRATION.CREATE_ROLE)
        cursor.execute(MIGRATION.GRANT_ROLE)
        cursor.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [rls.APP_ROLE])
        assert cursor.fetchone()[0] == 1


def test_enter_workspace_outside_a_transaction_is_a_programming_error(db, acme):
    # pytest-django wraps the test in a transaction; leave it for this check only.
    with pytest.raises(RuntimeError, match="needs a transaction"):
        _call_outside_atomic(acme.id)


def _call_outside_atomic(workspace_id):
    in_block = connection.in_atomic_block
    connection.in_atomic_block = False
    try:
        rls.enter_workspace(workspace_id)
    finally:
        connection.in_atomic_block = in_block
