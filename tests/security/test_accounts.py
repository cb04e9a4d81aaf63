"""Accounts without enumeration: register and token answer alike whether or not an email has an account, and
spend the same password-hashing work; register and password change enforce the password validators."""

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from rest_framework.test import APIClient

from tests.factories import PASSWORD, UserFactory
from workspaces.models import Membership, User

REGISTER = "/api/v1/auth/register"
TOKEN = "/api/v1/auth/token"
PASSWORD_CHANGE = "/api/v1/auth/password"
NEW_PASSWORD = "An0ther-long-passphrase"


@pytest.fixture
def hash_calls(settings, monkeypatch) -> list[str]:
    """The production hasher, with every hashing counted: equal counts mean equal work, without timing."""
    assert settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.PBKDF2PasswordHasher"
    calls: list[str] = []
    real_encode = PBKDF2PasswordHasher.encode

    def encode(self, password, salt, iterations=None):
        calls.append("encode")
        return real_encode(self, password, salt, iterations)

    monkeypatch.setattr(PBKDF2PasswordHasher, "encode", encode)
    return calls


# ------------------------------------------------------------------------------------------------------------
# Register


def test_register_of_a_taken_email_answers_exactly_like_a_new_one(anon_api, alice):
    new = anon_api.post(REGISTER, {"email": "newcomer@example.test", "password": NEW_PASSWORD}, format="json")
    taken = anon_api.post(REGISTER, {"email": "ALICE@acme.test", "password": NEW_PASSWORD}, format="json")

    assert (new.status_code, taken.status_code) == (201, 201)
    assert set(new.json()) == set(taken.json()) == {"id", "email", "workspace"}
    assert set(new.json()["workspace"]) == set(taken.json()["workspace"]) == {"id", "name"}
    assert taken.json()["email"] == "alice@acme.test"
    assert isinstance(taken.json()["id"], int)
    assert taken.json()["id"] != alice.id


def test_register_of_a_taken_email_changes_nothing_and_the_owner_still_logs_in(anon_api, alice):
    anon_api.post(REGISTER, {"email": "alice@acme.test", "password": NEW_PASSWORD}, format="json")

    assert User.objects.filter(email="alice@acme.test").count() == 1
    assert Membership.objects.filter(user=alice).count() == 1
    assert APIClient().post(TOKEN, {"email": "alice@acme.test", "password": PASSWORD}, format="json").status_code == 200
    assert (
        APIClient().post(TOKEN, {"email": "alice@acme.test", "password": NEW_PASSWORD}, format="json").status_code
        == 401
    )


def test_register_spends_the_same_hashing_work_for_a_taken_and_a_new_email(anon_api, alice, hash_calls):
    anon_api.post(REGISTER, {"email": "newcomer@example.test", "password": NEW_PASSWORD}, format="json")
    new_calls = len(hash_calls)
    hash_calls.clear()

    anon_api.post(REGISTER, {"email": "alice@acme.test", "password": NEW_PASSWORD}, format="json")

    assert len(hash_calls) == new_calls == 1


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1!", "too short"),
        ("password123", "too common"),
        ("1234567890123", "entirely numeric"),
        ("newcomer-example", "too similar to the email"),
    ],
)
def test_register_refuses_a_weak_password_for_new_and_taken_emails_alike(anon_api, alice, password, reason):
    new = anon_api.post(REGISTER, {"email": "newcomer@example.test", "password": password}, format="json")
    taken_email = "newcomer@acme.test"  # taken, and as similar to the password as the new one
    UserFactory(email=taken_email)
    taken = anon_api.post(REGISTER, {"email": taken_email, "password": password}, format="json")

    assert (new.status_code, taken.status_code) == (400, 400)
    assert list(new.json()) == ["password"]
    assert reason in new.json()["password"][0]
    assert not User.objects.filter(email="newcomer@example.test").exists()


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": NEW_PASSWORD},
        {"email": "a@b.test", "password": "x" * 129},
        {"email": "a@b.test", "password": NEW_PASSWORD, "workspace_name": "w" * 201},
        {"email": "a\x00@b.test", "password": NEW_PASSWORD},
        {"email": ["a@b.test"], "password": NEW_PASSWORD},
    ],
    ids=["bad-email", "long-password", "long-workspace-name", "nul-byte", "list"],
)
def test_register_with_malformed_input_gets_400_not_500(anon_api, db, body):
    response = anon_api.post(REGISTER, body, format="json")

    assert response.status_code == 400
    assert not User.objects.exists()


# ------------------------------------------------------------------------------------------------------------
# Token


def test_token_answers_alike_for_unknown_email_wrong_password_and_inactive_user(alice):
    UserFactory(email="gone@acme.test", is_active=False)
    attempts = {
        "unknown": {"email": "nobody@acme.test", "password": PASSWORD},
        "wrong": {"email": "alice@acme.test", "password": "wrong-password"},
        "inactive": {"email": "gone@acme.test", "password": PASSWORD},
    }

    answers = {name: APIClient().post(TOKEN, body, format="json") for name, body in attempts.items()}

    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(attempts, 401)
    assert len({r.content for r in answers.values()}) == 1


def test_token_spends_one_hashing_for_unknown_and_known_emails_alike(alice, hash_calls):
    counts = {}
    for name, email in (("known", "alice@acme.test"), ("unknown", "nobody@acme.test")):
        hash_calls.clear()
        APIClient().post(TOKEN, {"email": email, "password": "wrong-password"}, format="json")
        counts[name] = len(hash_calls)

    assert counts == {"known": 1, "unknown": 1}


# ------------------------------------------------------------------------------------------------------------
# Password change


def _as(user_password: str = PASSWORD) -> APIClient:
    pair = APIClient().post(TOKEN, {"email": "alice@acme.test", "password": user_password}, format="json").json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    return client


def test_password_change_needs_the_current_password(alice):
    response = _as().post(PASSWORD_CHANGE, {"old_password": "guess", "new_password": NEW_PASSWORD}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["old_password"]


@pytest.mark.parametrize("new_password", ["short1!", "password123", "98765432109876", "alice-acme-test"])
def test_password_change_enforces_the_validators(alice, new_password):
    response = _as().post(PASSWORD_CHANGE, {"old_password": PASSWORD, "new_password": new_password}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["new_password"]
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_password_change_needs_an_access_token(db):
    response = APIClient().post(PASSWORD_CHANGE, {"old_password": PASSWORD, "new_password": NEW_PASSWORD})

    assert response.status_code == 401
