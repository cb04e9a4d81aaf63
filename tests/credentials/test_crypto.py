import base64
import os
import stat
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credentials import crypto
from credentials.crypto import (
    KEY_GENERATION_COMMAND,
    DecryptionError,
    KeyConfigError,
    Keyring,
    credential_associated_data,
    generate_key_entry,
    load_or_create_local_keys,
    parse_keys,
)

WORKSPACE = "6f1c1a52-3b8e-4c1e-9d7a-0c2b5f0e8a11"
OTHER_WORKSPACE = "0b6a8f57-2f4c-4b9e-8a8e-5d1f3e2c7b90"
AAD = credential_associated_data(WORKSPACE, "numverify")

KEY_1 = base64.b64encode(bytes(range(32))).decode()
KEY_2 = base64.b64encode(bytes(range(100, 132))).decode()
K1 = f"k1:{KEY_1}"
K2 = f"k2:{KEY_2}"


def _payload(token: str) -> bytes:
    payload = token.split(":")[2]
    return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))


def _with_payload(token: str, blob: bytes) -> str:
    version, key_id, _ = token.split(":")
    return f"{version}:{key_id}:{base64.urlsafe_b64encode(blob).rstrip(b'=').decode()}"


def test_round_trip():
    keyring = parse_keys(K1)

    token = keyring.encrypt(b"secret-api-key", associated_data=AAD)

    assert keyring.decrypt(token, associated_data=AAD) == b"secret-api-key"


def test_empty_plaintext_round_trips():
    keyring = parse_keys(K1)

    token = keyring.encrypt(b"", associated_data=AAD)

    assert keyring.decrypt(token, associated_data=AAD) == b""


def test_token_is_self_describing():
    token = parse_keys(K1).encrypt(b"abc", associated_data=AAD)

    version, key_id, payload = token.split(":")
    assert (version, key_id) == ("v1", "k1")
    assert set(payload) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(_payload(token)) == 12 + 3 + 16


def test_token_does_not_contain_plaintext():
    token = parse_keys(K1).encrypt(b"plain-text-value", associated_data=AAD)

    assert b"plain-text-value" not in _payload(token)
    assert "plain-text-value" not in token


def test_nonce_differs_per_encryption():
    keyring = parse_keys(K1)

    tokens = [keyring.encrypt(b"same", associated_data=AAD) for _ in range(50)]

    assert len({_payload(token)[:12] for token in tokens}) == 50
    assert len(set(tokens)) == 50


def test_nonce_comes_from_os_urandom(monkeypatch):
    monkeypatch.setattr(crypto.os, "urandom", lambda n: b"\x07" * n)

    token = parse_keys(K1).encrypt(b"x", associated_data=AAD)

    assert _payload(token)[:12] == b"\x07" * 12


# b"hi" gives 12 nonce bytes, 2 ciphertext bytes and 16 tag bytes.
@pytest.mark.parametrize("position", range(12 + 2 + 16))
def test_changing_any_payload_byte_fails(position):
    keyring = parse_keys(K1)
    token = keyring.encrypt(b"hi", associated_data=AAD)
    blob = bytearray(_payload(token))
    blob[position] ^= 0x01

    with pytest.raises(DecryptionError):
        keyring.decrypt(_with_payload(token, bytes(blob)), associated_data=AAD)


# "v1:k1:" and 42 characters of base64url for 31 bytes; the last character has 4 spare bits, which a lax
# decoder would ignore.
@pytest.mark.parametrize("position", range(6 + 42))
def test_changing_any_character_of_the_token_fails(position):
    keyring = parse_keys(K1)
    token = keyring.encrypt(b"hi!", associated_data=AAD)
    assert len(token) == 48
    tampered = token[:position] + ("B" if token[position] == "A" else "A") + token[position + 1 :]

    with pytest.raises(DecryptionError):
        keyring.decrypt(tampered, associated_data=AAD)


def test_payload_with_spare_bits_set_fails():
    keyring = parse_keys(K1)
    token = keyring.encrypt(b"hi!", associated_data=AAD)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # 31 bytes fill 42 characters with 4 bits to spare: flipping the lowest decodes to the same bytes.
    last = alphabet[alphabet.index(token[-1]) ^ 1]
    tampered = token[:-1] + last
    assert _payload(tampered) == _payload(token)

    with pytest.raises(DecryptionError, match="malformed"):
        keyring.decrypt(tampered, associated_data=AAD)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "v1",
        "v1:k1",
        "v1:k1:",
        "v2:k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1:k1:AAAA",  # shorter than nonce + tag
        "v1:k1:not base64!",
        "v1:k1:AAAA:AAAA",
        "v1:bad id:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_malformed_token_fails(token):
    with pytest.raises(DecryptionError):
        parse_keys(K1).decrypt(token, associated_data=AAD)


def test_truncated_token_fails():
    keyring = parse_keys(K1)
    token = keyring.encrypt(b"hello", associated_data=AAD)

    with pytest.raises(DecryptionError):
        keyring.decrypt(token[:-4], associated_data=AAD)


def test_other_workspace_fails():
    keyring = parse_keys(K1)
    token = keyring.encrypt(b"value", associated_data=AAD)

    with pytest.raises(DecryptionError, match="another workspace or service"):
        keyring.decrypt(token, associated_data=credential_associated_data(OTHER_WORKSPACE, "numverify"))


def test_other_service_fails():
    keyring = parse_keys(K1)
    token = keyring.encrypt(b"value", associated_data=AAD)

    with pytest.raises(DecryptionError):
        keyring.decrypt(token, associated_data=credential_associated_data(WORKSPACE, "hunter"))


def test_decryption_error_holds_no_plaintext_key_or_token():
    keyring = parse_keys(K1)
    token = keyring.encrypt(b"very-secret-value", associated_data=AAD)

    with pytest.raises(DecryptionError) as excinfo:
        keyring.decrypt(token, associated_data=b"other")

    message = str(excinfo.value)
    assert "very-secret-value" not in message
    assert KEY_1 not in message
    assert token.split(":")[2] not in message


def test_rotation():
    old = parse_keys(K1)
    token = old.encrypt(b"value", associated_data=AAD)
    rotated = parse_keys(f"{K2},{K1}")

    assert rotated.decrypt(token, associated_data=AAD) == b"value"
    assert rotated.needs_rotation(token) is True

    new_token = rotated.reencrypt(token, associated_data=AAD)

    assert rotated.key_id_of(new_token) == "k2"
    assert rotated.needs_rotation(new_token) is False
    assert parse_keys(K2).decrypt(new_token, associated_data=AAD) == b"value"


def test_encrypt_after_rotation_uses_the_primary():
    keyring = parse_keys(f"{K2},{K1}")

    token = keyring.encrypt(b"value", associated_data=AAD)

    assert keyring.key_id_of(token) == "k2"
    assert token.startswith("v1:k2:")


def test_token_of_a_removed_key_fails():
    token = parse_keys(K1).encrypt(b"value", associated_data=AAD)

    with pytest.raises(DecryptionError, match="key id 'k1', which is not configured"):
        parse_keys(K2).decrypt(token, associated_data=AAD)


def test_keyring_exposes_ids_in_order():
    keyring = parse_keys(f"{K2},{K1}")

    assert keyring.primary_key_id == "k2"
    assert keyring.key_ids == ("k2", "k1")


def test_keyring_repr_holds_no_key_material():
    text = repr(parse_keys(K1))

    assert text == "<Keyring primary='k1' key_ids=('k1',)>"


def test_parse_tolerates_whitespace_around_entries_and_parts():
    keyring = parse_keys(f"  k2 : {KEY_2} ,\n k1:{KEY_1}  ")

    assert keyring.key_ids == ("k2", "k1")


def test_parse_accepts_urlsafe_and_unpadded_base64():
    raw = b"\xfb\xff" * 16  # encodes with '+' and '/' in standard base64
    urlsafe = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert "-" in urlsafe
    assert "_" in urlsafe

    keyring = parse_keys(f"u:{urlsafe}")
    token = keyring.encrypt(b"v", associated_data=b"")

    assert Keyring([("u", raw)]).decrypt(token, associated_data=b"") == b"v"


def test_parse_of_a_generated_entry_works():
    entry = generate_key_entry("k9")

    keyring = parse_keys(entry)

    assert keyring.key_ids == ("k9",)


@pytest.mark.parametrize(
    ("value", "expected", "key_text"),
    [
        ("", "is missing or empty", None),
        ("   ", "is missing or empty", None),
        (f"{K1},", "entry 2 of CONNECTORS_ENCRYPTION_KEYS is empty", None),
        (KEY_1, "entry 1 of CONNECTORS_ENCRYPTION_KEYS is not of the form KEYID:BASE64KEY", KEY_1),
        (f"bad id:{KEY_1}", "entry 1 of CONNECTORS_ENCRYPTION_KEYS has an invalid key id", KEY_1),
        (f"{'x' * 33}:{KEY_1}", "entry 1 of CONNECTORS_ENCRYPTION_KEYS has an invalid key id", KEY_1),
        (
            f"{K1},k1:{KEY_2}",
            "entry 2 (key id 'k1') of CONNECTORS_ENCRYPTION_KEYS repeats the key id of entry 1",
            KEY_2,
        ),
        ("k1:", "entry 1 (key id 'k1') of CONNECTORS_ENCRYPTION_KEYS has no key", None),
        (
            "k1:not*base64*at*all",
            "entry 1 (key id 'k1') of CONNECTORS_ENCRYPTION_KEYS is not valid base64",
            "not*base64",
        ),
        (f"k1:{KEY_1}===", "is not valid base64", KEY_1),
        (f"k1:{KEY_1[:-1]}+_", "is not valid base64", KEY_1[:-4]),
        (
            f"{K1},k2:{base64.b64encode(b'0123456789abcdef').decode()}",
            "entry 2 (key id 'k2') of CONNECTORS_ENCRYPTION_KEYS decodes to 16 bytes; AES-256 needs exactly 32",
            base64.b64encode(b"0123456789abcdef").decode(),
        ),
        (
            f"k1:{base64.b64encode(b'x' * 33).decode()}",
            "decodes to 33 bytes; AES-256 needs exactly 32",
            base64.b64encode(b"x" * 33).decode(),
        ),
    ],
)
def test_bad_key_configuration_is_explained(value, expected, key_text):
    with pytest.raises(KeyConfigError) as excinfo:
        parse_keys(value)

    message = str(excinfo.value)
    assert expected in message
    assert "CONNECTORS_ENCRYPTION_KEYS" in message
    assert KEY_GENERATION_COMMAND in message
    if key_text is not None:
        assert key_text not in message


def test_missing_configuration_is_explained():
    with pytest.raises(KeyConfigError, match="CONNECTORS_ENCRYPTION_KEYS is missing or empty"):
        parse_keys(None)


def test_key_config_error_is_a_value_error():
    assert issubclass(KeyConfigError, ValueError)


def test_generation_hint_produces_a_valid_entry():
    command = KEY_GENERATION_COMMAND.removeprefix('python -c "').removesuffix('"')
    namespace: dict = {}
    printed: list[str] = []
    namespace["print"] = printed.append

    exec(command, namespace)

    assert parse_keys(printed[0]).key_ids == ("k1",)


def test_generate_key_entry_gives_fresh_32_byte_keys():
    first = generate_key_entry()
    second = generate_key_entry()

    key_id, _, key = first.partition(":")
    assert key_id == "local"
    assert len(base64.b64decode(key, validate=True)) == 32
    assert first != second


def test_generate_key_entry_rejects_a_bad_id():
    with pytest.raises(ValueError, match="key ids"):
        generate_key_entry("no spaces")


def test_associated_data_differs_by_workspace_and_service():
    values = {
        credential_associated_data(WORKSPACE, "numverify"),
        credential_associated_data(OTHER_WORKSPACE, "numverify"),
        credential_associated_data(WORKSPACE, "numverify2"),
    }

    assert len(values) == 3


def test_associated_data_is_unambiguous():
    assert credential_associated_data("ab", "c") != credential_associated_data("a", "bc")


def test_associated_data_treats_uuid_objects_and_text_alike():
    assert credential_associated_data(uuid.UUID(WORKSPACE), "svc") == credential_associated_data(WORKSPACE, "svc")
    assert credential_associated_data(WORKSPACE.upper(), "svc") == credential_associated_data(WORKSPACE, "svc")


@pytest.mark.parametrize("service_name", ["", "Upper", "-lead", "has space", "a" * 65, "a.b"])
def test_associated_data_rejects_an_invalid_service_name(service_name):
    with pytest.raises(ValueError, match="service_name"):
        credential_associated_data(WORKSPACE, service_name)


def test_local_key_file_is_created_private_and_reused(tmp_path):
    path = tmp_path / "nested" / "dir" / "encryption_keys"

    first = load_or_create_local_keys(path)
    second = load_or_create_local_keys(path)

    assert first == second
    assert path.read_text() == first + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert parse_keys(first).key_ids == ("local",)
    assert [p.name for p in path.parent.iterdir()] == ["encryption_keys"]


def test_existing_local_key_file_is_returned_stripped(tmp_path):
    path = tmp_path / "keys"
    path.write_text(f"\n  {K2},{K1}  \n")

    assert load_or_create_local_keys(path) == f"{K2},{K1}"


def test_empty_local_key_file_is_explained(tmp_path, monkeypatch):
    monkeypatch.setattr(crypto, "_EMPTY_FILE_WAIT_SECONDS", 0)
    path = tmp_path / "keys"
    path.write_text("\n")

    with pytest.raises(KeyConfigError, match="is empty; delete it"):
        load_or_create_local_keys(path)


def test_local_key_file_race_lost_uses_the_winners_key(tmp_path, monkeypatch):
    path = tmp_path / "keys"
    real_link = os.link

    def other_process_wins(source, destination):
        path.write_text(f"{K1}\n")
        real_link(source, destination)

    monkeypatch.setattr(crypto.os, "link", other_process_wins)

    assert load_or_create_local_keys(path) == K1
    assert [p.name for p in tmp_path.iterdir()] == ["keys"]


def test_local_key_file_without_hard_links_is_created_exclusively(tmp_path, monkeypatch):
    def no_hard_links(source, destination):
        raise PermissionError("hard links not supported")

    monkeypatch.setattr(crypto.os, "link", no_hard_links)
    path = tmp_path / "keys"

    entry = load_or_create_local_keys(path)

    assert parse_keys(entry).key_ids == ("local",)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["keys"]


def test_concurrent_creators_end_with_one_key(tmp_path):
    path = tmp_path / "keys"
    barrier = threading.Barrier(16)

    def create():
        barrier.wait()
        return load_or_create_local_keys(path)

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda _: create(), range(16)))

    assert len(set(results)) == 1
    assert path.read_text().strip() == results[0]


@given(
    plaintext=st.binary(max_size=2048),
    workspace=st.uuids(),
    service=st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,63}\Z"),
)
def test_round_trip_property(plaintext, workspace, service):
    keyring = parse_keys(f"{K2},{K1}")
    associated_data = credential_associated_data(str(workspace), service)

    token = keyring.encrypt(plaintext, associated_data=associated_data)

    assert keyring.decrypt(token, associated_data=associated_data) == plaintext
