"""Authentication (docs/api.md §2): register, token, refresh, logout, password change, and what a bad token gets."""

import base64
import json
from datetime import timedelta

import jwt
import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from tests.conftest import client_for
from tests.factories import PASSWORD
from workspaces.models import Membership, Role, User

REGISTER = "/api/v1/auth/register"
TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/token/refresh"
LOGOUT = "/api/v1/auth/logout"
PASSWORD_CHANGE = "/api/v1/auth/password"
PROTECTED = "/api/v1/workspaces"
NEW_PASSWORD = "An0ther-long-passphrase"


def obtain_pair(email="alice@acme.test", password=PASSWORD, path=TOKEN) -> dict:
    response = APIClient().post(path, {"email": email, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# --- register ---


def test_register_returns_201_with_the_user_and_a_workspace_they_own(anon_api, db):
    response = anon_api.post(
        REGISTER, {"email": "carol@example.com", "password": PASSWORD, "workspace_name": "Carol Co"}, format="json"
    )

    assert response.status_code == 201
    body = response.json()
    user = User.objects.get(email="carol@example.com")
    membership = Membership.objects.get(user=user)
    assert body == {
        "id": user.id,
        "email": "carol@example.com",
        "workspace": {"id": str(membership.workspace_id), "name": "Carol Co"},
    }
    assert membership.role == Role.OWNER
    assert user.check_password(PASSWORD)


def test_register_without_workspace_name_names_the_workspace_after_the_email(anon_api, db):
    response = anon_api.post(REGISTER, {"email": "dave@example.com", "password": PASSWORD}, format="json")

    assert response.status_code == 201
    assert response.json()["workspace"]["name"] == "dave's workspace"


def test_registered_user_can_log_in(anon_api, db):
    anon_api.post(REGISTER, {"email": "carol@example.com", "password": PASSWORD}, format="json")

    pair = obtain_pair("carol@example.com")

    assert bearer(pair["access"]).get(PROTECTED).status_code == 200


def test_register_with_a_taken_email_answers_like_a_registration_and_changes_nothing(anon_api, alice):
    # Register must not tell who has an account (docs/security.md): same status and shape, nothing created.
    response = anon_api.post(REGISTER, {"email": "Alice@Acme.test", "password": NEW_PASSWORD}, format="json")

    assert response.status_code == 201
    assert set(response.json()) == {"id", "email", "workspace"}
    assert User.objects.filter(email__iexact="alice@acme.test").count() == 1
    assert Membership.objects.filter(user=alice).count() == 1


def test_register_with_a_weak_password_gets_400_and_creates_nothing(anon_api, db):
    response = anon_api.post(REGISTER, {"email": "carol@example.com", "password": "123"}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["password"]
    assert not User.objects.filter(email="carol@example.com").exists()


def test_register_with_an_invalid_email_gets_400(anon_api, db):
    response = anon_api.post(REGISTER, {"email": "not-an-email", "password": PASSWORD}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["email"]


# --- token ---


def test_token_returns_an_access_and_a_refresh_token(alice):
    response = APIClient().post(TOKEN, {"email": "alice@acme.test", "password": PASSWORD}, format="json")

    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}
    assert bearer(response.json()["access"]).get(PROTECTED).status_code == 200


def test_token_matches_the_email_case_insensitively(alice):
    pair = obtain_pair("ALICE@acme.test")

    assert set(pair) == {"access", "refresh"}


def test_token_with_a_wrong_password_gets_401(alice):
    response = APIClient().post(TOKEN, {"email": "alice@acme.test", "password": "wrong-password"}, format="json")

    assert response.status_code == 401
    assert response.json() == {"detail": "No active account found with the given credentials"}


def test_token_for_an_unknown_email_gets_the_same_401_as_a_wrong_password(alice):
    wrong_password = APIClient().post(TOKEN, {"email": "alice@acme.test", "password": "wrong-pw"}, format="json")
    unknown_email = APIClient().post(TOKEN, {"email": "nobody@acme.test", "password": "wrong-pw"}, format="json")

    assert unknown_email.status_code == 401
    assert unknown_email.json() == wrong_password.json()


def test_token_for_an_inactive_user_gets_401(alice):
    User.objects.filter(pk=alice.pk).update(is_active=False)

    response = APIClient().post(TOKEN, {"email": "alice@acme.test", "password": PASSWORD}, format="json")

    assert response.status_code == 401


# --- refresh ---


def test_refresh_returns_a_new_pair_with_a_rotated_refresh_token(alice):
    pair = obtain_pair()

    response = APIClient().post(REFRESH, {"refresh": pair["refresh"]}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert body["refresh"] != pair["refresh"]
    assert bearer(body["access"]).get(PROTECTED).status_code == 200


def test_refresh_token_is_refused_once_it_has_been_rotated(alice):
    pair = obtain_pair()
    APIClient().post(REFRESH, {"refresh": pair["refresh"]}, format="json")

    response = APIClient().post(REFRESH, {"refresh": pair["refresh"]}, format="json")

    assert response.status_code == 401


def test_rotated_refresh_token_itself_keeps_working(alice):
    pair = obtain_pair()
    rotated = APIClient().post(REFRESH, {"refresh": pair["refresh"]}, format="json").json()

    response = APIClient().post(REFRESH, {"refresh": rotated["refresh"]}, format="json")

    assert response.status_code == 200


def test_refresh_with_an_access_token_gets_401(alice):
    pair = obtain_pair()

    response = APIClient().post(REFRESH, {"refresh": pair["access"]}, format="json")

    assert response.status_code == 401


def test_refresh_without_a_token_gets_400(db):
    response = APIClient().post(REFRESH, {}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["refresh"]


# --- logout ---


def test_logout_returns_205_and_the_refresh_token_stops_working(alice):
    pair = obtain_pair()

    response = bearer(pair["access"]).post(LOGOUT, {"refresh": pair["refresh"]}, format="json")

    assert response.status_code == 205
    assert APIClient().post(REFRESH, {"refresh": pair["refresh"]}, format="json").status_code == 401


def test_logout_needs_an_access_token(alice):
    pair = obtain_pair()

    response = APIClient().post(LOGOUT, {"refresh": pair["refresh"]}, format="json")

    assert response.status_code == 401
    assert APIClient().post(REFRESH, {"refresh": pair["refresh"]}, format="json").status_code == 200


def test_logout_with_a_garbage_refresh_token_gets_401(alice):
    pair = obtain_pair()

    response = bearer(pair["access"]).post(LOGOUT, {"refresh": "garbage"}, format="json")

    assert response.status_code == 401


def test_logout_cannot_revoke_another_users_refresh_token(alice, bob):
    alice_pair = obtain_pair()
    bob_pair = obtain_pair("bob@globex.test")

    response = bearer(alice_pair["access"]).post(LOGOUT, {"refresh": bob_pair["refresh"]}, format="json")

    assert response.status_code == 401
    assert APIClient().post(REFRESH, {"refresh": bob_pair["refresh"]}, format="json").status_code == 200


# --- bad access tokens ---


def test_missing_authorization_on_a_protected_endpoint_gets_401_not_403(db):
    response = APIClient().get("/api/v1/connectors")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_garbage_token_gets_401(alice):
    response = bearer("not.a.token").get(PROTECTED)

    assert response.status_code == 401


def test_authorization_header_without_bearer_prefix_gets_401(alice):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=str(RefreshToken.for_user(alice).access_token))

    assert client.get(PROTECTED).status_code == 401


def test_expired_access_token_gets_401(alice):
    token = AccessToken.for_user(alice)
    token.set_exp(from_time=timezone.now() - timedelta(hours=1))

    response = bearer(str(token)).get(PROTECTED)

    assert response.status_code == 401


def test_token_with_alg_none_gets_401(alice):
    payload = dict(AccessToken.for_user(alice).payload)
    unsigned = f"{b64url({'alg': 'none', 'typ': 'JWT'})}.{b64url(payload)}."

    response = bearer(unsigned).get(PROTECTED)

    assert response.status_code == 401


def test_token_signed_with_another_key_gets_401(alice):
    payload = dict(AccessToken.for_user(alice).payload)
    forged = jwt.encode(payload, "another-signing-key-of-sufficient-length", algorithm="HS256")

    response = bearer(forged).get(PROTECTED)

    assert response.status_code == 401


def test_refresh_token_used_as_access_token_gets_401(alice):
    pair = obtain_pair()

    response = bearer(pair["refresh"]).get(PROTECTED)

    assert response.status_code == 401


def test_access_token_of_a_deleted_user_gets_401(alice):
    client = client_for(alice)
    alice.delete()

    assert client.get(PROTECTED).status_code == 401


# --- trailing slash ---


@pytest.mark.parametrize("slash", ["", "/"])
def test_register_answers_with_and_without_trailing_slash(anon_api, db, slash):
    response = anon_api.post(REGISTER + slash, {"email": "carol@example.com", "password": PASSWORD}, format="json")

    assert response.status_code == 201


@pytest.mark.parametrize("slash", ["", "/"])
def test_token_answers_with_and_without_trailing_slash(alice, slash):
    pair = obtain_pair(path=TOKEN + slash)

    assert set(pair) == {"access", "refresh"}


@pytest.mark.parametrize("slash", ["", "/"])
def test_refresh_answers_with_and_without_trailing_slash(alice, slash):
    pair = obtain_pair()

    response = APIClient().post(REFRESH + slash, {"refresh": pair["refresh"]}, format="json")

    assert response.status_code == 200


@pytest.mark.parametrize("slash", ["", "/"])
def test_logout_answers_with_and_without_trailing_slash(alice, slash):
    pair = obtain_pair()

    response = bearer(pair["access"]).post(LOGOUT + slash, {"refresh": pair["refresh"]}, format="json")

    assert response.status_code == 205


@pytest.mark.parametrize("slash", ["", "/"])
def test_password_change_answers_with_and_without_trailing_slash(alice, slash):
    body = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}

    response = client_for(alice).post(PASSWORD_CHANGE + slash, body, format="json")

    assert response.status_code == 204


# --- password change ---


def test_password_change_returns_204_and_the_new_password_logs_in(alice):
    body = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}

    response = client_for(alice).post(PASSWORD_CHANGE, body, format="json")

    assert response.status_code == 204
    assert obtain_pair(password=NEW_PASSWORD)
    old = APIClient().post(TOKEN, {"email": "alice@acme.test", "password": PASSWORD}, format="json")
    assert old.status_code == 401


def test_access_token_issued_before_a_password_change_is_refused(alice):
    pair = obtain_pair()
    body = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}

    bearer(pair["access"]).post(PASSWORD_CHANGE, body, format="json")

    assert bearer(pair["access"]).get(PROTECTED).status_code == 401


def test_refresh_token_issued_before_a_password_change_is_refused(alice):
    pair = obtain_pair()
    body = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}

    bearer(pair["access"]).post(PASSWORD_CHANGE, body, format="json")

    assert APIClient().post(REFRESH, {"refresh": pair["refresh"]}, format="json").status_code == 401


def test_password_change_with_a_wrong_old_password_gets_400_and_keeps_the_password(alice):
    body = {"old_password": "not-my-password", "new_password": NEW_PASSWORD}

    response = client_for(alice).post(PASSWORD_CHANGE, body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["old_password"]
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_password_change_to_a_weak_password_gets_400(alice):
    body = {"old_password": PASSWORD, "new_password": "12345"}

    response = client_for(alice).post(PASSWORD_CHANGE, body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["new_password"]
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_password_change_needs_an_access_token(alice):
    body = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}

    response = APIClient().post(PASSWORD_CHANGE, body, format="json")

    assert response.status_code == 401
