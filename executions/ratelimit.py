"""The outbound rate budget: requests of steps that use a credential with a `rate_limit` are spaced so that
no more than N start in any S seconds, across every execution and worker.

Spacing, not bursts: each request reserves the next free start time of its workspace + credential (one
every S/N seconds). The reservation is one atomic Redis script (`TIME` gives all workers one clock), so
concurrent workers never take the same slot. A request whose slot is at most
CONNECTORS_RATE_LIMIT_MAX_WAIT_SECONDS away waits for it in the worker; a later one reserves nothing and the
execution goes back to the queue for that long (the runner raises RateLimitWait), so a slow API never pins
workers. Without a broker (embedded mode) the same algorithm runs in-process under a lock.

Cost per request of a step with a rate limit: one Redis round trip (EVALSHA); none for other steps.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Collection
from functools import cache
from typing import Protocol

import redis
from django.conf import settings

from connectors.engine.exchange import RateLimitWait
from credentials.provider import VaultCredentialProvider

logger = logging.getLogger(__name__)

# When Redis cannot be reached, a rate-limited request goes back to the queue for this long.
UNREACHABLE_RETRY_SECONDS = 10.0

# KEYS[1]: the budget's key. ARGV: interval and patience in microseconds. Returns {granted, wait µs}.
_RESERVE_SCRIPT = """
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local interval = tonumber(ARGV[1])
local patience = tonumber(ARGV[2])
local free_at = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(now_us, free_at)
local wait = start - now_us
if wait > patience then
    return {0, wait}
end
redis.call('SET', KEYS[1], string.format('%d', start + interval), 'PX', math.floor((wait + interval) / 1000) + 1000)
return {1, wait}
"""


class Limiter(Protocol):
    def reserve(self, key: str, *, interval: float, patience: float) -> tuple[bool, float]:
        """(granted, seconds until the slot). Not granted (nothing reserved) when that is over `patience`."""
        ...


class RedisLimiter:
    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._script = self._client.register_script(_RESERVE_SCRIPT)

    def reserve(self, key: str, *, interval: float, patience: float) -> tuple[bool, float]:
        granted, wait = self._script(keys=[f"connectors:rate:{key}"], args=[int(interval * 1e6), int(patience * 1e6)])
        return bool(granted), int(wait) / 1e6


class LocalLimiter:
    """The same reservations inside one process (embedded mode)."""

    def __init__(self) -> None:
        self._free_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(self, key: str, *, interval: float, patience: float) -> tuple[bool, float]:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._free_at.get(key, 0.0))
            if start - now > patience:
                return False, start - now
            self._free_at[key] = start + interval
            return True, start - now


@cache
def limiter_for(broker_url: str) -> Limiter:
    """One limiter per process: shared through Redis when the broker is Redis, else in-process."""
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        return RedisLimiter(broker_url)
    return LocalLimiter()


def get_limiter() -> Limiter:
    return limiter_for(settings.CELERY_BROKER_URL or "")


class CredentialRateBudget:
    """The runner's RateBudget for one execution: the limits of its workspace's credentials."""

    def __init__(self, workspace_id: uuid.UUID | str, provider: VaultCredentialProvider, limiter: Limiter) -> None:
        self.workspace_id = workspace_id
        self.provider = provider
        self.limiter = limiter
        self.patience = float(settings.CONNECTORS_RATE_LIMIT_MAX_WAIT_SECONDS)

    def reserve(self, services: Collection[str]) -> float | None:
        longest: float | None = None
        for service in services:
            limit = self.provider.rate_limit(service)
            if not limit:
                continue
            interval = limit["per_seconds"] / limit["requests"]
            try:
                granted, wait = self.limiter.reserve(
                    f"{self.workspace_id}:{service}", interval=interval, patience=self.patience
                )
            except redis.RedisError:
                # No budget can be kept without Redis (nor can the broker work): try again a little later.
                logger.warning("Rate budget of %s unreachable in Redis; the step waits", service)
                raise RateLimitWait(UNREACHABLE_RETRY_SECONDS) from None
            if not granted:
                raise RateLimitWait(wait)
            longest = max(longest or 0.0, wait)
        return longest
