"""What the runner reports to its caller: step records, pending retries, the verdict, the hooks, and the
failure of a step attempt. Pure Python."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.engine.exchange import RateBudget, RequestEvent
from connectors.engine.oauth import TokenSource


class BinaryBody(dict[str, Any]):
    """A binary response as stored: {"size", "sha256", "base64"}; stored whole, never cut like other bodies."""


class StepFailure(Exception):
    """A step attempt failed. `transient` failures may be retried; `retry_after` is the server's wish."""

    def __init__(
        self, message: str, *, transient: bool = False, retry_after: float | None = None, timed_out: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.retry_after = retry_after
        self.timed_out = timed_out


@dataclass
class StepRecord:
    """What is stored about one step (already scrubbed), plus the unscrubbed values later steps may use."""

    index: int
    name: str
    status: str
    attempts: int = 0
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    extracted: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    # In-memory only: the values templates of later steps read (`steps.NAME...`).
    context: dict[str, Any] | None = None
    # Values of this step that later steps use as auth, unscrubbed: [[path, value], ...]. The caller stores
    # them encrypted, so a resumed execution can still authenticate with them (see `secret_paths`).
    sealed: list[Any] = field(default_factory=list)


@dataclass
class PendingRetry:
    """A step that failed transiently and will be tried again after `delay` seconds."""

    index: int
    attempts: int
    delay: float
    error: str
    started_at: datetime | None
    # Pagination progress of the step (PageState.to_json(), scrubbed), so a resumed step goes on from there.
    state: dict[str, Any] | None = None


@dataclass
class Outcome:
    """The verdict of `Runner.advance`: `finished` with a status, `waiting` for a retry, or `stopped`."""

    state: str
    status: str | None = None
    error: str | None = None
    retry: PendingRetry | None = None


@dataclass
class Hooks:
    """Callbacks to the caller. `on_step` must persist the record before it returns (checkpoint)."""

    on_step: Callable[[StepRecord], None]
    should_stop: Callable[[], bool] = lambda: False
    # HTTP features of steps (connectors/engine/exchange.py); all optional.
    tokens: TokenSource | None = None
    budget: RateBudget | None = None
    on_request: Callable[[RequestEvent], None] | None = None
    run_key: str | None = None  # the execution id: the seed of Idempotency-Key values


def utcnow() -> datetime:
    return datetime.now(UTC)
