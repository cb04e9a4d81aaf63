"""Failure alerts by email: settings, and the digest that at most once per interval names what failed.

The flow: a worker finishes an execution as failed → once that commits, `failure_noticed` enqueues one
digest task per workspace (a cache key keeps a burst of failures to one task per NOTICE_SECONDS) →
`deliver_failure_digest` claims the right to send with one conditional UPDATE (so two workers never both
send), emails the failures since the last digest, and schedules a follow-up check one interval later, which
sends again only if failures continued meanwhile.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from alerts import dispatch
from alerts.models import AlertSettings
from executions.models import Execution, Status
from workspaces.models import Workspace

logger = logging.getLogger(__name__)

NOTICE_SECONDS = 30
MAX_LISTED = 50
# Executions finishing now may have been created this long ago at most (max_duration plus retries).
LOOKBACK = timedelta(days=1)


@dataclass(frozen=True)
class Digest:
    total: int
    by_connector: list[tuple[str, int, str]]  # (connector name, failures, latest error)


@transaction.atomic
def alert_settings_update(
    *, workspace: Workspace, emails: list[str], on_failure: bool, min_interval_minutes: int
) -> AlertSettings:
    """Stores the workspace's alert settings (addresses arrive validated and normalized)."""
    row, created = AlertSettings.objects.select_for_update().get_or_create(
        workspace=workspace,
        defaults={"emails": emails, "on_failure": on_failure, "min_interval_minutes": min_interval_minutes},
    )
    if not created:
        row.emails, row.on_failure, row.min_interval_minutes = emails, on_failure, min_interval_minutes
        row.save(update_fields=["emails", "on_failure", "min_interval_minutes", "updated_at"])
    return row


def failure_noticed(*, workspace_id: Any) -> None:
    """An execution of the workspace failed (called after that commit): make sure a digest check comes."""
    if cache.add(f"alerts:noticed:{workspace_id}", 1, timeout=NOTICE_SECONDS):
        dispatch.enqueue_digest(workspace_id)


def deliver_failure_digest(*, workspace_id: Any, now: datetime | None = None) -> bool:
    """Sends the digest of the workspace's unreported failures if one is due; returns whether it sent.

    Safe to run any number of times, anywhere, concurrently: only the caller whose conditional UPDATE moves
    `last_sent_at` sends. When the interval has not passed yet, a check is scheduled for when it has. If the
    mail server refuses, the claim is undone and the error raised (the task retries).
    """
    now = now or timezone.now()
    row = AlertSettings.objects.filter(workspace_id=workspace_id, on_failure=True).first()
    if row is None or not row.emails:
        return False
    interval = timedelta(minutes=row.min_interval_minutes)
    if row.last_sent_at is not None and now < row.last_sent_at + interval:
        dispatch.enqueue_digest(workspace_id, delay=(row.last_sent_at + interval - now).total_seconds())
        return False
    since = row.reported_until or row.created_at
    digest = _failures(workspace_id, since, now)
    if digest is None:
        return False
    unchanged = Q(last_sent_at__isnull=True) if row.last_sent_at is None else Q(last_sent_at=row.last_sent_at)
    same_state = Q(pk=row.pk) & unchanged
    if not AlertSettings.objects.filter(same_state).update(last_sent_at=now, reported_until=now):
        return False  # another worker is sending this digest
    try:
        _send(row, digest)
    except Exception:
        AlertSettings.objects.filter(pk=row.pk, last_sent_at=now).update(
            last_sent_at=row.last_sent_at, reported_until=row.reported_until
        )
        raise
    logger.info("Failure alert sent to %s address(es): %s failure(s)", len(row.emails), digest.total)
    dispatch.enqueue_digest(workspace_id, delay=interval.total_seconds())
    return True


def _failures(workspace_id: Any, since: datetime, until: datetime) -> Digest | None:
    failed = Execution.objects.filter(
        workspace_id=workspace_id,
        status=Status.FAILED,
        created_at__gte=since - LOOKBACK,
        finished_at__gt=since,
        finished_at__lte=until,
    ).order_by("-finished_at")
    rows = list(failed.values_list("connector__name", "error")[: MAX_LISTED + 1])
    if not rows:
        return None
    total = failed.count() if len(rows) > MAX_LISTED else len(rows)
    per_connector: dict[str, list[Any]] = {}
    for name, error in rows[:MAX_LISTED]:
        entry = per_connector.setdefault(name, [0, error or ""])
        entry[0] += 1
    return Digest(total=total, by_connector=[(name, count, error) for name, (count, error) in per_connector.items()])


def _send(row: AlertSettings, digest: Digest) -> None:
    workspace = Workspace.objects.only("name").get(pk=row.workspace_id)
    lines = [
        f"{digest.total} execution(s) failed in workspace {workspace.name} since the last alert.",
        "",
    ]
    for name, count, error in digest.by_connector:
        lines.append(f"- {name}: {count} failure(s); latest error: {error[:500]}")
    if digest.total > MAX_LISTED:
        lines.append(f"(the {MAX_LISTED} latest are listed)")
    lines += ["", f"At most one alert is sent every {row.min_interval_minutes} minute(s) while failures continue."]
    send_mail(
        subject=f"[Connectors] {digest.total} failed execution(s) in {workspace.name}",
        message="\n".join(lines),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=row.emails,
    )
