"""Times every request the web app answers, by view (the URL pattern's name, not the path: bounded labels)."""

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from monitoring.metrics import API_LATENCY, status_class

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or match._func_path) if match is not None else "unmatched"
        method = request.method if request.method in METHODS else "other"
        API_LATENCY.labels(view, method, status_class(response.status_code)).observe(time.perf_counter() - started)
        return response
