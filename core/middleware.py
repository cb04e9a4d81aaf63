"""Guarantees for API paths that no view can forget: JSON errors, 503 on database outages, body size limits."""

import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

API_PREFIXES = ("/api/", "/healthz")


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIXES)


class ApiErrorMiddleware:
    """Outermost layer: whatever goes wrong under an API path, the client gets JSON, never an HTML page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            response = self.get_response(request)
        except (OperationalError, InterfaceError):
            if not _is_api(request):
                raise
            logger.warning("Database unavailable while serving %s", request.path)
            return JsonResponse({"detail": "The database is unreachable; try again shortly."}, status=503)
        if _is_api(request) and response.status_code >= 400 and not _is_json(response):
            return JsonResponse(
                {"detail": response.reason_phrase or "Error"}, status=response.status_code, headers=_kept(response)
            )
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not _is_api(request):
            return None
        if isinstance(exception, OperationalError | InterfaceError):
            logger.warning("Database unavailable while serving %s", request.path)
            return JsonResponse({"detail": "The database is unreachable; try again shortly."}, status=503)
        logger.exception("Unhandled error while serving %s", request.path)
        return JsonResponse({"detail": "Internal server error."}, status=500)


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


def _kept(response: HttpResponse) -> dict[str, str]:
    return {name: response[name] for name in ("Retry-After", "Allow", "WWW-Authenticate") if name in response}


class RequestSizeLimitMiddleware:
    """Refuses a body over `MAX_REQUEST_BODY_BYTES` with 413 before anything reads it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Invalid Content-Length header."}, status=400)
        if length > settings.MAX_REQUEST_BODY_BYTES:
            return JsonResponse(
                {"detail": f"Request body is larger than the limit of {settings.MAX_REQUEST_BODY_BYTES} bytes."},
                status=413,
            )
        return self.get_response(request)


