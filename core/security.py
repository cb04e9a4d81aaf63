"""HTTP hardening that Django does not ship: a brute-force brake on the admin login, and a Content Security
Policy (Django 5.2 has none built in) on the pages a browser renders."""

import logging

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

ADMIN_LOGIN_WINDOW_SECONDS = 15 * 60
ADMIN_LOGIN_MAX_FAILURES_PER_USERNAME = 5  # per client address and username
ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS = 30  # per client address, whatever the usernames

# Pages: the admin console (inline <style> and style attributes, SVG charts; no inline script) and the API
# docs (Swagger UI, served as the split view so its start-up script is a file). Everything else (JSON, the
# schema) gets a policy that allows nothing, which costs nothing and stops an answer being used as a page.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
API_POLICY = "default-src 'none'; frame-ancestors 'none'"


def client_address(request: HttpRequest) -> str:
    """The caller's address as the API throttles see it (REST_FRAMEWORK NUM_PROXIES decides whether
    X-Forwarded-For is believed)."""
    return BaseThrottle().get_ident(request) or "unknown"


class AdminLoginThrottleMiddleware:
    """Answers 429 to POST /admin/login/ after too many failed logins from one address (for one username, or
    in all), for ADMIN_LOGIN_WINDOW_SECONDS from the first failure. A successful login clears the username's
    count. Counters live in the cache (Redis when configured, so they hold across processes)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # reverse() costs a tenth of a millisecond: only a POST ending like the admin's login page pays it.
        if request.method != "POST" or not request.path.endswith("/login/") or request.path != reverse("admin:login"):
            return self.get_response(request)
        address = client_address(request)
        username = request.POST.get("username", "").strip().lower()[:254]
        keys = {
            f"admin-login-failures:address:{address}": ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS,
            f"admin-login-failures:username:{address}:{username}": ADMIN_LOGIN_MAX_FAILURES_PER_USERNAME,
        }
        if any((cache.get(key) or 0) >= limit for key, limit in keys.items()):
            logger.warning("Admin login throttled for %s", address)
            response = HttpResponse(
                "Too many failed logins. Try again later.", status=429, content_type="text/plain; charset=utf-8"
            )
            response["Retry-After"] = str(ADMIN_LOGIN_WINDOW_SECONDS)
            return response
        response = self.get_response(request)
        if response.status_code == 200:  # the form came back with errors: a failed login
            for key in keys:
                cache.add(key, 0, timeout=ADMIN_LOGIN_WINDOW_SECONDS)
                try:
                    cache.incr(key)
                except ValueError:  # expired between add and incr
                    cache.set(key, 1, timeout=ADMIN_LOGIN_WINDOW_SECONDS)
        elif response.status_code in (301, 302, 303):
            cache.delete(f"admin-login-failures:username:{address}:{username}")
        return response


class ContentSecurityPolicyMiddleware:
    """Sets Content-Security-Policy (unless a view set its own): PAGE_POLICY on the admin and the API docs,
    API_POLICY on everything else (JSON, the schema, health)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.page_prefixes = ("/admin/", "/api/docs")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" in response:
            return response
        page = request.path.startswith(self.page_prefixes)
        response["Content-Security-Policy"] = PAGE_POLICY if page else API_POLICY
        return response
