"""Writes to the credentials vault: storing, replacing, deleting, decrypting, marking use and key rotation.

Every value of a credential is encrypted together, as one JSON object, with the primary key of
``settings.CONNECTORS_ENCRYPTION_KEYRING`` and bound to its workspace and service name (see
``credentials.crypto``).
Only the sorted field names are stored in clear, for listing. Nothing here logs or raises a value.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from audit import services as audit
from credentials.crypto import DecryptionError, Keyring, credential_associated_data
from credentials.models import Credential, CredentialType
from credentials.names import FIELD_NAME_RE, SERVICE_NAME_RE
from credentials.types import field_errors, rate_limit_errors
from workspaces.models import Workspace

logger = logging.getLogger(__name__)

# Field names are template path segments (`{{workspace.SERVICE.FIELD}}`), where `.` separates segments.
MAX_FIELDS = 50
MAX_VALUE_BYTES = 8 * 1024
# last_used_at is only rewritten when older than this, so busy credentials don't cost a write per execution.
MARK_USED_INTERVAL = timedelta(minutes=1)


def get_keyring() -> Keyring:
    """The configured keyring, read at call time (so tests and rotation see the current settings)."""
    return settings.CONNECTORS_ENCRYPTION_KEYRING


def _associated_data(workspace_id: UUID | str, service_name: str) -> bytes:
    return credential_associated_data(str(workspace_id), service_name)


def _check_input(service_name: str, fields: dict[str, str], credential_type: str, rate_limit: dict | None) -> None:
    # The API validates first and answers with field errors; this guards other callers. No value in messages.
    if not SERVICE_NAME_RE.match(service_name):
        raise ValueError(f"service_name must match {SERVICE_NAME_RE.pattern}")
    if not isinstance(fields, dict) or not 1 <= len(fields) <= MAX_FIELDS:
        raise ValueError(f"a credential needs 1 to {MAX_FIELDS} fields")
    for name, value in fields.items():
        if not isinstance(name, str) or not FIELD_NAME_RE.match(name):
            raise ValueError(f"field names must match {FIELD_NAME_RE.pattern}")
        if not isinstance(value, str) or not value.strip() or len(value.encode("utf-8")) > MAX_VALUE_BYTES:
            raise ValueError(f"the value of field {name!r} must be a non-blank string of at most 8 KiB")
    if credential_type not in CredentialType.values:
        raise ValueError(f"unknown credential type; use one of {', '.join(CredentialType.values)}")
    problems = field_errors(credential_type, fields)
    if problems:
        name = next(iter(problems))
        raise ValueError(f"{name}: {problems[name][0]}")
    if rate_limit_errors(rate_limit):
        raise ValueError(f"rate_limit: {rate_limit_errors(rate_limit)[0]}")


@transaction.atomic
def credential_upsert(
    *,
    workspace: Workspace,
    service_name: str,
    fields: dict[str, str],
    type: str = CredentialType.STATIC,
    rate_limit: dict | None = None,
) -> tuple[Credential, bool]:
    """Store the workspace's credential for ``service_name``, replacing any existing one (and forgetting
    any OAuth2 access token cached for the old one).

    Returns ``(credential, created)``. The whole object of fields is encrypted with the primary key. Safe
    under concurrency: the row is locked, or created under the unique constraint and, when another request
    created it first, updated instead, so two writers never end with two rows or an error. Raises ValueError
    for input the API would refuse.
    """
    _check_input(service_name, fields, type, rate_limit)
    keyring = get_keyring()
    plaintext = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    ciphertext = keyring.encrypt(plaintext, associated_data=_associated_data(workspace.id, service_name))
    credential, created = Credential.objects.update_or_create(
        workspace=workspace,
        service_name=service_name,
        defaults={
            "field_names": sorted(fields),
            "ciphertext": ciphertext,
            "key_id": keyring.primary_key_id,
            "type": type,
            "rate_limit": rate_limit,
            "token_ciphertext": "",
            "token_expires_at": None,
        },
    )
    logger.info("%s credential %s of workspace %s", "Stored" if created else "Replaced", service_name, workspace.id)
    audit.record(
        workspace_id=workspace.id,
        action="credential.created" if created else "credential.updated",
        target_type="credential",
        target_id=service_name,
        details={"fields": sorted(fields)},  # names only, never values
    )
    return credential, created


@transaction.atomic
def credential_delete(*, workspace: Workspace, service_name: str) -> bool:
    """Delete the workspace's credential for ``service_name``; False when there was none."""
    deleted, _ = Credential.objects.filter(workspace=workspace, service_name=service_name).delete()
    if deleted:
        logger.info("Deleted credential %s of workspace %s", service_name, workspace.id)
        audit.record(
            workspace_id=workspace.id, action="credential.deleted", target_type="credential", target_id=service_name
        )
    return bool(deleted)


def credential_decrypt(credential: Credential, *, keyring: Keyring | None = None) -> dict[str, str]:
    """The credential's fields in clear.

    Raises DecryptionError when the ciphertext names a key id that is not configured, was altered, or belongs
    to another workspace or service (it was copied from another row). The message never holds a value.
    """
    keyring = keyring or get_keyring()
    plaintext = keyring.decrypt(
        credential.ciphertext,
        associated_data=_associated_data(credential.workspace_id, credential.service_name),
    )
    try:
        fields = json.loads(plaintext)
    except ValueError:
        raise DecryptionError("the decrypted value is not a credential object") from None
    if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
        raise DecryptionError("the decrypted value is not a credential object")
    return fields


def credential_mark_used(credential_ids: Collection[int]) -> int:
    """Set last_used_at to now on these credentials, in one UPDATE; returns how many rows changed.

    A credential marked less than MARK_USED_INTERVAL ago is left alone: the time is approximate by design, so
    credentials used by many executions a second don't turn every execution into a row write.
    """
    if not credential_ids:
        return 0
    now = timezone.now()
    return (
        Credential.objects.filter(pk__in=list(credential_ids))
        .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - MARK_USED_INTERVAL))
        .update(last_used_at=now)
    )


def credential_key_usage() -> dict[str, int]:
    """How many credentials each key id encrypts, e.g. ``{"k1": 3, "k2": 120}``."""
    rows = Credential.objects.order_by("key_id").values_list("key_id").annotate(count=Count("pk"))
    return dict(rows)


@dataclass(frozen=True)
class RotationFailure:
    """A credential that could not be re-encrypted; ``reason`` holds no value."""

    credential_id: int
    workspace_id: str
    service_name: str
    key_id: str
    reason: str


@dataclass
class RotationBatch:
    """Progress of one batch: rows re-encrypted with the primary key, and rows that failed."""

    rotated: int = 0
    failures: list[RotationFailure] = field(default_factory=list)

    @property
    def processed(self) -> int:
        return self.rotated + len(self.failures)


def credentials_to_rotate(keyring: Keyring | None = None) -> int:
    """How many credentials are encrypted with a configured key that is not the primary."""
    keyring = keyring or get_keyring()
    return Credential.objects.filter(key_id__in=keyring.key_ids[1:]).count()


def rotate_credentials(*, batch_size: int = 500, keyring: Keyring | None = None) -> Iterator[RotationBatch]:
    """Re-encrypt with the primary key every credential that uses another configured key, one batch at a time.

    Yields a RotationBatch after each batch is committed. Each batch is one short transaction that locks its
    rows with ``SELECT ... FOR UPDATE SKIP LOCKED``, so the work can be interrupted at any point (committed
    batches stay done), run again (finished rows are no longer selected) and run by several processes at once
    (each takes rows the others don't hold). Rows are walked in primary-key order and a row that fails to
    decrypt is reported once and skipped, so it never stops the others. Rows locked by another writer during a
    pass are retried in a further pass; any still locked after a pass that changed nothing are left for the
    next run.

    Credentials whose key id is not configured are not touched (they cannot be decrypted); count them with
    credential_key_usage().
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    keyring = keyring or get_keyring()
    old_key_ids = keyring.key_ids[1:]
    if not old_key_ids:
        return
    failed_ids: set[int] = set()
    while True:
        rotated_in_pass = 0
        last_pk = 0
        while True:
            batch = RotationBatch()
            with transaction.atomic():
                rows = list(
                    Credential.objects.select_for_update(skip_locked=True)
                    .filter(key_id__in=old_key_ids, pk__gt=last_pk)
                    .exclude(pk__in=failed_ids)
                    .order_by("pk")
                    .only("pk", "workspace_id", "service_name", "ciphertext", "key_id")[:batch_size]
                )
                if not rows:
                    break
                last_pk = rows[-1].pk
                changed = []
                for row in rows:
                    try:
                        row.ciphertext = keyring.reencrypt(
                            row.ciphertext,
                            associated_data=_associated_data(row.workspace_id, row.service_name),
                        )
                    except DecryptionError as error:
                        failed_ids.add(row.pk)
                        batch.failures.append(
                            RotationFailure(row.pk, str(row.workspace_id), row.service_name, row.key_id, str(error))
                        )
                        continue
                    row.key_id = keyring.primary_key_id
                    # A cached OAuth2 access token is short-lived: dropped, not re-encrypted (the next use
                    # fetches a new one with the primary key).
                    row.token_ciphertext, row.token_expires_at = "", None
                    changed.append(row)
                # update_fields leaves updated_at alone: the credential's content did not change.
                Credential.objects.bulk_update(
                    changed, ["ciphertext", "key_id", "token_ciphertext", "token_expires_at"]
                )
                batch.rotated = len(changed)
            rotated_in_pass += batch.rotated
            for failure in batch.failures:
                logger.warning(
                    "Could not re-encrypt credential %s (%s of workspace %s): %s",
                    failure.credential_id,
                    failure.service_name,
                    failure.workspace_id,
                    failure.reason,
                )
            yield batch
        remaining = Credential.objects.filter(key_id__in=old_key_ids).exclude(pk__in=failed_ids).exists()
        if not remaining or not rotated_in_pass:
            return
