"""The vault as the runner sees it: a CredentialProvider over one workspace's stored credentials."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from types import MappingProxyType

from connectors.engine.credentials import MissingCredential
from credentials.crypto import DecryptionError
from credentials.models import Credential
from credentials.names import SERVICE_NAME_RE
from credentials.services import credential_decrypt, credential_mark_used

logger = logging.getLogger(__name__)


class UnreadableCredential(MissingCredential):
    """The workspace has a credential for the service but it cannot be decrypted with the configured keys.

    It is a MissingCredential, so the runner fails the step before sending anything, as for an absent one; the
    message says what an operator has to do and holds no value.
    """

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(service)
        self.reason = reason

    def __str__(self) -> str:
        return (
            f"the credential for service {self.service!r} could not be decrypted ({self.reason}); "
            "store it again under /workspace/credentials or ask an operator to check "
            "CONNECTORS_ENCRYPTION_KEYS"
        )


class VaultCredentialProvider:
    """Credentials of one workspace, for one execution.

    Each service costs one query and one decryption the first time it is asked for; the answer (fields, or
    absence) is then cached for the life of the instance, so an execution sees one consistent set of
    credentials.
    The credentials actually read are remembered; call :meth:`mark_used` once when the execution ends.
    Not thread-safe: one instance belongs to one execution.
    """

    def __init__(self, workspace_id: uuid.UUID | str) -> None:
        self.workspace_id = workspace_id
        self._cache: dict[str, Mapping[str, str] | None] = {}
        self._rate_limits: dict[str, dict | None] = {}
        self._used_ids: set[int] = set()

    def fields(self, service: str) -> Mapping[str, str]:
        """All fields of the service's credential (read-only).

        Raises MissingCredential when there is none, and UnreadableCredential (a MissingCredential) when it
        cannot be decrypted.
        """
        if service not in self._cache:
            self._cache[service] = self._load(service)
        found = self._cache[service]
        if found is None:
            raise MissingCredential(service)
        return found

    def _load(self, service: str) -> Mapping[str, str] | None:
        if not isinstance(service, str) or not SERVICE_NAME_RE.match(service):
            return None  # no stored credential can have this name
        credential = (
            Credential.objects.filter(workspace_id=self.workspace_id, service_name=service)
            .only("pk", "workspace_id", "service_name", "ciphertext", "rate_limit")
            .first()
        )
        if credential is None:
            return None
        self._rate_limits[service] = credential.rate_limit
        try:
            values = credential_decrypt(credential)
        except DecryptionError as error:
            logger.warning(
                "Credential %s of workspace %s could not be decrypted: %s", service, self.workspace_id, error
            )
            raise UnreadableCredential(service, str(error)) from None
        self._used_ids.add(credential.pk)
        return MappingProxyType(values)

    def rate_limit(self, service: str) -> dict | None:
        """The credential's `rate_limit` ({"requests", "per_seconds"}) or None (also for a missing one); read
        with the fields when they were read, else with one query, then cached."""
        if service not in self._rate_limits:
            self._rate_limits[service] = (
                Credential.objects.filter(workspace_id=self.workspace_id, service_name=service)
                .values_list("rate_limit", flat=True)
                .first()
            )
        return self._rate_limits[service]

    def note_used(self, credential_id: int) -> None:
        """Counts a credential read elsewhere for this execution (an OAuth2 token) in :meth:`mark_used`."""
        self._used_ids.add(credential_id)

    @property
    def services_used(self) -> list[str]:
        """Services whose credential was read, sorted."""
        return sorted(service for service, found in self._cache.items() if found is not None)

    def mark_used(self) -> int:
        """Record that the credentials read by this instance were used (see credential_mark_used)."""
        return credential_mark_used(self._used_ids)
