"""PostgreSQL: a single execution's start is counted in the monthly quota by the database, when the
transaction that inserted it commits (a deferred constraint trigger), instead of by an upsert the execute call
sent before its COMMIT.

The upsert locked the workspace's month of usage until the COMMIT's round trip ended, so every execute call
of the workspace queued for that row across a round trip to a web thread (44.5 ms per call with 100 clients,
docs/performance.md). Counted at commit, the row is locked from the commit's start to its end, inside the
server. The rule is the same: the count, the check against `executions_per_month` and the insert commit
together or not at all; a refused start fails the COMMIT (SQLSTATE 23514 on the constraint
`usage_executions_quota`), which `usage.services.quota_refusals` turns into QuotaExceeded. Batches reserve
their items at once before inserting them (`usage.services.reserve_executions`), so their rows are not counted
again here.
"""

from django.db import migrations

COUNT_FUNCTION = """
CREATE OR REPLACE FUNCTION usage_count_execution() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started_month date := date_trunc('month', NEW.created_at AT TIME ZONE 'UTC')::date;
BEGIN
    INSERT INTO usage_monthlyusage (workspace_id, month, executions)
    SELECT NEW.workspace_id, started_month, 1
     WHERE NOT EXISTS (SELECT 1 FROM usage_workspacequota q WHERE q.workspace_id = NEW.workspace_id
                        AND q.executions_per_month IS NOT NULL AND 1 > q.executions_per_month)
    ON CONFLICT (workspace_id, month) DO UPDATE SET executions = usage_monthlyusage.executions + 1
     WHERE NOT EXISTS (SELECT 1 FROM usage_workspacequota q WHERE q.workspace_id = usage_monthlyusage.workspace_id
                        AND q.executions_per_month IS NOT NULL
                        AND usage_monthlyusage.executions + 1 > q.executions_per_month);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'The workspace has used its executions for this month.'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'usage_executions_quota';
    END IF;
    RETURN NULL;
END
$$;
"""
COUNT_TRIGGER = """
CREATE CONSTRAINT TRIGGER usage_executions_quota AFTER INSERT ON executions_execution
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.batch_id IS NULL)
    EXECUTE FUNCTION usage_count_execution();
"""


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(COUNT_FUNCTION)
        schema_editor.execute(COUNT_TRIGGER)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER IF EXISTS usage_executions_quota ON executions_execution")
        schema_editor.execute("DROP FUNCTION IF EXISTS usage_count_execution()")


class Migration(migrations.Migration):
    dependencies = [("usage", "0002_http_requests_apart"), ("executions", "0007_leaner_indexes")]

    operations = [migrations.RunPython(create_trigger, drop_trigger)]
