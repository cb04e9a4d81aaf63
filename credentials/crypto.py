"""AES-256-GCM encryption of credential values, with key rotation.

Keys come from ``CONNECTORS_ENCRYPTION_KEYS``: comma-separated ``KEYID:BASE64KEY`` entries holding 32-byte
keys. The first entry is the primary key and encrypts every new value; every listed key can still decrypt,
because each token names the key that made it::

    v1:<key id>:<base64url(nonce || ciphertext || tag)>

The nonce is 12 random bytes per encryption and the tag is GCM's 16 bytes. The payload is URL-safe base64
without padding and must be canonical (re-encoding the decoded bytes gives the same text), so no character of
a stored token can change without decryption failing. The caller passes *associated data* that is
authenticated but not stored: credentials bind a value to its workspace and service name with
:func:`credential_associated_data`, so a ciphertext copied to another row does not decrypt.

Rotating: put a new key first (``k2:...,k1:...``), re-encrypt every value whose :meth:`Keyring.needs_rotation`
is true (``manage.py rotate_encryption_key``), then drop the old key.

This module imports nothing from Django so it can be used by settings and tested in isolation.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import re
import secrets
import stat
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from credentials.names import SERVICE_NAME_RE

logger = logging.getLogger(__name__)

ENV_VAR = "CONNECTORS_ENCRYPTION_KEYS"
TOKEN_VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
KEY_GENERATION_COMMAND = "python -c \"import base64, os; print('k1:' + base64.b64encode(os.urandom(32)).decode())\""

_STANDARD_B64_RE = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_URLSAFE_B64_RE = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")
_TOKEN_PAYLOAD_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_ASSOCIATED_DATA_LABEL = b"connectors.credential.v1"
# How long a reader waits for a key file that another process has created but not yet filled (only possible
# when the file system has no hard links, see load_or_create_local_keys).
_EMPTY_FILE_WAIT_SECONDS = 2.0


class KeyConfigError(ValueError):
    """The key configuration is missing or malformed; the message says how to fix it and holds no key text."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(
            f"{problem}. {ENV_VAR} must be comma-separated KEYID:BASE64KEY entries, each key 32 random "
            "bytes in base64 and the first entry the one that encrypts. Generate a key with: "
            f"{KEY_GENERATION_COMMAND}"
        )


class DecryptionError(Exception):
    """A token could not be decrypted. The message never holds plaintext, key material or the token itself."""


def _decode_key(text: str) -> bytes | None:
    """Standard or URL-safe base64, padding optional; None when ``text`` is valid base64 of neither kind."""
    if _STANDARD_B64_RE.match(text):
        altchars = None
    elif _URLSAFE_B64_RE.match(text):
        altchars = b"-_"
    else:
        return None
    unpadded = text.rstrip("=")
    padded = unpadded + "=" * (-len(unpadded) % 4)
    if len(padded) != len(text) and len(unpadded) != len(text):
        return None  # wrong amount of padding
    try:
        return base64.b64decode(padded, altchars=altchars, validate=True)
    except binascii.Error:
        return None


def parse_keys(value: str | None) -> Keyring:
    """Parse a ``CONNECTORS_ENCRYPTION_KEYS`` value into a :class:`Keyring`; the first entry is the primary.

    Whitespace around entries, ids and keys is ignored. Raises :class:`KeyConfigError` for an empty value, an
    empty entry, an entry without ``:``, an invalid or repeated key id, or a key that is not base64 of exactly
    32 bytes; the message names the entry by position (and key id once that is known to be valid), never
    echoing key text.
    """
    if value is None or not value.strip():
        raise KeyConfigError(f"{ENV_VAR} is missing or empty")
    entries: list[tuple[str, bytes]] = []
    positions: dict[str, int] = {}
    for position, raw_entry in enumerate(value.split(","), start=1):
        entry = raw_entry.strip()
        if not entry:
            raise KeyConfigError(f"entry {position} of {ENV_VAR} is empty (check for stray commas)")
        key_id, colon, key_text = entry.partition(":")
        if not colon:
            raise KeyConfigError(f"entry {position} of {ENV_VAR} is not of the form KEYID:BASE64KEY (no ':')")
        key_id, key_text = key_id.strip(), key_text.strip()
        if not KEY_ID_RE.match(key_id):
            # The id is not echoed: an entry written the wrong way round would put the key here.
            raise KeyConfigError(
                f"entry {position} of {ENV_VAR} has an invalid key id: use 1 to 32 letters, digits, '_' or '-'"
            )
        where = f"entry {position} (key id {key_id!r}) of {ENV_VAR}"
        if key_id in positions:
            raise KeyConfigError(f"{where} repeats the key id of entry {positions[key_id]}")
        if not key_text:
            raise KeyConfigError(f"{where} has no key after ':'")
        key = _decode_key(key_text)
        if key is None:
            raise KeyConfigError(f"{where} is not valid base64")
        if len(key) != KEY_BYTES:
            raise KeyConfigError(f"{where} decodes to {len(key)} bytes; AES-256 needs exactly {KEY_BYTES}")
        positions[key_id] = position
        entries.append((key_id, key))
    return Keyring(entries)


class Keyring:
    """The configured keys: the primary encrypts, any of them decrypts the tokens that name it.

    Build one with :func:`parse_keys`, or directly from ``(key_id, 32-byte key)`` pairs, primary first.
    """

    __slots__ = ("_ciphers", "key_ids", "primary_key_id")

    def __init__(self, keys: Iterable[tuple[str, bytes]]) -> None:
        ciphers: dict[str, AESGCM] = {}
        for key_id, key in keys:
            if not KEY_ID_RE.match(key_id):
                raise ValueError("key ids must be 1 to 32 letters, digits, '_' or '-'")
            if key_id in ciphers:
                raise ValueError(f"key id {key_id!r} is repeated")
            if not isinstance(key, bytes) or len(key) != KEY_BYTES:
                raise ValueError(f"key {key_id!r} must be exactly {KEY_BYTES} bytes")
            ciphers[key_id] = AESGCM(key)
        if not ciphers:
            raise ValueError("a keyring needs at least one key")
        self._ciphers = ciphers
        self.key_ids: tuple[str, ...] = tuple(ciphers)
        self.primary_key_id: str = self.key_ids[0]

    def __repr__(self) -> str:
        return f"<Keyring primary={self.primary_key_id!r} key_ids={self.key_ids!r}>"

    def encrypt(self, plaintext: bytes, *, associated_data: bytes) -> str:
        """Encrypt with the primary key and a fresh random nonce; returns a ``v1:<key id>:<payload>`` text."""
        if not isinstance(plaintext, bytes) or not isinstance(associated_data, bytes):
            raise TypeError("plaintext and associated_data must be bytes")
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.primary_key_id].encrypt(nonce, plaintext, associated_data)
        payload = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
        return f"{TOKEN_VERSION}:{self.primary_key_id}:{payload}"

    def decrypt(self, token: str, *, associated_data: bytes) -> bytes:
        """Decrypt a token made by :meth:`encrypt` with the same associated data.

        Raises :class:`DecryptionError` when the token is malformed, names a key id that is not configured,
        was changed in any way, or was made with other associated data (another workspace or service).
        """
        if not isinstance(associated_data, bytes):
            raise TypeError("associated_data must be bytes")
        key_id, blob = _split_token(token)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise DecryptionError(
                f"the value was encrypted with key id {key_id!r}, which is not configured in {ENV_VAR}; "
                "add that key back (after the primary) to read it"
            )
        try:
            return cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated_data)
        except InvalidTag:
            raise DecryptionError(
                "the value failed authentication: it was altered, or it belongs to another workspace or service"
            ) from None

    def reencrypt(self, token: str, *, associated_data: bytes) -> str:
        """Decrypt ``token`` and encrypt it again with the primary key (for rotation)."""
        return self.encrypt(self.decrypt(token, associated_data=associated_data), associated_data=associated_data)

    def key_id_of(self, token: str) -> str:
        """The key id a token names. Raises :class:`DecryptionError` for a malformed token."""
        return _split_token(token)[0]

    def needs_rotation(self, token: str) -> bool:
        """True when the token was not encrypted with the primary key."""
        return self.key_id_of(token) != self.primary_key_id


def _split_token(token: str) -> tuple[str, bytes]:
    if not isinstance(token, str):
        raise DecryptionError("the encrypted value is not a string")
    parts = token.split(":")
    if len(parts) != 3:
        raise DecryptionError("the encrypted value is malformed")
    version, key_id, payload = parts
    if version != TOKEN_VERSION:
        raise DecryptionError("the encrypted value has an unsupported format version")
    if not KEY_ID_RE.match(key_id) or not _TOKEN_PAYLOAD_RE.match(payload):
        raise DecryptionError("the encrypted value is malformed")
    try:
        blob = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    except binascii.Error:
        raise DecryptionError("the encrypted value is malformed") from None
    # Reject non-canonical encodings (spare bits set in the last character): the token text is not malleable.
    if base64.urlsafe_b64encode(blob).rstrip(b"=").decode("ascii") != payload:
        raise DecryptionError("the encrypted value is malformed")
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError("the encrypted value is truncated")
    return key_id, blob


def credential_associated_data(workspace_id: str | uuid.UUID, service_name: str) -> bytes:
    """Associated data that binds a credential ciphertext to its workspace and service name.

    A UUID (object or any spelling ``uuid.UUID`` accepts) is normalised to its canonical text so both forms
    bind the same. Each part is length-prefixed after a fixed label, so no two different pairs give the same
    bytes. Raises ValueError for a service name that does not match ``credentials.names.SERVICE_NAME_RE``.
    """
    try:
        workspace = str(uuid.UUID(str(workspace_id)))
    except ValueError:
        workspace = str(workspace_id)
    if not SERVICE_NAME_RE.match(service_name):
        raise ValueError(f"service_name must match {SERVICE_NAME_RE.pattern}")
    parts = [_ASSOCIATED_DATA_LABEL, workspace.encode("utf-8"), service_name.encode("ascii")]
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def generate_key_entry(key_id: str = "local") -> str:
    """A new ``KEYID:BASE64`` entry holding 32 random bytes (standard base64)."""
    if not KEY_ID_RE.match(key_id):
        raise ValueError("key ids must be 1 to 32 letters, digits, '_' or '-'")
    return f"{key_id}:{base64.b64encode(os.urandom(KEY_BYTES)).decode('ascii')}"


def load_or_create_local_keys(path: Path) -> str:
    """The key entries kept in ``path`` for embedded/development mode, creating the file on first use.

    An existing file's stripped content is returned as is (parse it with :func:`parse_keys`). Otherwise a new
    entry is written, readable by the owner only (0600), and returned. Creation is atomic and exclusive: the
    entry is written to a private temporary file (``O_CREAT | O_EXCL``) that is then hard-linked to ``path``,
    which fails if ``path`` exists, so the key file never appears half written and processes that race all end
    with the one key that won. Where the file system has no hard links, ``path`` itself is created with
    ``O_EXCL`` and a loser waits briefly for the winner's content. Raises :class:`KeyConfigError` if the file
    exists but stays empty.
    """
    path = Path(path)
    existing = _read_key_file(path)
    if existing is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    content = generate_key_entry() + "\n"
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        _write_exclusive(temporary, content)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process created it first: use its key
        except OSError:
            # No hard links here (some network or FAT file systems): create the file itself exclusively.
            with contextlib.suppress(FileExistsError):
                _write_exclusive(path, content)
    finally:
        temporary.unlink(missing_ok=True)
    result = _read_key_file(path)
    if result is None:  # deleted by someone else between our create and our read
        raise KeyConfigError(f"the local key file {path} disappeared while it was being created")
    return result


def _write_exclusive(path: Path, content: str) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, 0o600)
    try:
        data = content.encode("ascii")
        while data:
            data = data[os.write(fd, data) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_key_file(path: Path) -> str | None:
    """Stripped content of ``path``; None if it does not exist. Waits briefly while it is empty."""
    deadline = time.monotonic() + _EMPTY_FILE_WAIT_SECONDS
    while True:
        try:
            content = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        if content:
            break
        if time.monotonic() >= deadline:
            raise KeyConfigError(
                f"the local key file {path} is empty; delete it to have a new key generated, or put a "
                "KEYID:BASE64KEY entry in it"
            )
        time.sleep(0.02)
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
        logger.warning("The local key file %s is readable by other users; run: chmod 600 %s", path, path)
    return content
