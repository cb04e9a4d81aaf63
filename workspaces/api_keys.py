"""API keys: issue, revoke, and authenticate (docs/api.md §16).

A key is `cnk_` + 43 URL-safe characters (32 random bytes). It is stored as HMAC-SHA256 keyed with a secret
derived from DJANGO_SECRET_KEY, never in the clear. A keyed hash rather than a slow password hash: the key
has 256 bits of entropy, so nothing can be guessed by brute force, and a fast hash keeps authentication to
one indexed lookup per request; the key on the HMAC means a leaked database alone cannot even confirm a
candidate key. `last_used_at` is written at most once a minute per key (a conditional UPDATE), not on every
request.
"""

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit import services as audit
from core.exceptions import InvalidInput
from workspaces.models import ApiKey, User, Workspace

KEY_PREFIX = "cnk_"
DISPLAY_PREFIX_LENGTH = 12
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash_key() -> bytes:
    return hmac.new(settings.SECRET_KEY.encode(), b"connectors-api-key-hash", hashlib.sha256).digest()


def key_hash(key: str) -> str:
    return hmac.new(_hash_key(), key.encode(), hashlib.sha256).hexdigest()


def looks_like_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


@transaction.atomic
def api_key_create(
    *, workspace: Workspace, name: str, role: str, expires_at: datetime | None, created_by: User | None
) -> tuple[ApiKey, str]:
    """A new key and its plaintext, which is returned here only and never stored. Raises InvalidInput for an
    `expires_at` that is not in the future."""
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput("Must be in the future.", field="expires_at")
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        workspace=workspace,
        name=name,
        role=role,
        expires_at=expires_at,
        created_by=created_by,
        prefix=plaintext[:DISPLAY_PREFIX_LENGTH],
        key_hash=key_hash(plaintext),
    )
    details = {"name": name, "role": role, "prefix": api_key.prefix}
    audit.record(
        workspace_id=workspace.pk, action="api_key.created", target=api_key, target_type="api_key", details=details
    )
    return api_key, plaintext


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey) -> None:
    """Stops the key at once; it disappears from the workspace's list."""
    if ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
        details = {"prefix": api_key.prefix}
        audit.record(
            workspace_id=api_key.workspace_id,
            action="api_key.deleted",
            target=api_key,
            target_type="api_key",
            details=details,
        )


def api_key_authenticate(plaintext: str) -> ApiKey | None:
    """The live key for `plaintext` (with its workspace), or None for an unknown, revoked or expired one."""
    api_key = (
        ApiKey.objects.select_related("workspace").filter(key_hash=key_hash(plaintext), revoked_at__isnull=True).first()
    )
    now = timezone.now()
    if api_key is None or (api_key.expires_at is not None and api_key.expires_at <= now):
        return None
    if api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_RESOLUTION:
        # Conditional, so concurrent requests of one key write it once per minute at most.
        stale = now - LAST_USED_RESOLUTION
        ApiKey.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale), pk=api_key.pk).update(
            last_used_at=now
        )
        api_key.last_used_at = now
    return api_key
