"""Access tokens that logout can revoke: a per-user token version, checked at constant cost.

Access tokens are stateless JWTs; without help one keeps working after logout until it expires. Every token
this service issues carries the user's `token_version` in the `tv` claim (a token without it counts as
version 0). Logout and a password change increment the version, so every access token issued before stops
working at once, in every process. A user's other sessions are not logged out: their refresh tokens still
work and mint access tokens with the new version.

Cost: the user (with its version) comes from `workspaces.access`, which keeps it per process and reads it
again only when the user's access generation changed; a version change replaces the generation once it
commits. So a request costs one cache read, not a query, and a revoked token is refused in every process from
its next request on.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import transaction
from django.db.models import F
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken, Token
from rest_framework_simplejwt.utils import get_md5_hash_password

from workspaces import access
from workspaces.models import User

TOKEN_VERSION_CLAIM = "tv"
MAX_VALIDATED_TOKENS = 4096  # per process; past it the cache starts over

_validated: dict[bytes, Token] = {}


def token_version(token: Token) -> int:
    return int(token.get(TOKEN_VERSION_CLAIM, 0))


def stamp(token: Token, user: User) -> Token:
    """Writes the user's current version into `token` (and so into access tokens made from it)."""
    token[TOKEN_VERSION_CLAIM] = user.token_version
    return token


@transaction.atomic
def revoke_access_tokens(*, user: User) -> None:
    """Every access token issued to `user` so far stops working (logout, password change)."""
    User.objects.filter(pk=user.pk).update(token_version=F("token_version") + 1)
    user.refresh_from_db(fields=["token_version"])
    access.changed(user.pk)  # an update() sends no signal


class VersionedRefreshToken(RefreshToken):
    """A refresh token (and its access tokens) stamped with the user's token version."""

    @classmethod
    def for_user(cls, user: Any) -> VersionedRefreshToken:
        return stamp(super().for_user(user), user)  # type: ignore[return-value]


class VersionedJWTAuthentication(JWTAuthentication):
    """simplejwt's authentication, refusing access tokens whose version is older than the user's.

    A token that passed validation is kept (per process, until it expires) so that the next request with it
    skips decoding and checking the signature again: a client sends the same access token for 15 minutes.
    Whether it is still good (revoked, user deactivated) is checked on every request by `get_user`.
    """

    def get_validated_token(self, raw_token: bytes) -> Token:
        token = _validated.get(raw_token)
        if token is not None and token.get("exp", 0) > time.time():
            return token
        token = super().get_validated_token(raw_token)
        if len(_validated) >= MAX_VALIDATED_TOKENS:
            _validated.clear()
        _validated[raw_token] = token
        return token

    def get_user(self, validated_token: Token) -> User:
        user_id = validated_token.get(jwt_settings.USER_ID_CLAIM)
        if user_id is None:
            return super().get_user(validated_token)  # simplejwt's own error for a token without a user
        load = super().get_user  # the query, and simplejwt's checks, when the user is not cached
        user = access.user(user_id, access.generation(user_id), lambda: load(validated_token))
        # simplejwt's checks again, for a cached user
        if jwt_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        revoke_claim = validated_token.get(jwt_settings.REVOKE_TOKEN_CLAIM)
        if jwt_settings.CHECK_REVOKE_TOKEN and revoke_claim != get_md5_hash_password(user.password):
            raise AuthenticationFailed("The user's password has been changed.", code="password_changed")
        if token_version(validated_token) != user.token_version:
            raise _revoked()
        return user


def _revoked() -> AuthenticationFailed:
    return AuthenticationFailed("The token has been revoked (logout or password change).", code="token_revoked")


class VersionedJWTScheme(SimpleJWTScheme):
    """The OpenAPI description of VersionedJWTAuthentication: the same bearer JWT scheme (`jwtAuth`)."""

    target_class = "workspaces.tokens.VersionedJWTAuthentication"
