import pytest
from django.urls import reverse

from credentials.models import Credential
from credentials.services import credential_upsert

SECRET = "sk_live_9f8e7d6c5b4a"


@pytest.fixture
def credential(acme):
    credential, _ = credential_upsert(
        workspace=acme, service_name="numverify", fields={"api_key": SECRET, "account": "acme-eu"}
    )
    return credential


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def test_changelist_shows_names_and_dates_but_no_secret_or_ciphertext(staff_client, credential):
    response = staff_client.get(reverse("admin:credentials_credential_changelist"))

    assert response.status_code == 200
    content = response.content.decode()
    assert "numverify" in content
    assert "Acme" in content
    assert "account, api_key" in content
    assert SECRET not in content
    assert credential.ciphertext not in content
    assert credential.ciphertext.split(":")[2][:20] not in content


def test_change_page_is_read_only_and_shows_no_secret_or_ciphertext(staff_client, credential):
    response = staff_client.get(reverse("admin:credentials_credential_change", args=[credential.pk]))

    assert response.status_code == 200
    content = response.content.decode()
    assert "account, api_key" in content
    assert SECRET not in content
    assert credential.ciphertext not in content
    assert credential.ciphertext.split(":")[2][:20] not in content
    assert 'name="ciphertext"' not in content
    assert 'name="_save"' not in content


def test_change_page_refuses_a_post(staff_client, credential):
    url = reverse("admin:credentials_credential_change", args=[credential.pk])

    response = staff_client.post(url, {"service_name": "changed", "ciphertext": "v1:k1:AAAA"})

    assert response.status_code == 403
    assert Credential.objects.get(pk=credential.pk).ciphertext == credential.ciphertext


def test_add_page_is_refused(staff_client, db):
    response = staff_client.get(reverse("admin:credentials_credential_add"))

    assert response.status_code == 403


def test_staff_can_delete_a_credential(staff_client, credential):
    url = reverse("admin:credentials_credential_delete", args=[credential.pk])

    confirmation = staff_client.get(url)
    response = staff_client.post(url, {"post": "yes"})

    assert SECRET not in confirmation.content.decode()
    assert credential.ciphertext not in confirmation.content.decode()
    assert response.status_code == 302
    assert not Credential.objects.filter(pk=credential.pk).exists()


@pytest.mark.parametrize("term", ["numverify", "Acme"])
def test_search_finds_by_service_or_workspace_name(staff_client, credential, globex, term):
    credential_upsert(workspace=globex, service_name="hunter", fields={"token": "t"})

    response = staff_client.get(reverse("admin:credentials_credential_changelist"), {"q": term})

    assert response.status_code == 200
    assert [c.pk for c in response.context["cl"].result_list] == [credential.pk]


def test_search_finds_by_workspace_id(staff_client, credential, acme):
    response = staff_client.get(reverse("admin:credentials_credential_changelist"), {"q": str(acme.id)})

    assert [c.pk for c in response.context["cl"].result_list] == [credential.pk]


def test_changelist_query_count_does_not_grow_with_rows(staff_client, acme, django_assert_max_num_queries):
    for n in range(20):
        credential_upsert(workspace=acme, service_name=f"s{n}", fields={"k": "v"})

    with django_assert_max_num_queries(8):
        response = staff_client.get(reverse("admin:credentials_credential_changelist"))

    assert response.status_code == 200
