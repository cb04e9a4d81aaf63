"""Guarantees for API paths that no view can forget: JSON errors, 503 on database outages, body size limits."""

import logging
from io import BytesIO

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

API_PREFIXES = ("/api/", "/healthz", "/hooks/")


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
    """Refuses a body over `MAX_REQUEST_BODY_BYTES` with 413 before anything reads it.

    A chunked body (no Content-Length; the server, e.g. gunicorn, de-chunks `wsgi.input` and marks it
    `wsgi.input_terminated`) is read here up to one byte past the limit: over it, 413; within it, the body is
    handed on with its Content-Length set, since Django would otherwise read such a body as empty.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.MAX_REQUEST_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Invalid Content-Length header."}, status=400)
        if length > limit:
            return _too_large(limit)
        if not length and _is_chunked(request):
            body = request.META["wsgi.input"].read(limit + 1)
            if len(body) > limit:
                return _too_large(limit)
            request.META["CONTENT_LENGTH"] = str(len(body))
            request._stream = LimitedStream(BytesIO(body), len(body))
        return self.get_response(request)


def _is_chunked(request: HttpRequest) -> bool:
    return "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower() and bool(
        request.META.get("wsgi.input_terminated")
    )


def _too_large(limit: int) -> JsonResponse:
    return JsonResponse({"detail": f"Request body is larger than the limit of {limit} bytes."}, status=413)
