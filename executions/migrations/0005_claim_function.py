"""The claim as one statement: `SELECT * FROM executions_claim(id, token, cap, now)` (executions.lifecycle).

One round trip instead of BEGIN, SELECT ... FOR NO KEY UPDATE, UPDATE, COMMIT. The statements inside the
function keep the claim's rules exactly: the execution and its workspace row are locked first, and the running
count of the workspace is a later statement, so it sees every claim committed before this one got the lock
(in READ COMMITTED each statement of a volatile function takes a fresh snapshot): the cap cannot be raced
past. It returns the claimed row (status running); the row still queued when its cancel was requested or its
workspace is at the cap (then with `run_after` moved 1-3 s ahead); or nothing (not queued any more, or an
early duplicate of a delayed retry).
"""

from django.db import migrations

CLAIM_FUNCTION = """
CREATE OR REPLACE FUNCTION executions_claim(p_id uuid, p_token varchar, p_cap integer, p_now timestamptz)
RETURNS SETOF executions_execution
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    found_row executions_execution;
BEGIN
    SELECT e.* INTO found_row FROM executions_execution e JOIN workspaces_workspace w ON w.id = e.workspace_id
     WHERE e.id = p_id AND e.status = 'queued' FOR NO KEY UPDATE OF e, w;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF found_row.cancel_requested THEN
        RETURN NEXT found_row;
        RETURN;
    END IF;
    IF found_row.run_after > p_now + interval '1 second' THEN
        RETURN;
    END IF;
    IF (SELECT count(*) FROM executions_execution
         WHERE workspace_id = found_row.workspace_id AND status = 'running') >= p_cap THEN
        RETURN QUERY UPDATE executions_execution SET run_after = p_now + (1 + 2 * random()) * interval '1 second'
            WHERE id = p_id RETURNING *;
        RETURN;
    END IF;
    RETURN QUERY UPDATE executions_execution
        SET status = 'running', started_at = coalesce(started_at, p_now), heartbeat_at = p_now, worker = p_token,
            attempts = attempts + 1
        WHERE id = p_id RETURNING *;
END
$$;
"""


def create_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CLAIM_FUNCTION)


def drop_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS executions_claim(uuid, varchar, integer, timestamptz)")


class Migration(migrations.Migration):
    dependencies = [("executions", "0004_execution_batch"), ("workspaces", "0001_initial")]

    operations = [migrations.RunPython(create_function, drop_function)]
