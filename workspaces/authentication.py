"""`Authorization: Bearer cnk_...`: API-key authentication, beside simplejwt's for people.

A key authenticates as an `ApiKeyPrincipal`, not a user: it acts as a member of its own workspace with its
role (workspaces.scoping turns it into that membership) and reaches only the views that accept keys
(`api_key_access`, true on the workspace-scoped data endpoints; false on members and API keys). Everything
else (auth, workspaces, admin, templates) answers 403 to a key.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from workspaces import api_keys
from workspaces.models import ApiKey


class ApiKeyPrincipal:
    """What `request.user` is for a key: authenticated, never staff, throttled under its own key id."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.pk = self.id = f"api-key:{api_key.pk}"
        self.email = f"api_key:{api_key.prefix}"

    def __str__(self) -> str:
        return self.email

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return False


class KeyNotAllowedHere(exceptions.PermissionDenied):
    default_detail = "API keys cannot use this endpoint; sign in as a user."


class ApiKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].lower() != self.keyword:
            return None
        token = parts[1].decode(errors="replace")
        if not api_keys.looks_like_key(token):
            return None  # a JWT: simplejwt's turn
        api_key = api_keys.api_key_authenticate(token)
        if api_key is None:
            raise exceptions.AuthenticationFailed("The API key is unknown, revoked or expired.", code="invalid_key")
        view = (request.parser_context or {}).get("view")
        if not getattr(view, "api_key_access", False):
            raise KeyNotAllowedHere()
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents API keys in the OpenAPI document as a bearer scheme of their own."""

    target_class = ApiKeyAuthentication
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API key: `Authorization: Bearer cnk_...`."}
