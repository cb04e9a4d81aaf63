"""Calendar months in UTC: the unit of usage and quotas."""

import re
from datetime import UTC, date, datetime

from django.utils import timezone

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def month_of(moment: datetime | None = None) -> date:
    moment = (moment or timezone.now()).astimezone(UTC)
    return date(moment.year, moment.month, 1)


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def seconds_to_next_month(moment: datetime | None = None) -> int:
    moment = (moment or timezone.now()).astimezone(UTC)
    start = datetime.combine(next_month(month_of(moment)), datetime.min.time(), tzinfo=UTC)
    return max(1, int((start - moment).total_seconds() + 0.999))


def parse_month(value: str) -> date:
    """`YYYY-MM` to the month's first day. Raises ValueError for anything else (e.g. 2026-13)."""
    match = _MONTH.match(value.strip())
    if not match:
        raise ValueError("Use a month as YYYY-MM.")
    year, month = int(match[1]), int(match[2])
    if not (1 <= month <= 12 and year >= 1):
        raise ValueError("Use a month as YYYY-MM, with a month from 01 to 12.")
    return date(year, month, 1)
