"""HTTP requests sent by steps move from MonthlyUsage to a table of their own, MonthlyHttpRequests (the counts
are copied; going back copies them again): the statement that finishes a run adds to them, and on
MonthlyUsage's row it waited for the execute calls holding that row for the quota (docs/performance.md)."""

import django.db.models.deletion
from django.db import migrations, models

from core.rls_migrations import CURRENT_WORKSPACE, workspace_policies

SCOPED_TABLES = {"usage_monthlyhttprequests": f"workspace_id = {CURRENT_WORKSPACE}"}


def copy_requests_apart(apps, schema_editor):
    usage = apps.get_model("usage", "MonthlyUsage")
    requests = apps.get_model("usage", "MonthlyHttpRequests")
    rows = usage.objects.using(schema_editor.connection.alias).filter(http_requests__gt=0)
    requests.objects.using(schema_editor.connection.alias).bulk_create(
        requests(workspace_id=row.workspace_id, month=row.month, http_requests=row.http_requests)
        for row in rows.iterator()
    )


def copy_requests_back(apps, schema_editor):
    usage = apps.get_model("usage", "MonthlyUsage")
    requests = apps.get_model("usage", "MonthlyHttpRequests")
    for row in requests.objects.using(schema_editor.connection.alias).iterator():
        updated = usage.objects.using(schema_editor.connection.alias).filter(
            workspace_id=row.workspace_id, month=row.month
        )
        if not updated.update(http_requests=row.http_requests):
            usage.objects.using(schema_editor.connection.alias).create(
                workspace_id=row.workspace_id, month=row.month, executions=0, http_requests=row.http_requests
            )


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0001_initial"),
        ("workspaces", "0003_user_token_version"),
    ]

    operations = [
        migrations.CreateModel(
            name="MonthlyHttpRequests",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("month", models.DateField(help_text="The first day of the month (UTC).")),
                ("http_requests", models.BigIntegerField(default=0, help_text="HTTP requests sent by steps.")),
                (
                    "workspace",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="monthly_http_requests",
                        to="workspaces.workspace",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "monthly HTTP requests",
                "ordering": ["-month", "workspace"],
                "constraints": [
                    models.UniqueConstraint(fields=("workspace", "month"), name="unique_requests_workspace_month")
                ],
            },
        ),
        workspace_policies(SCOPED_TABLES),
        migrations.RunPython(copy_requests_apart, copy_requests_back),
        migrations.RemoveField(model_name="monthlyusage", name="http_requests"),
    ]
