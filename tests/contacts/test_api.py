"""Contacts API (docs/api.md §11): workspace-scoped CRUD with search and custom fields."""

import pytest

from contacts.models import Contact
from tests.factories import ContactFactory

URL = "/api/v1/contacts"
KEYS = {
    "id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "company",
    "job_title",
    "phone_valid",
    "custom_fields",
    "created_at",
    "updated_at",
}
ADA = {
    "email": "ada@analytical.test",
    "phone": "+44 20 7946 0000",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company": "Analytical Engines",
    "job_title": "Programmer",
    "phone_valid": True,
    "custom_fields": {"plan": "pro", "seats": 5, "tags": ["vip"]},
}


def detail(contact_id) -> str:
    return f"{URL}/{contact_id}"


def test_create_returns_201_with_every_field(alice_api, acme):
    response = alice_api.post(URL, ADA, format="json")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == KEYS
    assert {key: body[key] for key in ADA} == ADA
    contact = Contact.objects.get()
    assert body["id"] == str(contact.id)
    assert contact.workspace == acme
    assert contact.custom_fields == ADA["custom_fields"]


def test_create_with_no_fields_gives_empty_defaults(alice_api):
    response = alice_api.post(URL, {}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert {key: body[key] for key in KEYS - {"id", "created_at", "updated_at"}} == {
        "email": "",
        "phone": "",
        "first_name": "",
        "last_name": "",
        "company": "",
        "job_title": "",
        "phone_valid": None,
        "custom_fields": {},
    }


def test_create_ignores_read_only_fields(alice_api):
    body = alice_api.post(URL, {**ADA, "id": "00000000-0000-0000-0000-000000000000"}, format="json").json()

    assert body["id"] != "00000000-0000-0000-0000-000000000000"


def test_list_is_paginated_newest_first(alice_api, acme):
    ContactFactory(workspace=acme, email="first@example.com")
    ContactFactory(workspace=acme, email="second@example.com")

    response = alice_api.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2
    assert [item["email"] for item in body["results"]] == ["second@example.com", "first@example.com"]
    assert set(body["results"][0]) == KEYS


def test_list_honours_page_size(alice_api, acme):
    ContactFactory.create_batch(3, workspace=acme)

    body = alice_api.get(URL, {"page_size": 2}).json()

    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"].endswith(f"{URL}?page=2&page_size=2")


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("LOVELACE", ["ada@analytical.test"]),
        ("ada", ["ada@analytical.test"]),
        ("7946", ["ada@analytical.test"]),
        ("engines", ["ada@analytical.test"]),
        ("grace", ["grace@navy.test"]),
        ("test", ["grace@navy.test", "ada@analytical.test"]),
        ("nobody", []),
    ],
)
def test_search_matches_name_email_phone_or_company(alice_api, acme, term, expected):
    ContactFactory(workspace=acme, **{key: value for key, value in ADA.items() if key != "custom_fields"})
    ContactFactory(workspace=acme, email="grace@navy.test", first_name="Grace", last_name="Hopper", company="Navy")

    body = alice_api.get(URL, {"search": term}).json()

    assert [item["email"] for item in body["results"]] == expected


def test_get_returns_the_contact(alice_api):
    created = alice_api.post(URL, ADA, format="json").json()

    response = alice_api.get(detail(created["id"]))

    assert response.status_code == 200
    assert response.json() == created


def test_get_unknown_id_gets_404(alice_api):
    assert alice_api.get(detail("3f2b9c1e-0000-4000-8000-000000000000")).status_code == 404


def test_put_replaces_the_contact(alice_api):
    created = alice_api.post(URL, ADA, format="json").json()

    response = alice_api.put(detail(created["id"]), {"email": "ada@new.test", "first_name": "Ada"}, format="json")

    assert response.status_code == 200
    assert response.json()["email"] == "ada@new.test"
    assert Contact.objects.get().email == "ada@new.test"


def test_patch_changes_only_the_named_fields(alice_api):
    created = alice_api.post(URL, ADA, format="json").json()

    response = alice_api.patch(detail(created["id"]), {"job_title": "Countess"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["job_title"] == "Countess"
    assert body["email"] == ADA["email"]
    assert body["custom_fields"] == ADA["custom_fields"]
    assert body["updated_at"] > created["updated_at"]


def test_patch_custom_fields_replaces_them(alice_api):
    created = alice_api.post(URL, ADA, format="json").json()

    response = alice_api.patch(detail(created["id"]), {"custom_fields": {"plan": "free"}}, format="json")

    assert response.status_code == 200
    assert response.json()["custom_fields"] == {"plan": "free"}
    assert Contact.objects.get().custom_fields == {"plan": "free"}


def test_patch_can_clear_phone_valid(alice_api):
    created = alice_api.post(URL, ADA, format="json").json()

    response = alice_api.patch(detail(created["id"]), {"phone_valid": None}, format="json")

    assert response.json()["phone_valid"] is None


def test_delete_returns_204_and_removes_the_contact(alice_api):
    created = alice_api.post(URL, ADA, format="json").json()

    response = alice_api.delete(detail(created["id"]))

    assert response.status_code == 204
    assert not Contact.objects.exists()
    assert alice_api.get(detail(created["id"])).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"phone": "1" * 65}, "phone"),
        ({"first_name": "x" * 151}, "first_name"),
        ({"company": ["Acme"]}, "company"),
        ({"phone_valid": "perhaps"}, "phone_valid"),
        ({"custom_fields": "plan=pro"}, "custom_fields"),
        ({"custom_fields": ["plan"]}, "custom_fields"),
        ({"custom_fields": {"": "empty key"}}, "custom_fields"),
        ({"custom_fields": {"k" * 101: "long key"}}, "custom_fields"),
        ({"custom_fields": {f"f{i}": i for i in range(101)}}, "custom_fields"),
    ],
)
def test_invalid_contact_gets_400_and_saves_nothing(alice_api, body, field):
    response = alice_api.post(URL, body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert Contact.objects.count() == 0


def test_invalid_patch_leaves_the_contact_unchanged(alice_api):
    created = alice_api.post(URL, ADA, format="json").json()

    response = alice_api.patch(detail(created["id"]), {"email": "broken", "company": "New"}, format="json")

    assert response.status_code == 400
    contact = Contact.objects.get()
    assert contact.email == ADA["email"]
    assert contact.company == ADA["company"]


@pytest.mark.parametrize("slash", ["", "/"])
def test_contact_paths_answer_with_and_without_trailing_slash(alice_api, slash):
    created = alice_api.post(URL + slash, ADA, format="json")
    path = detail(created.json()["id"]) + slash

    assert created.status_code == 201
    assert alice_api.get(URL + slash).status_code == 200
    assert alice_api.get(path).status_code == 200
    assert alice_api.patch(path, {"company": "x"}, format="json").status_code == 200
    assert alice_api.put(path, {"email": "y@example.com"}, format="json").status_code == 200
    assert alice_api.delete(path).status_code == 204


def test_contacts_need_authentication(anon_api, db):
    assert anon_api.get(URL).status_code == 401
