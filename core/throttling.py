"""Rate limits per user, per workspace and per client address (rates from `API_THROTTLE_*`, docs/api.md §13).

DRF's throttles keep each caller's history as a pickled list of timestamps in the cache: a GET and a SET per
throttle, and a list as long as the rate (2000 floats at 2000/min) unpickled and pickled again on every
request. With Redis as the cache, the same sliding window is kept in a sorted set instead, and every throttle
of a request is checked and counted by one Lua script: one round trip, constant work in Python
(`check_throttles`, used by every view). Without Redis (the embedded set-up) DRF's own code runs.
Either way a request is counted by the throttles that let it through, and refused if any refuses it.
"""

import hashlib
import secrets
import time

from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from rest_framework import throttling

from core.cache import RedisCache

# KEYS: one sorted set per throttle. ARGV: now (ms), a member unique to this request, then the limit and window
# (ms) of each key. Returns, per key, 0 (allowed and counted) or the milliseconds until it would allow one.
_SLIDING_WINDOW = """
local now = tonumber(ARGV[1])
local waits = {}
for i, key in ipairs(KEYS) do
    local limit = tonumber(ARGV[1 + 2 * i])
    local window = tonumber(ARGV[2 + 2 * i])
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    local count = redis.call('ZCARD', key)
    if count < limit then
        redis.call('ZADD', key, now, ARGV[2])
        redis.call('PEXPIRE', key, window)
        waits[i] = 0
    else
        local freed = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
        waits[i] = math.max(1, tonumber(freed[2]) + window - now)
    end
end
return waits
"""
_scripts: dict[object, object] = {}  # per Redis client (core.cache keeps one per pool)


class SlidingWindowThrottle(throttling.SimpleRateThrottle):
    """DRF's SimpleRateThrottle, counted in a Redis sorted set when the cache is Redis."""

    def allow_request(self, request, view):
        return all(check_throttles([self], request, view))

    def wait(self):
        if getattr(self, "redis_wait", None) is not None:
            return self.redis_wait
        return super().wait()


def check_throttles(throttles, request, view) -> list[bool]:
    """Whether each throttle lets the request through, counting it in those that do; with Redis, one round trip
    for all of them. Each refusing throttle's `wait()` says for how long."""
    script = _script()
    if script is None:
        return [_drf_allow(throttle, request, view) for throttle in throttles]
    keyed = []
    others = {}  # throttles of other kinds (not ours) decide for themselves
    for throttle in throttles:
        if not isinstance(throttle, SlidingWindowThrottle):
            others[id(throttle)] = throttle.allow_request(request, view)
            continue
        throttle.redis_wait = None
        key = throttle.get_cache_key(request, view) if throttle.rate is not None else None
        if key is not None:
            keyed.append((throttle, cache.make_key(f"rl:{key}")))
    if not keyed:
        return [others.get(id(throttle), True) for throttle in throttles]
    now_ms = int(time.time() * 1000)
    args = [now_ms, f"{now_ms}:{secrets.token_hex(6)}"]
    for throttle, _key in keyed:
        args += [throttle.num_requests, throttle.duration * 1000]
    waits = script(keys=[key for _throttle, key in keyed], args=args)
    refused = set()
    for (throttle, _key), wait_ms in zip(keyed, waits, strict=True):
        if wait_ms:
            throttle.redis_wait = wait_ms / 1000
            refused.add(id(throttle))
    return [others.get(id(throttle), id(throttle) not in refused) for throttle in throttles]


def _drf_allow(throttle, request, view) -> bool:
    if not isinstance(throttle, SlidingWindowThrottle):
        return throttle.allow_request(request, view)
    throttle.redis_wait = None
    return throttling.SimpleRateThrottle.allow_request(throttle, request, view)


def _script():
    """The Lua script registered with the cache's Redis client, or None when the cache is not Redis."""
    backend = caches[DEFAULT_CACHE_ALIAS]
    if not isinstance(backend, RedisCache):
        return None
    client = backend._cache.get_client(write=True)
    script = _scripts.get(client)
    if script is None:
        script = _scripts[client] = client.register_script(_SLIDING_WINDOW)
    return script


class ThrottledViewMixin:
    """Checks a view's throttles with `check_throttles` (one Redis round trip) instead of one by one."""

    def check_throttles(self, request):
        throttles = self.get_throttles()
        allowed = check_throttles(throttles, request, self)
        waits = [throttle.wait() for throttle, ok in zip(throttles, allowed, strict=True) if not ok]
        if waits:
            known = [wait for wait in waits if wait is not None]
            self.throttled(request, max(known, default=None))


class UserRateThrottle(SlidingWindowThrottle, throttling.UserRateThrottle):
    scope = "user"


class AnonRateThrottle(SlidingWindowThrottle, throttling.AnonRateThrottle):
    scope = "anon"


class AuthRateThrottle(SlidingWindowThrottle):
    """Token and register: per client address, whoever the caller claims to be."""

    scope = "auth"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class ExecuteRateThrottle(SlidingWindowThrottle):
    """Execute calls, counted per workspace so that many users of one workspace share one budget."""

    scope = "execute"

    def get_cache_key(self, request, view):
        workspace = getattr(request, "workspace", None)
        ident = f"ws:{workspace.pk}" if workspace is not None else f"user:{request.user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class TestRunThrottle(SlidingWindowThrottle, throttling.UserRateThrottle):
    """Test runs, per user: each holds a web worker for up to a minute while its steps run
    (`API_THROTTLE_TEST_RUN`, default 10/min)."""

    scope = "test_run"


class WebhookTriggerThrottle(SlidingWindowThrottle):
    """Inbound webhooks, counted per trigger (its URL token, hashed), whoever sends them."""

    scope = "webhook"

    def get_cache_key(self, request, view):
        token = view.kwargs.get("token", "")
        return self.cache_format % {"scope": self.scope, "ident": hashlib.sha256(token.encode()).hexdigest()[:32]}
