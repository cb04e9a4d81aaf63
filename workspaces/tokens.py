"""Access tokens that logout can revoke: a per-user token version, checked at constant cost.

Access tokens are stateless JWTs; without help one keeps working after logout until it expires. Every token
this service issues carries the user's `token_version` in the `tv` claim (a token without it counts as
version 0). Logout and a password change increment the version, so every access token issued before stops
working at once, in every process. A user's other sessions are not logged out: their refresh tokens still
work and mint access tokens with the new version.

Cost: the version lives on the user row, which authentication loads anyway (no extra query), and in the cache
(`token-version:<user id>`), so a revoked token is refused from the cache before the user is read. A fast path
that wants to skip the user query reads `cached_version()`; the cache is filled by authentication and updated
when the version changes (after commit), and a cache miss always falls back to the row.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken, Token

from workspaces.models import User

TOKEN_VERSION_CLAIM = "tv"
CACHE_SECONDS = 24 * 60 * 60


def _cache_key(user_id: Any) -> str:
    return f"token-version:{user_id}"


def cached_version(user_id: Any) -> int | None:
    """The user's token version as cached, or None when the cache does not know it (read the user then)."""
    return cache.get(_cache_key(user_id))


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
    version = user.token_version
    transaction.on_commit(lambda: cache.set(_cache_key(user.pk), version, CACHE_SECONDS))


class VersionedRefreshToken(RefreshToken):
    """A refresh token (and its access tokens) stamped with the user's token version."""

    @classmethod
    def for_user(cls, user: Any) -> VersionedRefreshToken:
        return stamp(super().for_user(user), user)  # type: ignore[return-value]


class VersionedJWTAuthentication(JWTAuthentication):
    """simplejwt's authentication, refusing access tokens whose version is older than the user's."""

    def get_user(self, validated_token: Token) -> User:
        claimed = token_version(validated_token)
        user_id = validated_token.get(jwt_settings.USER_ID_CLAIM)
        cached = cached_version(user_id)
        if cached is not None and claimed < cached:  # versions only grow: older than the cache is revoked
            raise _revoked()
        user = super().get_user(validated_token)
        if cached is None:
            cache.add(_cache_key(user.pk), user.token_version, CACHE_SECONDS)
        elif cached != user.token_version:  # the cache lags a change that just committed
            cache.set(_cache_key(user.pk), user.token_version, CACHE_SECONDS)
        if claimed != user.token_version:
            raise _revoked()
        return user


def _revoked() -> AuthenticationFailed:
    return AuthenticationFailed("The token has been revoked (logout or password change).", code="token_revoked")


class VersionedJWTScheme(SimpleJWTScheme):
    """The OpenAPI description of VersionedJWTAuthentication: the same bearer JWT scheme (`jwtAuth`)."""

    target_class = "workspaces.tokens.VersionedJWTAuthentication"
