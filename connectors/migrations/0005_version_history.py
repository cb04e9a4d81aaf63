"""Connector versions: the current version of every existing connector, row-level security on the table, and a
trigger that keeps it append-only (PostgreSQL).

The trigger refuses any UPDATE that changes what a version says; clearing `created_by` when its user is deleted
(ON DELETE SET NULL, done by Django) is the one change allowed.
"""

import importlib

from django.db import migrations

RLS = importlib.import_module("core.migrations.0001_rls")

SCOPED_TABLES = {"connectors_connectorversion": f"workspace_id = {RLS.CURRENT_WORKSPACE}"}

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION connectors_version_append_only() RETURNS trigger AS $$
BEGIN
    IF NEW.id = OLD.id AND NEW.connector_id = OLD.connector_id AND NEW.workspace_id = OLD.workspace_id
       AND NEW.version = OLD.version AND NEW.definition = OLD.definition AND NEW.created_at = OLD.created_at THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'connector versions are append-only: % cannot be changed', OLD.id;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS connectors_version_append_only ON connectors_connectorversion;
CREATE TRIGGER connectors_version_append_only BEFORE UPDATE ON connectors_connectorversion
    FOR EACH ROW EXECUTE FUNCTION connectors_version_append_only();
"""

DROP_APPEND_ONLY = """
DROP TRIGGER IF EXISTS connectors_version_append_only ON connectors_connectorversion;
DROP FUNCTION IF EXISTS connectors_version_append_only();
"""


def record_current_versions(apps, schema_editor):
    Connector = apps.get_model("connectors", "Connector")
    ConnectorVersion = apps.get_model("connectors", "ConnectorVersion")
    batch = []
    fields = ("id", "workspace_id", "version", "steps", "input_schema", "contact_mapping", "max_duration_seconds")
    for connector in Connector.objects.only(*fields, "updated_at").iterator(chunk_size=500):
        definition = {
            "steps": connector.steps,
            "input_schema": connector.input_schema,
            "contact_mapping": connector.contact_mapping,
            "max_duration_seconds": connector.max_duration_seconds,
        }
        batch.append(
            ConnectorVersion(
                connector_id=connector.id,
                workspace_id=connector.workspace_id,
                version=connector.version,
                definition=definition,
                created_at=connector.updated_at,
            )
        )
        if len(batch) >= 500:
            ConnectorVersion.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    ConnectorVersion.objects.bulk_create(batch, ignore_conflicts=True)


def enable_rls_and_append_only(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, condition in SCOPED_TABLES.items():
        expression = f"current_user <> '{RLS.APP_ROLE}' OR ({condition})"
        schema_editor.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY", params=None)
        schema_editor.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY", params=None)
        schema_editor.execute(f"DROP POLICY IF EXISTS {RLS.POLICY_NAME} ON {table}", params=None)
        schema_editor.execute(
            f"CREATE POLICY {RLS.POLICY_NAME} ON {table} USING ({expression}) WITH CHECK ({expression})",
            params=None,
        )
        # Tables created after core/0001 get the app role's grants from its default privileges; granting again
        # covers databases where those defaults were set by another user.
        schema_editor.execute(
            f"DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{RLS.APP_ROLE}') THEN "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {RLS.APP_ROLE}; "
            f"GRANT USAGE, SELECT ON SEQUENCE {table}_id_seq TO {RLS.APP_ROLE}; END IF; "
            "EXCEPTION WHEN insufficient_privilege THEN NULL; END $$;",
            params=None,
        )
    schema_editor.execute(APPEND_ONLY, params=None)


def disable_rls_and_append_only(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(DROP_APPEND_ONLY, params=None)
    for table in SCOPED_TABLES:
        schema_editor.execute(f"DROP POLICY IF EXISTS {RLS.POLICY_NAME} ON {table}", params=None)
        schema_editor.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY", params=None)
        schema_editor.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY", params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("connectors", "0004_connectorversion"),
        ("core", "0001_rls"),
    ]

    operations = [
        # Policies and trigger first: ALTER TABLE is refused once inserted rows have pending (deferred FK) trigger
        # events in the same transaction, which an existing database with connectors would have.
        migrations.RunPython(enable_rls_and_append_only, disable_rls_and_append_only, elidable=False),
        migrations.RunPython(record_current_versions, migrations.RunPython.noop, elidable=False),
    ]
