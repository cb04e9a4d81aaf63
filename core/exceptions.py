"""One error type for the domain and one handler that turns every error into JSON.

Services raise `DomainError` subclasses with a message, a code and an HTTP status; views never build error
responses by hand. The handler also covers what DRF leaves to Django: database outages become 503 and an
oversized body 413, always as `{"detail": ...}`.
"""

import logging

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, InterfaceError, OperationalError
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class DomainError(Exception):
    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class InvalidInput(DomainError):
    """Input that is well-formed but not acceptable; `field` names where the problem is, if anywhere."""

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message, code=code)
        self.field = field


class Conflict(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class Unprocessable(DomainError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "unprocessable"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unreachable; try again shortly."
    default_code = "service_unavailable"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def _domain_error_response(error: DomainError) -> Response:
    field = getattr(error, "field", None)
    body = {field: [error.message]} if field else {"detail": error.message, "code": error.code}
    response = Response(body, status=error.status_code)
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def api_exception_handler(exc, context):
    # Imported here: rest_framework.views loads the authentication classes, and those import this module.
    from rest_framework.views import exception_handler

    if isinstance(exc, DomainError):
        return _domain_error_response(exc)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, OperationalError | InterfaceError):
        logger.warning("Database unavailable: %s", type(exc).__name__)
        exc = ServiceUnavailable()
    elif isinstance(exc, DatabaseError):
        # Anything else the database refuses (e.g. a value out of range) is the caller's input.
        logger.info("Database refused the request: %s", exc)
        exc = exceptions.ValidationError({"detail": "The request could not be stored; check the values."})
    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        response["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
    return response
