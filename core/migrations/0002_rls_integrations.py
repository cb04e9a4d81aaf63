"""Row-level security on the tables of API keys, triggers, outbound webhooks and batches, exactly as
core/0001_rls does for the first tables (same role, same policy name, same expression shape)."""

from django.db import migrations

from core.rls_migrations import CURRENT_WORKSPACE, workspace_policies

SCOPED_TABLES = {
    "workspaces_apikey": f"workspace_id = {CURRENT_WORKSPACE}",
    "triggers_trigger": f"workspace_id = {CURRENT_WORKSPACE}",
    "webhooks_webhookendpoint": f"workspace_id = {CURRENT_WORKSPACE}",
    "webhooks_webhookdelivery": f"workspace_id = {CURRENT_WORKSPACE}",
    "batches_batch": f"workspace_id = {CURRENT_WORKSPACE}",
}


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_rls"),
        ("workspaces", "0002_api_key"),
        ("triggers", "0001_initial"),
        ("webhooks", "0001_initial"),
        ("batches", "0001_initial"),
    ]

    operations = [workspace_policies(SCOPED_TABLES)]
