"""Row-level security for tables added after core/0001_rls: the same policy, for use in later migrations.

    SCOPED_TABLES = {"usage_monthlyusage": f"workspace_id = {CURRENT_WORKSPACE}"}
    operations = [..., workspace_policies(SCOPED_TABLES)]

Each table gets RLS enabled and forced and the `connectors_workspace_isolation` policy with its expression
(see core/rls.py); on SQLite the operation does nothing. The module-level SCOPED_TABLES is what
tests/security/test_rls.py checks against the models.
"""

from django.db import migrations

from core.rls import APP_ROLE, POLICY_NAME

CURRENT_WORKSPACE = "NULLIF(current_setting('app.workspace_id', true), '')::uuid"


def workspace_policies(tables: dict[str, str]) -> migrations.RunPython:
    """`tables` maps a table to what makes one of its rows the current workspace's."""

    def enable(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for table, belongs in tables.items():
            expression = f"current_user <> '{APP_ROLE}' OR ({belongs})"
            schema_editor.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY", params=None)
            schema_editor.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY", params=None)
            schema_editor.execute(f"DROP POLICY IF EXISTS {POLICY_NAME} ON {table}", params=None)
            schema_editor.execute(
                f"CREATE POLICY {POLICY_NAME} ON {table} USING ({expression}) WITH CHECK ({expression})",
                params=None,
            )

    def disable(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for table in tables:
            schema_editor.execute(f"DROP POLICY IF EXISTS {POLICY_NAME} ON {table}", params=None)
            schema_editor.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY", params=None)
            schema_editor.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY", params=None)

    return migrations.RunPython(enable, disable, elidable=False)
