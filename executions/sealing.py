"""Encryption of the few step results that later steps send as auth (e.g. a token from a login step).

They are redacted in everything stored, so a resumed execution could not use them; they are kept here,
encrypted with the vault's keyring and bound to their execution and step. An execution resumed after its key
was removed from CONNECTORS_ENCRYPTION_KEYS fails that step with a clear error instead of sending a redacted
value.
"""

import json

from django.conf import settings

from credentials.crypto import DecryptionError


def _associated_data(execution_id, index: int) -> bytes:
    return f"connectors/execution-step/v1|{execution_id}|{index}".encode()


def seal(execution_id, index: int, values: list) -> str:
    if not values:
        return ""
    plaintext = json.dumps(values, ensure_ascii=False).encode()
    return settings.CONNECTORS_ENCRYPTION_KEYRING.encrypt(
        plaintext, associated_data=_associated_data(execution_id, index)
    )


def unseal(execution_id, index: int, token: str) -> list:
    """The sealed values, or [] when there are none or they can no longer be decrypted."""
    if not token:
        return []
    try:
        plaintext = settings.CONNECTORS_ENCRYPTION_KEYRING.decrypt(
            token, associated_data=_associated_data(execution_id, index)
        )
    except DecryptionError:
        return []
    return json.loads(plaintext)
