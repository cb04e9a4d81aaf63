"""Row-level security on the workspace-scoped tables (PostgreSQL only; see core/rls.py and docs/security.md).

The role is cluster-wide and may already exist (another database, an earlier test run, a concurrent
migration): its creation and grant tolerate that. A user without CREATEROLE cannot create it; the migration
then only installs the policies, which admit every role but connectors_app, and the app runs without RLS
(core.rls.is_available() logs why).
"""

from django.db import migrations

APP_ROLE = "connectors_app"
POLICY_NAME = "connectors_workspace_isolation"
CURRENT_WORKSPACE = "NULLIF(current_setting('app.workspace_id', true), '')::uuid"

# Table -> what makes a row belong to the current workspace.
SCOPED_TABLES = {
    "workspaces_workspace": f"id = {CURRENT_WORKSPACE}",
    "workspaces_membership": f"workspace_id = {CURRENT_WORKSPACE}",
    "connectors_connector": f"workspace_id = {CURRENT_WORKSPACE}",
    "contacts_contact": f"workspace_id = {CURRENT_WORKSPACE}",
    "credentials_credential": f"workspace_id = {CURRENT_WORKSPACE}",
    "executions_execution": f"workspace_id = {CURRENT_WORKSPACE}",
    "executions_connectordailystats": f"workspace_id = {CURRENT_WORKSPACE}",
    # Steps have no workspace column: they belong to their execution's workspace (the subquery is under RLS too).
    "executions_executionstep": (
        f"execution_id IN (SELECT id FROM executions_execution WHERE workspace_id = {CURRENT_WORKSPACE})"
    ),
}


def policy_expression(table: str) -> str:
    """Other roles pass; connectors_app only for rows of the workspace in app.workspace_id."""
    return f"current_user <> '{APP_ROLE}' OR ({SCOPED_TABLES[table]})"

CREATE_ROLE = f"""
DO $$
BEGIN
    CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'cannot create role {APP_ROLE}; row-level security stays inactive';
END $$;
"""

GRANT_ROLE = f"""
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        BEGIN
            EXECUTE format('GRANT {APP_ROLE} TO %I', current_user);
        EXCEPTION
            WHEN unique_violation OR duplicate_object THEN NULL;
            WHEN insufficient_privilege OR invalid_grant_operation THEN
                RAISE NOTICE 'cannot grant role {APP_ROLE} to %', current_user;
        END;
        BEGIN
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO {APP_ROLE}', current_schema());
        EXCEPTION WHEN insufficient_privilege THEN NULL;  -- PUBLIC usually has USAGE on the schema already
        END;
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO {APP_ROLE}',
                       current_schema());
        EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO {APP_ROLE}', current_schema());
        -- Tables that later migrations create (run by this same user, as deployments do).
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES'
                       ' TO {APP_ROLE}', current_schema());
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE}',
                       current_schema());
    END IF;
END $$;
"""


def enable_rls(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite: the application layer alone isolates workspaces
    schema_editor.execute(CREATE_ROLE, params=None)
    schema_editor.execute(GRANT_ROLE, params=None)
    for table in SCOPED_TABLES:
        expression = policy_expression(table)
        schema_editor.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY", params=None)
        schema_editor.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY", params=None)
        schema_editor.execute(f"DROP POLICY IF EXISTS {POLICY_NAME} ON {table}", params=None)
        schema_editor.execute(
            f"CREATE POLICY {POLICY_NAME} ON {table} USING ({expression}) WITH CHECK ({expression})",
            params=None,
        )


def disable_rls(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in SCOPED_TABLES:
        schema_editor.execute(f"DROP POLICY IF EXISTS {POLICY_NAME} ON {table}", params=None)
        schema_editor.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY", params=None)
        schema_editor.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY", params=None)
    # The role is left in place: it is cluster-wide and other databases may use it.


class Migration(migrations.Migration):
    dependencies = [
        ("workspaces", "0001_initial"),
        ("connectors", "0003_initial"),
        ("contacts", "0002_initial"),
        ("credentials", "0002_initial"),
        ("executions", "0001_initial"),
    ]

    operations = [migrations.RunPython(enable_rls, disable_rls, elidable=False)]
