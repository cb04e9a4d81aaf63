"""Reads about workspaces and their users, shared by the workspaces admin and the console's admin API.

Each costs one query for any page of rows: counts are correlated subqueries, never Python loops over rows.
"""

from datetime import datetime, timedelta

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from connectors.models import Connector
from executions.models import Execution, Status
from workspaces.models import Membership, User, Workspace

# "Recent" activity: the executions of the last 30 days.
ACTIVITY_WINDOW_DAYS = 30


def _count_of(queryset: QuerySet, group_by: str) -> Coalesce:
    """A correlated `SELECT count(*)` of `queryset` (already filtered on an OuterRef), 0 when empty.

    A subquery per column instead of JOIN + COUNT(DISTINCT): joining memberships, connectors and executions
    at once would multiply rows before counting.
    """
    counted = queryset.order_by().values(group_by).annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def workspaces_with_activity(*, now: datetime | None = None) -> QuerySet[Workspace]:
    """Workspaces annotated with `member_count`, `connector_count`, `executions_30d`, `failed_30d` (executions
    created in the last 30 days, all of them / the failed ones) and `last_execution_at` (creation time of the
    newest execution). One query for any page of it; each subquery follows an index that starts with the
    workspace."""
    since = (now or timezone.now()) - timedelta(days=ACTIVITY_WINDOW_DAYS)
    recent = Execution.objects.filter(workspace=OuterRef("pk"), created_at__gte=since)
    newest = Execution.objects.filter(workspace=OuterRef("pk")).order_by("-created_at").values("created_at")[:1]
    return Workspace.objects.annotate(
        member_count=_count_of(Membership.objects.filter(workspace=OuterRef("pk")), "workspace"),
        connector_count=_count_of(Connector.objects.filter(workspace=OuterRef("pk")), "workspace"),
        executions_30d=_count_of(recent, "workspace"),
        failed_30d=_count_of(recent.filter(status=Status.FAILED), "workspace"),
        last_execution_at=Subquery(newest),
    )


def users_with_workspace_count() -> QuerySet[User]:
    """Users annotated with `workspace_count`, the number of workspaces they belong to."""
    return User.objects.annotate(
        workspace_count=_count_of(Membership.objects.filter(user=OuterRef("pk")), "user"),
    )
