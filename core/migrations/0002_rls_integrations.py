"""Row-level security on the tables of API keys, triggers, outbound webhooks and batches, exactly as
core/0001_rls does for the first tables (same role, same policy name, same expression shape)."""

import importlib

from django.db import migrations

FIRST = importlib.import_module("core.migrations.0001_rls")
CURRENT_WORKSPACE = FIRST.CURRENT_WORKSPACE

SCOPED_TABLES = {
    "workspaces_apikey": f"workspace_id = {CURRENT_WORKSPACE}",
    "triggers_trigger": f"workspace_id = {CURRENT_WORKSPACE}",
    "webhooks_webhookendpoint": f"workspace_id = {CURRENT_WORKSPACE}",
    "webhooks_webhookdelivery": f"workspace_id = {CURRENT_WORKSPACE}",
    "batches_batch": f"workspace_id = {CURRENT_WORKSPACE}",
}


def _expression(table: str) -> str:
    return f"current_user <> '{FIRST.APP_ROLE}' OR ({SCOPED_TABLES[table]})"


def enable_rls(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in SCOPED_TABLES:
        expression = _expression(table)
        schema_editor.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY", params=None)
        schema_editor.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY", params=None)
        schema_editor.execute(f"DROP POLICY IF EXISTS {FIRST.POLICY_NAME} ON {table}", params=None)
        schema_editor.execute(
            f"CREATE POLICY {FIRST.POLICY_NAME} ON {table} USING ({expression}) WITH CHECK ({expression})",
            params=None,
        )


def disable_rls(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in SCOPED_TABLES:
        schema_editor.execute(f"DROP POLICY IF EXISTS {FIRST.POLICY_NAME} ON {table}", params=None)
        schema_editor.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY", params=None)
        schema_editor.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY", params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_rls"),
        ("workspaces", "0003_api_key"),
        ("triggers", "0001_initial"),
        ("webhooks", "0001_initial"),
        ("batches", "0001_initial"),
    ]

    operations = [migrations.RunPython(enable_rls, disable_rls, elidable=False)]
