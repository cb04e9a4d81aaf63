"""Negative token tests: every way a token can be wrong gets 401 (or 403 for a workspace the caller may not
use), and refresh-token rotation holds under concurrency. Positive flows live in tests/workspaces/test_auth.py."""

import base64
import hashlib
import hmac
import json
import threading
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.db import connections
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from tests.conftest import client_for
from tests.factories import PASSWORD, MembershipFactory, UserFactory
from workspaces.models import Membership, Role, User

TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/token/refresh"
LOGOUT = "/api/v1/auth/logout"
PASSWORD_CHANGE = "/api/v1/auth/password"
PROTECTED = "/api/v1/workspaces"
SCOPED = "/api/v1/connectors"
NEW_PASSWORD = "An0ther-long-passphrase"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign(header: dict, payload: dict, key: str) -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def claims(user) -> dict:
    return dict(AccessToken.for_user(user).payload)


def get_with(token: str, path: str = PROTECTED, workspace=None):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    if workspace is not None:
        client.defaults["HTTP_X_WORKSPACE_ID"] = str(workspace.id)
    return client.get(path)


def refresh_with(token: str):
    return APIClient().post(REFRESH, {"refresh": token}, format="json")


def login(email="alice@acme.test", password=PASSWORD) -> dict:
    response = APIClient().post(TOKEN, {"email": email, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


# ------------------------------------------------------------------------------------------------------------
# Forged and malformed access tokens


def _expired(user) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=1))
    return str(token)


def _tampered_payload(user) -> str:
    header, _, signature = str(AccessToken.for_user(user)).split(".")
    forged = {**claims(user), "user_id": user.id + 1000}
    return f"{header}.{b64url(json.dumps(forged).encode())}.{signature}"


def _tampered_signature(user) -> str:
    token = str(AccessToken.for_user(user))
    return token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")


def _alg_none(user) -> str:
    return f"{b64url(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{b64url(json.dumps(claims(user)).encode())}."


def _signed_with_the_django_secret_key(user) -> str:
    # The JWT key is derived from SECRET_KEY, never SECRET_KEY itself.
    return sign({"alg": "HS256", "typ": "JWT"}, claims(user), settings.SECRET_KEY)


def _hs512_with_the_right_key(user) -> str:
    return jwt.encode(claims(user), settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS512")


def _wrong_audience(user) -> str:
    return jwt.encode({**claims(user), "aud": "another-api"}, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")


def _wrong_issuer(user) -> str:
    return jwt.encode({**claims(user), "iss": "someone-else"}, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")


def _without_expiry(user) -> str:
    payload = {k: v for k, v in claims(user).items() if k != "exp"}
    return jwt.encode(payload, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")


def _refresh_used_as_access(user) -> str:
    return str(RefreshToken.for_user(user))


def _unknown_user(user) -> str:
    return jwt.encode({**claims(user), "user_id": 987654}, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")


def _user_id_not_a_number(user) -> str:
    return jwt.encode({**claims(user), "user_id": "1 OR 1=1"}, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")


def _stale_password_claim(user) -> str:
    return jwt.encode(
        {**claims(user), "hash_password": "0" * 32}, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256"
    )


FORGED_ACCESS_TOKENS = [
    _expired,
    _tampered_payload,
    _tampered_signature,
    _alg_none,
    _signed_with_the_django_secret_key,
    _hs512_with_the_right_key,
    _wrong_audience,
    _wrong_issuer,
    _without_expiry,
    _refresh_used_as_access,
    _unknown_user,
    _user_id_not_a_number,
    _stale_password_claim,
]


@pytest.mark.parametrize("forge", FORGED_ACCESS_TOKENS, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("path", [PROTECTED, SCOPED])
def test_forged_access_token_gets_401(forge, path, alice, acme):
    response = get_with(forge(alice), path, workspace=acme)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer ",
        "Bearer garbage",
        "Bearer a.b.c",
        "Bearer \u00e9\u00e8.\u00e0.x",
        "Bearer " + "A" * 10_000,
        "Token abc",
        "Basic YWxpY2U6cGFzcw==",
        "bearer  two tokens",
    ],
    ids=["empty", "space", "garbage", "three-dots", "non-ascii", "huge", "token-prefix", "basic", "two-values"],
)
def test_garbage_authorization_gets_401(authorization, db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=authorization)

    response = client.get(PROTECTED)

    assert response.status_code == 401
    assert response.json()["detail"]


# ------------------------------------------------------------------------------------------------------------
# Refresh tokens


def test_access_token_used_as_refresh_gets_401(alice):
    assert refresh_with(login()["access"]).status_code == 401


def test_forged_refresh_token_gets_401(alice):
    payload = {**dict(RefreshToken.for_user(alice).payload), "user_id": alice.id + 1}
    forged = jwt.encode(payload, settings.SECRET_KEY, algorithm="HS256")

    assert refresh_with(forged).status_code == 401


def test_refresh_token_reused_after_rotation_gets_401(alice):
    pair = login()
    assert refresh_with(pair["refresh"]).status_code == 200

    reused = refresh_with(pair["refresh"])

    assert reused.status_code == 401


def test_refresh_token_after_logout_gets_401(alice):
    pair = login()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    assert client.post(LOGOUT, {"refresh": pair["refresh"]}, format="json").status_code == 205

    assert refresh_with(pair["refresh"]).status_code == 401


def test_tokens_issued_before_a_password_change_get_401_even_after_rotation(alice):
    before = login()
    rotated = refresh_with(before["refresh"]).json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {rotated['access']}")
    change = client.post(PASSWORD_CHANGE, {"old_password": PASSWORD, "new_password": NEW_PASSWORD}, format="json")
    assert change.status_code == 204

    assert get_with(before["access"]).status_code == 401
    assert get_with(rotated["access"]).status_code == 401
    assert refresh_with(rotated["refresh"]).status_code == 401
    assert get_with(login(password=NEW_PASSWORD)["access"]).status_code == 200


def test_refresh_token_carrying_an_old_password_claim_gets_401_even_if_not_blacklisted(alice):
    # Defence in depth: were a refresh token missed by the blacklisting, its revoke claim still gives it away.
    refresh = RefreshToken.for_user(alice)
    alice.set_password(NEW_PASSWORD)
    alice.save(update_fields=["password"])

    assert refresh_with(str(refresh)).status_code == 401


def test_deactivated_user_gets_401_for_access_and_refresh(alice):
    pair = login()
    User.objects.filter(pk=alice.pk).update(is_active=False)

    assert get_with(pair["access"]).status_code == 401
    assert refresh_with(pair["refresh"]).status_code == 401


def test_deleted_user_gets_401_for_access_and_refresh(alice):
    pair = login()
    User.objects.filter(pk=alice.pk).delete()

    assert get_with(pair["access"]).status_code == 401
    assert refresh_with(pair["refresh"]).status_code == 401


def test_refresh_token_without_an_outstanding_record_gets_401(alice):
    # Every refresh token the API issues is recorded; one that is not was not issued by it.
    token = RefreshToken()
    token["user_id"] = alice.id

    assert refresh_with(str(token)).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_refreshes_of_one_token_at_most_one_succeeds():
    user = UserFactory(email="racer@example.test")
    refresh = str(RefreshToken.for_user(user))
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def refresh_once():
        try:
            barrier.wait(timeout=5)
            statuses.append(refresh_with(refresh).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=refresh_once) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert sorted(statuses) == [200, 401]


# ------------------------------------------------------------------------------------------------------------
# Valid tokens, wrong workspace


def test_removed_member_keeps_a_valid_token_but_gets_403_for_the_workspace(acme, alice):
    carol = UserFactory(email="carol@acme.test")
    MembershipFactory(user=carol, workspace=acme, role=Role.MEMBER)
    client = client_for(carol, acme)
    assert client.get(SCOPED).status_code == 200

    Membership.objects.filter(user=carol, workspace=acme).delete()

    assert client.get(SCOPED).status_code == 403
    assert client.get(PROTECTED).json()["count"] == 0


def test_valid_token_with_another_workspaces_id_gets_403(alice, acme, globex, bob):
    response = client_for(alice, globex).get(SCOPED)

    assert response.status_code == 403
    assert "Globex" not in response.content.decode()


def test_valid_token_with_a_malformed_workspace_id_gets_400(alice, acme):
    client = client_for(alice)
    client.defaults["HTTP_X_WORKSPACE_ID"] = "'; DROP TABLE connectors_connector; --"

    response = client.get(SCOPED)

    assert response.status_code == 400
    assert "X-Workspace-ID" in response.json()["detail"]
