"""Who is acting: the request being served (API or admin), or nobody (commands, workers, beat: `system`).

`AuditRequestMiddleware` keeps the Django request in a context variable for the length of the request. DRF
sets the authenticated user and its credentials (`auth`) on that same underlying request once it has
authenticated the caller, so services read the actor at the moment they record, whatever authenticated it:
a JWT user, an admin session, or an API key (any `request.auth` with a `prefix`).
"""

import ipaddress
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse

from audit.models import SYSTEM_ACTOR

_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)


@dataclass(frozen=True)
class Actor:
    name: str
    ip: str | None = None


class AuditRequestMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address, believing X-Forwarded-For only for API_TRUSTED_PROXIES proxies (as throttles do)."""
    # Imported here: DRF's settings import the authentication classes, which record audit entries.
    from rest_framework.throttling import BaseThrottle

    ident = (BaseThrottle().get_ident(request) or "").strip()
    try:
        return str(ipaddress.ip_address(ident))
    except ValueError:
        return None  # absent, or a malformed forwarded address


def current_actor() -> Actor:
    request = _request.get()
    if request is None:
        return Actor(SYSTEM_ACTOR)
    auth = getattr(request, "auth", None)
    prefix = getattr(auth, "prefix", None)
    if isinstance(prefix, str) and prefix:
        return Actor(f"api_key:{prefix}", client_ip(request))
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Actor(user.email, client_ip(request))
    return Actor(SYSTEM_ACTOR, client_ip(request))
