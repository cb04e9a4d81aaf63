"""OAuth2 secrets at rest: after token fetches, a rotation and an API that echoes the access token back, a dump
of the database holds neither the client secret nor any access or refresh token, in any common encoding."""

import base64
from urllib.parse import quote

import pytest

from tests.executions.helpers import database_dump, make_connector, require_pg_dump, run_api
from tests.oauth_server import OAuthServer

CLIENT_SECRET = "cs_Pq7Wd2Rx9Lm4Tz6V"
SUFFIX = "_Kx3Nf8Bq1Ys5Hc7J"


def forms(secret: str) -> list[str]:
    encoded = base64.b64encode(secret.encode()).decode()
    return [secret, encoded, encoded.rstrip("="), quote(secret, safe="")]


@pytest.mark.django_db(transaction=True)
def test_a_dump_of_the_database_holds_no_oauth_secret(alice_api, acme):
    require_pg_dump()
    with OAuthServer(client_id="cid", client_secret=CLIENT_SECRET, token_suffix=SUFFIX) as oauth:
        oauth.protect("/api/me", {"name": "acme"})  # answers with the token it was given, in the body
        oauth.add_refresh_token(f"rt-0{SUFFIX}")
        fields = {"token_url": oauth.token_url, "client_id": "cid", "client_secret": CLIENT_SECRET}
        alice_api.post(
            "/api/v1/workspace/credentials",
            {
                "service_name": "provider",
                "type": "oauth2_refresh_token",
                "credentials": {**fields, "refresh_token": f"rt-0{SUFFIX}"},
            },
            format="json",
        )
        step = {"name": "me", "url": f"{oauth.url}/api/me", "auth": {"type": "oauth2", "credential": "provider"}}
        connector = make_connector(acme, [{**step, "extract": {"token": "token"}}])
        first = run_api(alice_api, connector)
        oauth.expire_access_tokens()
        second = run_api(alice_api, connector)

    assert (first["status"], second["status"]) == ("succeeded", "succeeded")
    assert second["output"] == {"me": {"token": "[REDACTED]"}}
    dump = database_dump()

    assert "oauth2_refresh_token" in dump  # the credential row is there, encrypted
    secrets = [CLIENT_SECRET, *(f"{kind}-{n}{SUFFIX}" for kind in ("at", "rt") for n in range(3))]
    assert [form for secret in secrets for form in forms(secret) if form in dump] == []
