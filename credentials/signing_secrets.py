"""Standard Webhooks signing secrets (`whsec_` + base64 of 32 random bytes), kept encrypted with the vault.

Used by webhook triggers (inbound signatures) and outbound webhook endpoints. The ciphertext is bound to the
kind and id of the object that owns it, so a secret copied to another row does not decrypt.
"""

import base64
import secrets

from credentials.services import get_keyring

PREFIX = "whsec_"


def new_signing_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _associated_data(owner_kind: str, owner_id) -> bytes:
    return f"connectors.signing-secret.v1:{owner_kind}:{owner_id}".encode()


def seal(secret: str, *, owner_kind: str, owner_id) -> str:
    return get_keyring().encrypt(secret.encode(), associated_data=_associated_data(owner_kind, owner_id))


def unseal(token: str, *, owner_kind: str, owner_id) -> str:
    return get_keyring().decrypt(token, associated_data=_associated_data(owner_kind, owner_id)).decode()
