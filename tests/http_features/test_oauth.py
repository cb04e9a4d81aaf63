"""OAuth2 credentials end to end in this process: API -> execution -> token endpoint -> protected API, against
a real local OAuth2 server (tests/oauth_server.py)."""

import json
import logging
import threading
import time

import pytest
from django.db import connection

from connectors.engine.http import AddressPolicy, SafeHttpClient
from credentials.models import Credential
from credentials.oauth import VaultTokenSource
from credentials.provider import VaultCredentialProvider
from credentials.services import credential_decrypt
from executions.models import Execution, ExecutionStep
from tests.executions.helpers import make_connector, run_api
from tests.local_server import Reply
from tests.oauth_server import OAuthServer

CLIENT_SECRET = "cs-very-secret-client-secret"


@pytest.fixture
def oauth():
    with OAuthServer(client_id="cid", client_secret=CLIENT_SECRET) as server:
        server.protect("/api/me", {"name": "acme"})
        yield server


def store(api, service, type, fields, **extra):
    return api.post(
        "/api/v1/workspace/credentials",
        {"service_name": service, "type": type, "credentials": fields, **extra},
        format="json",
    )


def oauth_connector(acme, oauth, service="provider"):
    step = {
        "name": "me",
        "url": f"{oauth.url}/api/me",
        "auth": {"type": "oauth2", "credential": service},
        "extract": {"name": "name"},
        "retry": {"max_attempts": 1},
    }
    return make_connector(acme, [step])


def client_credentials(alice_api, oauth, **fields):
    response = store(
        alice_api,
        "provider",
        "oauth2_client_credentials",
        {"token_url": oauth.token_url, "client_id": "cid", "client_secret": CLIENT_SECRET, **fields},
    )
    assert response.status_code == 201, response.content
    return response


def test_client_credentials_token_is_fetched_once_and_shared_by_executions(alice_api, acme, oauth):
    client_credentials(alice_api, oauth, scope="read write", audience="https://api.example")
    connector = oauth_connector(acme, oauth)

    first = run_api(alice_api, connector)
    second = run_api(alice_api, connector)

    assert (first["status"], second["status"]) == ("succeeded", "succeeded")
    assert first["output"] == {"me": {"name": "acme"}}
    assert oauth.token_requests == [
        {"grant_type": "client_credentials", "scope": "read write", "audience": "https://api.example"}
    ]
    assert [token for token, _ in oauth.api_calls] == ["at-1", "at-1"]
    assert first["steps"][0]["request"]["headers"]["Authorization"] == "[REDACTED]"


def test_the_credential_list_shows_type_and_token_expiry_but_no_values(alice_api, acme, oauth):
    client_credentials(alice_api, oauth)
    listed = alice_api.get("/api/v1/workspace/credentials").json()["results"][0]
    assert (listed["type"], listed["token_expires_at"]) == ("oauth2_client_credentials", None)

    run_api(alice_api, oauth_connector(acme, oauth))

    listed = alice_api.get("/api/v1/workspace/credentials").json()["results"][0]
    assert listed["type"] == "oauth2_client_credentials"
    assert listed["token_expires_at"] is not None
    assert listed["fields"] == ["client_id", "client_secret", "token_url"]
    assert CLIENT_SECRET not in json.dumps(listed)
    assert "at-1" not in json.dumps(listed)


def test_a_401_fetches_one_new_token_and_sends_again(alice_api, acme, oauth):
    client_credentials(alice_api, oauth)
    connector = oauth_connector(acme, oauth)
    run_api(alice_api, connector)
    oauth.expire_access_tokens()  # the provider revoked or expired it before our cached expiry

    detail = run_api(alice_api, connector)

    assert detail["status"] == "succeeded"
    assert oauth.api_calls == [("at-1", 200), ("at-1", 401), ("at-2", 200)]
    assert len(oauth.token_requests) == 2


def test_a_second_401_after_the_new_token_fails_the_step(alice_api, acme, oauth):
    client_credentials(alice_api, oauth)
    oauth.server.route("/api/me", Reply(401))

    detail = run_api(alice_api, oauth_connector(acme, oauth))

    assert detail["status"] == "failed"
    assert detail["steps"][0]["error"] == "HTTP 401"
    assert len(oauth.token_requests) == 2  # the first token, and one new one after the 401


def test_refresh_token_rotation_is_written_back(alice_api, acme, oauth):
    oauth.add_refresh_token("rt-0")
    fields = {"token_url": oauth.token_url, "client_id": "cid", "client_secret": CLIENT_SECRET, "refresh_token": "rt-0"}
    assert store(alice_api, "provider", "oauth2_refresh_token", fields).status_code == 201
    connector = oauth_connector(acme, oauth)

    assert run_api(alice_api, connector)["status"] == "succeeded"
    credential = Credential.objects.get(service_name="provider")
    assert credential_decrypt(credential)["refresh_token"] == "rt-1"

    oauth.expire_access_tokens()
    assert run_api(alice_api, connector)["status"] == "succeeded"

    assert [form["refresh_token"] for form in oauth.token_requests] == ["rt-0", "rt-1"]
    assert credential_decrypt(Credential.objects.get(service_name="provider"))["refresh_token"] == "rt-2"
    assert oauth.reused_refresh_tokens == []


def test_concurrent_refreshes_spend_each_refresh_token_once(acme, alice_api, oauth, transactional_db):
    oauth.token_delay = 0.2  # a slow token endpoint widens the race
    oauth.add_refresh_token("rt-0")
    fields = {"token_url": oauth.token_url, "client_id": "cid", "client_secret": CLIENT_SECRET, "refresh_token": "rt-0"}
    assert store(alice_api, "provider", "oauth2_refresh_token", fields).status_code == 201
    client = SafeHttpClient(AddressPolicy.from_setting("127.0.0.1"))
    tokens: list[str] = []

    def fetch():
        try:
            tokens.append(VaultTokenSource(VaultCredentialProvider(acme.id), client).access_token("provider"))
        finally:
            connection.close()

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert tokens == ["at-1"] * 8
    assert [form["refresh_token"] for form in oauth.token_requests] == ["rt-0"]
    assert oauth.reused_refresh_tokens == []


def test_a_refused_token_request_fails_the_step_with_status_and_oauth_error(alice_api, acme, oauth, caplog):
    caplog.set_level(logging.DEBUG)
    store(
        alice_api,
        "provider",
        "oauth2_client_credentials",
        {"token_url": oauth.token_url, "client_id": "cid", "client_secret": "wrong-secret-value"},
    )
    connector = oauth_connector(acme, oauth)
    connector.steps[0]["retry"] = {"max_attempts": 3}
    connector.save()

    detail = run_api(alice_api, connector)

    assert detail["status"] == "failed"
    assert detail["steps"][0]["error"] == (
        "OAuth2 credential 'provider': the token endpoint refused with HTTP 401 (invalid_client)"
    )
    assert len(oauth.token_requests) == 1  # a refusal is permanent: not retried
    assert "wrong-secret-value" not in json.dumps(detail) + caplog.text


def test_a_spent_refresh_token_fails_the_step_with_invalid_grant(alice_api, acme, oauth):
    fields = {"token_url": oauth.token_url, "client_id": "cid", "client_secret": CLIENT_SECRET, "refresh_token": "gone"}
    store(alice_api, "provider", "oauth2_refresh_token", fields)

    detail = run_api(alice_api, oauth_connector(acme, oauth))

    assert detail["steps"][0]["error"] == (
        "OAuth2 credential 'provider': the token endpoint refused with HTTP 400 (invalid_grant)"
    )


def test_oauth2_auth_naming_a_static_credential_fails_with_a_clear_message(alice_api, acme, oauth):
    alice_api.post(
        "/api/v1/workspace/credentials",
        {"service_name": "provider", "credentials": {"api_key": "k-123456"}},
        format="json",
    )

    detail = run_api(alice_api, oauth_connector(acme, oauth))

    assert detail["status"] == "failed"
    assert detail["steps"][0]["error"] == (
        "OAuth2 credential 'provider': the credential 'provider' is a static credential, not OAuth2; store it "
        "with type oauth2_client_credentials or oauth2_refresh_token, or use another auth type"
    )
    assert detail["steps"][0]["response"] is None


def test_oauth2_auth_naming_a_missing_credential_fails_before_sending(alice_api, acme, oauth):
    detail = run_api(alice_api, oauth_connector(acme, oauth, service="nothing"))

    assert detail["steps"][0]["error"] == (
        "OAuth2 credential 'nothing': the workspace has no credential for service 'nothing'; add it under "
        "/workspace/credentials"
    )
    assert oauth.server.hits == 0


def test_secrets_never_reach_executions_or_logs(alice_api, acme, oauth, caplog):
    caplog.set_level(logging.DEBUG)
    oauth.add_refresh_token("rt-0")
    fields = {"token_url": oauth.token_url, "client_id": "cid", "client_secret": CLIENT_SECRET, "refresh_token": "rt-0"}
    store(alice_api, "provider", "oauth2_refresh_token", fields)
    connector = oauth_connector(acme, oauth)
    run_api(alice_api, connector)
    oauth.expire_access_tokens()
    detail = run_api(alice_api, connector)

    rows = list(Execution.objects.values()) + list(ExecutionStep.objects.values())
    stored = json.dumps(rows, default=str) + json.dumps(detail) + caplog.text
    for secret in (CLIENT_SECRET, "rt-0", "rt-1", "rt-2", "at-1", "at-2"):
        assert secret not in stored, secret


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {"type": "oauth2_magic", "credentials": {"a": "b"}},
            {"type": ['"oauth2_magic" is not a valid choice.']},
        ),
        (
            {
                "type": "oauth2_client_credentials",
                "credentials": {"token_url": "https://a.example/t", "client_id": "c"},
            },
            {"credentials": {"client_secret": ["This field is required for this credential type."]}},
        ),
        (
            {
                "type": "oauth2_refresh_token",
                "credentials": {"token_url": "https://a.example/t", "client_id": "c", "client_secret": "s"},
            },
            {"credentials": {"refresh_token": ["This field is required for this credential type."]}},
        ),
        (
            {
                "type": "oauth2_client_credentials",
                "credentials": {"token_url": "ftp://a.example/t", "client_id": "c", "client_secret": "s"},
            },
            {"credentials": {"token_url": ["Must be an http:// or https:// URL with a host."]}},
        ),
        (
            {
                "type": "oauth2_client_credentials",
                "credentials": {"token_url": "https://a.example/t", "client_id": "c", "client_secret": "s", "pin": "1"},
            },
            {"credentials": {"pin": ["Unknown field for this credential type."]}},
        ),
    ],
)
def test_bad_oauth2_credentials_are_a_400_naming_fields_not_values(alice_api, body, errors):
    response = alice_api.post("/api/v1/workspace/credentials", {"service_name": "provider", **body}, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert not Credential.objects.exists()


@pytest.mark.parametrize(
    ("auth", "errors"),
    [
        ({"type": "oauth2"}, {"credential": ["This field is required."]}),
        (
            {"type": "oauth2", "credential": "Not A Service"},
            {"credential": ["Name a credential's service_name: ^[a-z0-9][a-z0-9_-]{0,63}$."]},
        ),
        ({"type": "oauth2", "credential": "crm", "token": "x"}, {"token": ["Unknown field."]}),
    ],
)
def test_bad_oauth2_auth_is_a_400_at_save_time(alice_api, auth, errors):
    body = {"name": "x", "steps": [{"name": "s", "url": "https://api.example.com", "auth": auth}]}
    response = alice_api.post("/api/v1/connectors", body, format="json")

    assert response.status_code == 400
    assert response.json() == {"steps": [{"auth": errors}]}


def test_an_export_lists_the_oauth2_credential_as_required(alice_api, acme, oauth):
    connector = oauth_connector(acme, oauth, service="crm")

    document = alice_api.get(f"/api/v1/connectors/{connector.id}/export").json()

    assert document["required_credentials"] == ["crm"]


def test_pages_after_a_401_use_the_new_token(alice_api, acme, oauth):
    client_credentials(alice_api, oauth)
    seen: list[tuple[str, int]] = []

    def pages(request):
        token = (request.header("Authorization") or "").removeprefix("Bearer ")
        page = int(request.path.rsplit("page=", 1)[1])
        if page == 2 and token == "at-1":
            oauth.expire_access_tokens()  # the token dies between page 1 and page 2
        valid = oauth.access_tokens.get(token, 0.0) > time.monotonic()
        seen.append((token, page))
        if not valid:
            return Reply(401)
        items = [] if page == 4 else [page]
        return Reply(200, headers={"Content-Type": "application/json"}, body=json.dumps({"items": items}).encode())

    oauth.server.route("/api/list", pages)
    step = {
        "name": "list",
        "url": f"{oauth.url}/api/list",
        "auth": {"type": "oauth2", "credential": "provider"},
        "paginate": {"type": "page", "param": "page", "items_path": "items"},
        "extract": {"items": "items"},
    }
    detail = run_api(alice_api, make_connector(acme, [step]))

    assert detail["output"] == {"list": {"items": [1, 2, 3]}}
    assert seen == [("at-1", 1), ("at-1", 2), ("at-2", 2), ("at-2", 3), ("at-2", 4)]
