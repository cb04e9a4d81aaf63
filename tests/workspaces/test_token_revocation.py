"""Logout revokes the access tokens already issued (per-user token version), and /auth/token has a per-account
brake on failed logins."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.conftest import client_for
from tests.factories import PASSWORD
from tests.workspaces.test_auth import LOGOUT, PASSWORD_CHANGE, PROTECTED, REFRESH, TOKEN, bearer, obtain_pair
from workspaces import login_brake
from workspaces.models import User

NEW_PASSWORD = "An0ther-long-passphrase"


def logout(pair: dict, capture) -> None:
    with capture(execute=True):
        assert bearer(pair["access"]).post(LOGOUT, {"refresh": pair["refresh"]}, format="json").status_code == 205


def test_logout_revokes_the_sessions_access_token(alice, django_capture_on_commit_callbacks):
    pair = obtain_pair()
    assert bearer(pair["access"]).get(PROTECTED).status_code == 200

    logout(pair, django_capture_on_commit_callbacks)
    response = bearer(pair["access"]).get(PROTECTED)

    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked" or "revoked" in response.content.decode()


def test_a_revoked_token_is_refused_from_the_process_cache_without_a_query(
    alice, django_capture_on_commit_callbacks, django_assert_num_queries
):
    pair = obtain_pair()
    logout(pair, django_capture_on_commit_callbacks)
    assert bearer(pair["access"]).get(PROTECTED).status_code == 401  # the user is read again: its access changed

    with django_assert_num_queries(0):
        assert bearer(pair["access"]).get(PROTECTED).status_code == 401


def test_a_revoked_token_is_refused_after_the_cache_is_lost(alice, django_capture_on_commit_callbacks):
    from django.core.cache import cache

    pair = obtain_pair()
    logout(pair, django_capture_on_commit_callbacks)
    cache.clear()

    assert bearer(pair["access"]).get(PROTECTED).status_code == 401


def test_authenticating_a_known_user_costs_no_query(alice):
    client = bearer(obtain_pair()["access"])
    client.get(PROTECTED)  # the first request of this process reads the user

    with CaptureQueriesContext(connection) as queries:
        assert client.get(PROTECTED).status_code == 200

    assert [q["sql"] for q in queries.captured_queries if 'FROM "workspaces_user"' in q["sql"]] == []


def test_other_sessions_get_new_access_tokens_from_their_refresh_token(alice, django_capture_on_commit_callbacks):
    first, second = obtain_pair(), obtain_pair()

    logout(first, django_capture_on_commit_callbacks)

    assert bearer(second["access"]).get(PROTECTED).status_code == 401  # every access token issued before
    refreshed = APIClient().post(REFRESH, {"refresh": second["refresh"]}, format="json")
    assert refreshed.status_code == 200
    assert bearer(refreshed.json()["access"]).get(PROTECTED).status_code == 200
    assert APIClient().post(REFRESH, {"refresh": first["refresh"]}, format="json").status_code == 401


def test_logging_in_again_after_logout_works(alice, django_capture_on_commit_callbacks):
    logout(obtain_pair(), django_capture_on_commit_callbacks)

    assert bearer(obtain_pair()["access"]).get(PROTECTED).status_code == 200


def test_a_token_without_a_version_is_version_zero(alice, django_capture_on_commit_callbacks):
    legacy = client_for(alice)  # simplejwt's own token, without the claim
    assert legacy.get(PROTECTED).status_code == 200

    logout(obtain_pair(), django_capture_on_commit_callbacks)

    assert legacy.get(PROTECTED).status_code == 401


def test_a_password_change_revokes_access_tokens_too(alice, django_capture_on_commit_callbacks):
    pair = obtain_pair()
    with django_capture_on_commit_callbacks(execute=True):
        response = bearer(pair["access"]).post(
            PASSWORD_CHANGE, {"old_password": PASSWORD, "new_password": NEW_PASSWORD}, format="json"
        )
    assert response.status_code == 204

    assert bearer(pair["access"]).get(PROTECTED).status_code == 401
    assert User.objects.get(pk=alice.pk).token_version == 1


# --- the per-account brake ---


def attempt(password: str, address: str = "203.0.113.1", email: str = "alice@acme.test"):
    return APIClient(REMOTE_ADDR=address).post(TOKEN, {"email": email, "password": password}, format="json")


def test_failures_from_one_address_brake_the_account_there(alice):
    for _ in range(login_brake.MAX_FAILURES_PER_ADDRESS_AND_ACCOUNT):
        assert attempt("wrong").status_code == 401

    braked = attempt(PASSWORD)

    assert braked.status_code == 429
    assert braked["Retry-After"] == str(login_brake.LOGIN_WINDOW_SECONDS)
    assert attempt(PASSWORD, address="203.0.113.2").status_code == 200


def test_failures_from_many_addresses_brake_the_account_everywhere(alice, bob):
    for index in range(login_brake.MAX_FAILURES_PER_ACCOUNT):
        assert attempt("wrong", address=f"198.51.100.{index + 1}").status_code == 401

    assert attempt(PASSWORD, address="192.0.2.77").status_code == 429
    assert attempt(PASSWORD, address="192.0.2.77", email="bob@globex.test").status_code == 200


def test_the_brake_counts_emails_case_insensitively(alice):
    for email in ("Alice@Acme.test", "ALICE@ACME.TEST", " alice@acme.test", "alice@ACME.test", "alice@acme.test"):
        assert attempt("wrong", email=email).status_code == 401

    assert attempt(PASSWORD).status_code == 429


def test_a_success_clears_the_address_count(alice):
    for _ in range(login_brake.MAX_FAILURES_PER_ADDRESS_AND_ACCOUNT - 1):
        attempt("wrong")
    assert attempt(PASSWORD).status_code == 200

    for _ in range(login_brake.MAX_FAILURES_PER_ADDRESS_AND_ACCOUNT - 1):
        assert attempt("wrong").status_code == 401
    assert attempt(PASSWORD).status_code == 200


@pytest.mark.parametrize("body", [{"password": "x"}, {"email": "a@b.test"}, {}])
def test_malformed_bodies_still_get_400(db, body):
    assert APIClient().post(TOKEN, body, format="json").status_code == 400
