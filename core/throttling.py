"""Rate limits per user, per workspace and per client address (rates from `API_THROTTLE_*`, docs/api.md §13)."""

import hashlib

from rest_framework import throttling


class UserRateThrottle(throttling.UserRateThrottle):
    scope = "user"


class AnonRateThrottle(throttling.AnonRateThrottle):
    scope = "anon"


class AuthRateThrottle(throttling.SimpleRateThrottle):
    """Token and register: per client address, whoever the caller claims to be."""

    scope = "auth"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class ExecuteRateThrottle(throttling.SimpleRateThrottle):
    """Execute calls, counted per workspace so that many users of one workspace share one budget."""

    scope = "execute"

    def get_cache_key(self, request, view):
        workspace = getattr(request, "workspace", None)
        ident = f"ws:{workspace.pk}" if workspace is not None else f"user:{request.user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class TestRunThrottle(throttling.UserRateThrottle):
    """Test runs, per user: each holds a web worker for up to a minute while its steps run
    (`API_THROTTLE_TEST_RUN`, default 10/min)."""

    scope = "test_run"


class WebhookTriggerThrottle(throttling.SimpleRateThrottle):
    """Inbound webhooks, counted per trigger (its URL token, hashed), whoever sends them."""

    scope = "webhook"

    def get_cache_key(self, request, view):
        token = view.kwargs.get("token", "")
        return self.cache_format % {"scope": self.scope, "ident": hashlib.sha256(token.encode()).hexdigest()[:32]}
