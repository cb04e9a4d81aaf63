import base64
import threading
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from credentials.crypto import parse_keys
from credentials.models import Credential
from credentials.services import credential_decrypt, credential_upsert, rotate_credentials
from tests.factories import WorkspaceFactory

KEY_0 = "k0:" + base64.b64encode(bytes(range(200, 232))).decode()
KEY_1 = "k1:" + base64.b64encode(bytes(range(32))).decode()
KEY_2 = "k2:" + base64.b64encode(bytes(range(100, 132))).decode()
SECRET = "sk_live_9f8e7d6c5b4a"


def use_keys(settings, value: str) -> None:
    settings.CONNECTORS_ENCRYPTION_KEYRING = parse_keys(value)


def rotate(**options) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("rotate_encryption_key", stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def store_three(acme, globex) -> dict[int, dict[str, str]]:
    stored = {}
    for workspace, service, fields in [
        (acme, "numverify", {"api_key": SECRET}),
        (acme, "hunter", {"token": "t-1", "account": "a"}),
        (globex, "numverify", {"api_key": "globex-key"}),
    ]:
        credential, _ = credential_upsert(workspace=workspace, service_name=service, fields=fields)
        stored[credential.pk] = fields
    return stored


def test_rotation_re_encrypts_every_credential_with_the_new_primary(settings, acme, globex):
    use_keys(settings, KEY_1)
    stored = store_three(acme, globex)
    use_keys(settings, f"{KEY_2},{KEY_1}")

    out, err = rotate()

    assert out.splitlines() == [
        "Re-encrypting 3 credential(s) with the primary key 'k2'.",
        "Re-encrypted 3 credential(s) with key 'k2'.",
        "Credentials per key id: k2: 3.",
        "No credential uses key id 'k1' any more: you can remove it from CONNECTORS_ENCRYPTION_KEYS once every "
        "process runs with the current key list.",
    ]
    assert err == ""
    assert set(Credential.objects.values_list("key_id", flat=True)) == {"k2"}
    assert all(c.ciphertext.startswith("v1:k2:") for c in Credential.objects.all())
    use_keys(settings, KEY_2)
    assert {c.pk: credential_decrypt(c) for c in Credential.objects.all()} == stored


def test_rotation_leaves_updated_at_alone(settings, acme, globex):
    use_keys(settings, KEY_1)
    store_three(acme, globex)
    before = dict(Credential.objects.values_list("pk", "updated_at"))
    use_keys(settings, f"{KEY_2},{KEY_1}")

    rotate()

    assert dict(Credential.objects.values_list("pk", "updated_at")) == before


def test_rerunning_rotation_is_a_no_op(settings, acme, globex):
    use_keys(settings, KEY_1)
    store_three(acme, globex)
    use_keys(settings, f"{KEY_2},{KEY_1}")
    rotate()
    ciphertexts = dict(Credential.objects.values_list("pk", "ciphertext"))

    out, _ = rotate()

    assert out.splitlines()[0] == "Nothing to re-encrypt: no credential uses another configured key than 'k2'."
    assert "Re-encrypted" not in out
    assert dict(Credential.objects.values_list("pk", "ciphertext")) == ciphertexts


def test_rotation_with_a_single_key_has_nothing_to_do(settings, acme, globex):
    use_keys(settings, KEY_1)
    store_three(acme, globex)

    out, _ = rotate()

    assert out.splitlines() == [
        "Nothing to re-encrypt: no credential uses another configured key than 'k1'.",
        "Credentials per key id: k1: 3.",
    ]


def test_rotation_works_in_batches(settings, db):
    use_keys(settings, KEY_1)
    workspace = WorkspaceFactory()
    for n in range(5):
        credential_upsert(workspace=workspace, service_name=f"s{n}", fields={"k": f"v{n}"})
    use_keys(settings, f"{KEY_2},{KEY_1}")

    batches = list(rotate_credentials(batch_size=2))

    assert [batch.rotated for batch in batches] == [2, 2, 1]
    assert set(Credential.objects.values_list("key_id", flat=True)) == {"k2"}


def test_an_interrupted_rotation_keeps_its_finished_batches_and_a_rerun_completes_it(settings, db):
    use_keys(settings, KEY_1)
    workspace = WorkspaceFactory()
    for n in range(5):
        credential_upsert(workspace=workspace, service_name=f"s{n}", fields={"k": f"v{n}"})
    use_keys(settings, f"{KEY_2},{KEY_1}")

    progress = rotate_credentials(batch_size=2)
    next(progress)
    progress.close()

    assert sorted(Credential.objects.values_list("key_id", flat=True)) == ["k1", "k1", "k1", "k2", "k2"]
    out, _ = rotate(batch_size=2)
    assert "Re-encrypted 3 credential(s) with key 'k2'." in out
    assert set(Credential.objects.values_list("key_id", flat=True)) == {"k2"}


def test_rotation_refuses_a_batch_size_below_one(db):
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        call_command("rotate_encryption_key", "--batch-size=0", stdout=StringIO())


def test_credentials_on_an_unconfigured_key_are_reported_with_what_to_do(settings, acme, globex):
    use_keys(settings, KEY_0)
    credential_upsert(workspace=acme, service_name="legacy", fields={"api_key": SECRET})
    use_keys(settings, KEY_1)
    store_three(acme, globex)
    use_keys(settings, f"{KEY_2},{KEY_1}")

    with pytest.raises(CommandError, match="do not remove those keys"):
        rotate()

    assert sorted(Credential.objects.values_list("key_id", flat=True)) == ["k0", "k2", "k2", "k2"]


def test_unconfigured_key_message_says_to_add_the_key_back(settings, acme):
    use_keys(settings, KEY_0)
    credential_upsert(workspace=acme, service_name="legacy", fields={"api_key": SECRET})
    use_keys(settings, f"{KEY_2},{KEY_1}")
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError):
        call_command("rotate_encryption_key", stdout=out, stderr=err)

    assert err.getvalue().splitlines() == [
        "1 credential(s) use key id 'k0', which is not configured in CONNECTORS_ENCRYPTION_KEYS: add that key back "
        "after the primary and run this command again, or delete those credentials."
    ]
    assert "Credentials per key id: k0: 1." in out.getvalue()


def test_a_credential_that_fails_to_decrypt_is_reported_and_the_others_are_rotated(settings, acme, globex):
    use_keys(settings, KEY_1)
    store_three(acme, globex)
    moved = Credential.objects.get(workspace=globex)
    source = Credential.objects.get(workspace=acme, service_name="numverify")
    Credential.objects.filter(pk=moved.pk).update(ciphertext=source.ciphertext)
    use_keys(settings, f"{KEY_2},{KEY_1}")
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError):
        call_command("rotate_encryption_key", stdout=out, stderr=err)

    assert err.getvalue().startswith(
        f"credential {moved.pk} (service 'numverify', workspace {globex.id}) could not be decrypted with key id 'k1'"
    )
    assert "Delete it and store it again through the API." in err.getvalue()
    assert SECRET not in out.getvalue() + err.getvalue()
    assert dict(Credential.objects.values_list("pk", "key_id"))[moved.pk] == "k1"
    assert Credential.objects.filter(key_id="k2").count() == 2


@pytest.mark.django_db(transaction=True)
def test_rotation_skips_a_row_locked_by_another_transaction_and_a_rerun_finishes_it(settings):
    use_keys(settings, KEY_1)
    workspace = WorkspaceFactory()
    credentials = [
        credential_upsert(workspace=workspace, service_name=f"s{n}", fields={"k": f"v{n}"})[0] for n in range(4)
    ]
    locked_pk = credentials[1].pk
    use_keys(settings, f"{KEY_2},{KEY_1}")
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        try:
            with transaction.atomic():
                Credential.objects.select_for_update().get(pk=locked_pk)
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        rotated = sum(batch.rotated for batch in rotate_credentials(batch_size=2))
    finally:
        release.set()
        holder.join()

    assert rotated == 3
    assert Credential.objects.get(pk=locked_pk).key_id == "k1"
    assert sum(batch.rotated for batch in rotate_credentials(batch_size=2)) == 1
    assert set(Credential.objects.values_list("key_id", flat=True)) == {"k2"}
