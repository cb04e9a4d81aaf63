import base64
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from types import MappingProxyType

import pytest
from django.db import connection
from django.utils import timezone

from connectors.engine.credentials import MissingCredential
from credentials.crypto import DecryptionError, credential_associated_data, parse_keys
from credentials.models import Credential
from credentials.provider import UnreadableCredential, VaultCredentialProvider
from credentials.services import (
    credential_decrypt,
    credential_delete,
    credential_mark_used,
    credential_upsert,
)
from tests.factories import WorkspaceFactory

SECRET = "sk_live_9f8e7d6c5b4a"
KEY_1 = "k1:" + base64.b64encode(bytes(range(32))).decode()
KEY_2 = "k2:" + base64.b64encode(bytes(range(100, 132))).decode()


@pytest.fixture
def keyring(settings):
    settings.CONNECTORS_ENCRYPTION_KEYRING = parse_keys(KEY_1)
    return settings.CONNECTORS_ENCRYPTION_KEYRING


def test_upsert_encrypts_the_fields_as_one_object_with_the_primary_key(keyring, acme):
    credential, created = credential_upsert(
        workspace=acme, service_name="numverify", fields={"api_key": SECRET, "account": "acme-eu"}
    )

    assert created is True
    credential.refresh_from_db()
    assert credential.field_names == ["account", "api_key"]
    assert credential.key_id == "k1"
    assert credential.ciphertext.startswith("v1:k1:")
    assert credential_decrypt(credential) == {"account": "acme-eu", "api_key": SECRET}


def test_ciphertext_in_the_database_does_not_contain_the_plaintext(keyring, acme):
    credential_upsert(workspace=acme, service_name="numverify", fields={"api_key": SECRET})

    with connection.cursor() as cursor:
        cursor.execute("SELECT ciphertext FROM credentials_credential")
        (stored,) = cursor.fetchone()
    assert SECRET not in stored
    assert base64.b64encode(SECRET.encode()).decode()[:16] not in stored
    assert "api_key" not in stored


def test_upsert_replaces_the_existing_credential(keyring, acme):
    first, _ = credential_upsert(workspace=acme, service_name="numverify", fields={"api_key": SECRET})

    second, created = credential_upsert(workspace=acme, service_name="numverify", fields={"token": "t-2"})

    assert created is False
    assert second.pk == first.pk
    assert Credential.objects.count() == 1
    assert credential_decrypt(Credential.objects.get()) == {"token": "t-2"}


def test_upsert_refuses_an_invalid_service_name(keyring, acme):
    with pytest.raises(ValueError, match="service_name"):
        credential_upsert(workspace=acme, service_name="Bad Name", fields={"api_key": SECRET})
    assert not Credential.objects.exists()


def test_upsert_error_about_a_value_does_not_hold_it(keyring, acme):
    with pytest.raises(ValueError, match="api_key") as raised:
        credential_upsert(workspace=acme, service_name="numverify", fields={"api_key": SECRET + "x" * 8192})
    assert SECRET not in str(raised.value)


def test_ciphertext_moved_to_another_workspace_does_not_decrypt(keyring, acme, globex):
    source, _ = credential_upsert(workspace=acme, service_name="numverify", fields={"api_key": SECRET})
    target, _ = credential_upsert(workspace=globex, service_name="numverify", fields={"api_key": "theirs"})
    Credential.objects.filter(pk=target.pk).update(ciphertext=source.ciphertext)

    with pytest.raises(DecryptionError) as raised:
        credential_decrypt(Credential.objects.get(pk=target.pk))
    assert SECRET not in str(raised.value)


def test_ciphertext_moved_to_another_service_does_not_decrypt(keyring, acme):
    source, _ = credential_upsert(workspace=acme, service_name="numverify", fields={"api_key": SECRET})
    target, _ = credential_upsert(workspace=acme, service_name="hunter", fields={"api_key": "other"})
    Credential.objects.filter(pk=target.pk).update(ciphertext=source.ciphertext)

    with pytest.raises(DecryptionError):
        credential_decrypt(Credential.objects.get(pk=target.pk))


def test_delete_removes_only_that_workspaces_credential(keyring, acme, globex):
    credential_upsert(workspace=acme, service_name="numverify", fields={"api_key": SECRET})
    credential_upsert(workspace=globex, service_name="numverify", fields={"api_key": SECRET})

    assert credential_delete(workspace=acme, service_name="numverify") is True
    assert credential_delete(workspace=acme, service_name="numverify") is False
    assert list(Credential.objects.values_list("workspace_id", flat=True)) == [globex.id]


def test_mark_used_sets_last_used_at_in_one_query(keyring, acme, django_assert_num_queries):
    credential, _ = credential_upsert(workspace=acme, service_name="numverify", fields={"api_key": SECRET})

    with django_assert_num_queries(1):
        changed = credential_mark_used([credential.pk])

    credential.refresh_from_db()
    assert changed == 1
    assert timezone.now() - credential.last_used_at < timedelta(seconds=5)


def test_mark_used_skips_a_credential_marked_within_the_last_minute(keyring, acme):
    credential, _ = credential_upsert(workspace=acme, service_name="numverify", fields={"api_key": SECRET})
    recently = timezone.now() - timedelta(seconds=30)
    Credential.objects.filter(pk=credential.pk).update(last_used_at=recently)

    assert credential_mark_used([credential.pk]) == 0
    credential.refresh_from_db()
    assert credential.last_used_at == recently


def test_mark_used_rewrites_a_mark_older_than_a_minute(keyring, acme):
    credential, _ = credential_upsert(workspace=acme, service_name="numverify", fields={"api_key": SECRET})
    Credential.objects.filter(pk=credential.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))

    assert credential_mark_used([credential.pk]) == 1


def test_mark_used_leaves_updated_at_alone(keyring, acme):
    credential, _ = credential_upsert(workspace=acme, service_name="numverify", fields={"api_key": SECRET})

    credential_mark_used([credential.pk])

    assert Credential.objects.get(pk=credential.pk).updated_at == credential.updated_at


def test_mark_used_with_no_ids_makes_no_query(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert credential_mark_used([]) == 0


def test_provider_decrypts_each_service_once(keyring, acme, django_assert_num_queries):
    credential_upsert(workspace=acme, service_name="numverify", fields={"api_key": SECRET})
    credential_upsert(workspace=acme, service_name="hunter", fields={"token": "t-1"})
    provider = VaultCredentialProvider(acme.id)

    with django_assert_num_queries(2):
        first = provider.fields("numverify")
        again = provider.fields("numverify")
        hunter = provider.fields("hunter")

    assert dict(first) == {"api_key": SECRET}
    assert again is first
    assert dict(hunter) == {"token": "t-1"}
    assert provider.services_used == ["hunter", "numverify"]


def test_provider_fields_are_read_only(keyring, acme):
    credential_upsert(workspace=acme, service_name="numverify", fields={"api_key": SECRET})

    fields = VaultCredentialProvider(acme.id).fields("numverify")

    assert isinstance(fields, MappingProxyType)
    with pytest.raises(TypeError):
        fields["api_key"] = "changed"


def test_provider_raises_missing_credential_for_an_unknown_service(keyring, acme, django_assert_num_queries):
    provider = VaultCredentialProvider(acme.id)

    with django_assert_num_queries(1), pytest.raises(MissingCredential) as raised:
        provider.fields("numverify")
    with django_assert_num_queries(0), pytest.raises(MissingCredential):
        provider.fields("numverify")
    assert raised.value.service == "numverify"


def test_provider_does_not_query_for_a_name_no_credential_can_have(keyring, acme, django_assert_num_queries):
    with django_assert_num_queries(0), pytest.raises(MissingCredential):
        VaultCredentialProvider(acme.id).fields("Not.A.Service")


def test_provider_only_sees_its_own_workspace(keyring, acme, globex):
    credential_upsert(workspace=globex, service_name="numverify", fields={"api_key": SECRET})

    with pytest.raises(MissingCredential):
        VaultCredentialProvider(acme.id).fields("numverify")


def test_provider_reports_an_unreadable_credential_without_its_value(keyring, acme, globex):
    source, _ = credential_upsert(workspace=globex, service_name="numverify", fields={"api_key": SECRET})
    target, _ = credential_upsert(workspace=acme, service_name="numverify", fields={"api_key": "mine"})
    Credential.objects.filter(pk=target.pk).update(ciphertext=source.ciphertext)

    with pytest.raises(UnreadableCredential) as raised:
        VaultCredentialProvider(acme.id).fields("numverify")

    assert isinstance(raised.value, MissingCredential)
    assert "could not be decrypted" in str(raised.value)
    assert SECRET not in str(raised.value)


def test_provider_mark_used_updates_only_the_credentials_it_read(keyring, acme, django_assert_num_queries):
    used, _ = credential_upsert(workspace=acme, service_name="numverify", fields={"api_key": SECRET})
    unused, _ = credential_upsert(workspace=acme, service_name="hunter", fields={"token": "t-1"})
    provider = VaultCredentialProvider(acme.id)
    provider.fields("numverify")

    with django_assert_num_queries(1):
        assert provider.mark_used() == 1

    assert Credential.objects.get(pk=used.pk).last_used_at is not None
    assert Credential.objects.get(pk=unused.pk).last_used_at is None


def test_provider_mark_used_without_reads_makes_no_query(keyring, acme, django_assert_num_queries):
    provider = VaultCredentialProvider(acme.id)

    with django_assert_num_queries(0):
        assert provider.mark_used() == 0


def test_decrypt_needs_the_key_the_ciphertext_names(settings, acme):
    settings.CONNECTORS_ENCRYPTION_KEYRING = parse_keys(KEY_1)
    credential, _ = credential_upsert(workspace=acme, service_name="numverify", fields={"api_key": SECRET})
    settings.CONNECTORS_ENCRYPTION_KEYRING = parse_keys(KEY_2)

    with pytest.raises(DecryptionError, match="key id 'k1'"):
        credential_decrypt(credential)


def test_stored_plaintext_is_a_json_object_of_the_fields(keyring, acme):
    credential, _ = credential_upsert(workspace=acme, service_name="numverify", fields={"b": "2", "a": "1"})

    plaintext = keyring.decrypt(
        credential.ciphertext, associated_data=credential_associated_data(str(acme.id), "numverify")
    )
    assert json.loads(plaintext) == {"a": "1", "b": "2"}


@pytest.mark.django_db(transaction=True)
def test_concurrent_upserts_of_one_service_leave_one_row_and_one_creation(settings):
    settings.CONNECTORS_ENCRYPTION_KEYRING = parse_keys(KEY_1)
    workspace = WorkspaceFactory()
    start = threading.Barrier(6)

    def upsert(n: int) -> bool:
        try:
            start.wait()
            _, created = credential_upsert(
                workspace=workspace, service_name="numverify", fields={"api_key": f"value-{n}"}
            )
            return created
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(upsert, range(6)))

    assert sorted(results) == [False, False, False, False, False, True]
    assert Credential.objects.filter(workspace=workspace).count() == 1
    assert credential_decrypt(Credential.objects.get())["api_key"].startswith("value-")
