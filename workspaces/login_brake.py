"""A brute-force brake on POST /api/v1/auth/token, per account, like the admin login's.

The auth throttle limits requests per client address; this brake limits failed logins per account, so that
guessing one account's password from many addresses gets nowhere either. Within LOGIN_WINDOW_SECONDS of the
first failure: after MAX_FAILURES_PER_ACCOUNT failures for an email from anywhere, or
MAX_FAILURES_PER_ADDRESS_AND_ACCOUNT from one address, that email gets 429 with Retry-After until the window
ends, even with the right password. A successful login clears the address's count for the email. Counters
live in the cache (Redis when configured, so they hold across processes).

Trade-off: anyone can lock an account out of new logins for the window by failing on purpose; sessions
already open (refresh tokens) keep working, and the window is short.
"""

from __future__ import annotations

import hashlib
import logging

from django.core.cache import cache
from django.http import HttpRequest
from rest_framework.exceptions import Throttled

from core.security import client_address

logger = logging.getLogger(__name__)

LOGIN_WINDOW_SECONDS = 15 * 60
MAX_FAILURES_PER_ACCOUNT = 20
MAX_FAILURES_PER_ADDRESS_AND_ACCOUNT = 5


def _keys(request: HttpRequest, email: str) -> dict[str, int]:
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]  # no email in cache keys
    return {
        f"token-login-failures:account:{account}": MAX_FAILURES_PER_ACCOUNT,
        f"token-login-failures:address:{client_address(request)}:{account}": MAX_FAILURES_PER_ADDRESS_AND_ACCOUNT,
    }


def check(request: HttpRequest, email: str) -> None:
    """Raises Throttled (429, Retry-After) when the email has failed too often."""
    keys = _keys(request, email)
    counts = cache.get_many(list(keys))
    if any(counts.get(key, 0) >= limit for key, limit in keys.items()):
        logger.warning("Token login braked for an account after repeated failures")
        raise Throttled(wait=LOGIN_WINDOW_SECONDS, detail="Too many failed logins for this account. Try again later.")


def failed(request: HttpRequest, email: str) -> None:
    for key in _keys(request, email):
        cache.add(key, 0, timeout=LOGIN_WINDOW_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=LOGIN_WINDOW_SECONDS)


def succeeded(request: HttpRequest, email: str) -> None:
    address_key = list(_keys(request, email))[1]
    cache.delete(address_key)
