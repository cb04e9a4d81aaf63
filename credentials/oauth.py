"""OAuth2 access tokens for steps: cached encrypted on the credential row and shared by every execution.

`VaultTokenSource` is the runner's TokenSource (connectors/engine/oauth.py) for one execution. A token is
taken from the credential row while it is valid (`token_expires_at` is set shortly before the provider's
`expires_in` runs out); otherwise one process fetches a new one while holding the row's lock
(`SELECT ... FOR UPDATE`), and every other execution that needs one meanwhile waits on that lock and then
uses the token it wrote. So a refresh token is spent once: its successor (rotation) is written back, with
the new access token, in the same UPDATE, before the lock is released. A process-local lock does the same
for SQLite (embedded mode), where row locks do not exist.

Nothing here logs or raises a secret: errors name the credential, the token endpoint's status and its OAuth
`error` code.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from connectors.engine.credentials import MissingCredential
from connectors.engine.http import SafeHttpClient
from connectors.engine.oauth import OAUTH_CREDENTIAL_TYPES, TokenError, grant_form, request_token
from credentials.crypto import DecryptionError, credential_associated_data
from credentials.models import Credential
from credentials.provider import VaultCredentialProvider
from credentials.services import credential_decrypt, get_keyring

# A token is used until this long before it expires (at most a tenth of its lifetime).
EXPIRY_MARGIN = timedelta(seconds=30)
# Lifetime assumed when the token endpoint gives no `expires_in`: until then, or until a 401.
DEFAULT_LIFETIME = timedelta(hours=1)
_TOKEN_COLUMNS = ("pk", "workspace_id", "service_name", "type", "token_ciphertext", "token_expires_at")

_process_locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)


def _token_associated_data(workspace_id: uuid.UUID | str, service_name: str) -> bytes:
    """Binds a cached token to its credential, and keeps it apart from the credential's fields."""
    return credential_associated_data(str(workspace_id), service_name) + b"|oauth2-access-token"


def usable_until(now: datetime, expires_in: float | None) -> datetime:
    """When a token answered with `expires_in` seconds stops being used: shortly before it expires."""
    if expires_in is None or expires_in <= 0:
        return now + DEFAULT_LIFETIME
    lifetime = timedelta(seconds=expires_in)
    return now + lifetime - min(EXPIRY_MARGIN, lifetime / 10)


class VaultTokenSource:
    """Access tokens of one workspace's OAuth2 credentials, for one execution (not thread-safe)."""

    def __init__(self, provider: VaultCredentialProvider, client: SafeHttpClient) -> None:
        self.provider = provider
        self.workspace_id = provider.workspace_id
        self.client = client
        self._memo: dict[str, tuple[str, datetime]] = {}

    def access_token(self, service: str, *, rejected: str | None = None) -> str:
        """See connectors.engine.oauth.TokenSource. Raises TokenError."""
        now = timezone.now()
        memo = self._memo.get(service)
        if memo is not None and memo[0] != rejected and memo[1] > now:
            return memo[0]
        credential = self._row(service, lock=False)
        token = self._cached(credential, rejected, now)
        if token is None:
            with _process_locks[(str(self.workspace_id), service)], transaction.atomic():
                credential = self._row(service, lock=True)
                token = self._cached(credential, rejected, timezone.now())
                if token is None:
                    token = self._fetch(credential)
        self.provider.note_used(credential.pk)
        return token

    def _row(self, service: str, *, lock: bool) -> Credential:
        rows = Credential.objects.filter(workspace_id=self.workspace_id, service_name=service)
        if lock:
            rows = rows.select_for_update(of=("self",))
        credential = rows.only(*_TOKEN_COLUMNS, *(("ciphertext", "key_id") if lock else ())).first()
        if credential is None:
            raise TokenError(str(MissingCredential(service)))
        if credential.type not in OAUTH_CREDENTIAL_TYPES:
            raise TokenError(
                f"the credential {service!r} is a {credential.type} credential, not OAuth2; store it with type "
                "oauth2_client_credentials or oauth2_refresh_token, or use another auth type"
            )
        return credential

    def _cached(self, credential: Credential, rejected: str | None, now: datetime) -> str | None:
        """The row's token if it is still usable and not the one just rejected; None otherwise (an
        undecryptable token, e.g. after a key change, is simply fetched again)."""
        if not credential.token_ciphertext or credential.token_expires_at is None:
            return None
        if credential.token_expires_at <= now:
            return None
        try:
            token = (
                get_keyring()
                .decrypt(
                    credential.token_ciphertext,
                    associated_data=_token_associated_data(credential.workspace_id, credential.service_name),
                )
                .decode()
            )
        except (DecryptionError, UnicodeDecodeError):
            return None
        if token == rejected:
            return None
        self._memo[credential.service_name] = (token, credential.token_expires_at)
        return token

    def _fetch(self, credential: Credential) -> str:
        """Asks the token endpoint (the row is locked) and stores the answer: the new access token and, when
        the endpoint rotated it, the new refresh token."""
        try:
            fields = credential_decrypt(credential)
        except DecryptionError as error:
            raise TokenError(f"the credential {credential.service_name!r} could not be decrypted ({error})") from None
        try:
            grant = request_token(
                self.client,
                token_url=fields["token_url"],
                client_id=fields["client_id"],
                client_secret=fields["client_secret"],
                form=grant_form(credential.type, fields),
            )
        except KeyError as missing:
            raise TokenError(f"the credential {credential.service_name!r} has no {missing.args[0]} field") from None
        except TokenError as error:
            raise TokenError(f"{error.message}", transient=error.transient) from None
        keyring = get_keyring()
        now = timezone.now()
        expires_at = usable_until(now, grant.expires_in)
        changes: dict[str, object] = {
            "token_ciphertext": keyring.encrypt(
                grant.access_token.encode(),
                associated_data=_token_associated_data(credential.workspace_id, credential.service_name),
            ),
            "token_expires_at": expires_at,
        }
        if grant.refresh_token and grant.refresh_token != fields.get("refresh_token") and "refresh_token" in fields:
            fields["refresh_token"] = grant.refresh_token
            plaintext = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
            changes["ciphertext"] = keyring.encrypt(
                plaintext,
                associated_data=credential_associated_data(str(credential.workspace_id), credential.service_name),
            )
            changes["key_id"] = keyring.primary_key_id
        Credential.objects.filter(pk=credential.pk).update(**changes)
        self._memo[credential.service_name] = (grant.access_token, expires_at)
        return grant.access_token
