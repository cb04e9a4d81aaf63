"""A credential used in a header, the query and Basic auth, against httpbin's /anything (which echoes all of
it back), leaves no plaintext anywhere: not in the execution the API shows, not in the database on disk."""

import base64
import json
from urllib.parse import quote, quote_plus

import pytest

from credentials.services import credential_upsert
from tests.executions.helpers import database_dump, make_connector, run_api

TOKEN = "tok_9Xq2LmZ7pR4vK8sW"
API_KEY = "key_Hf3nB6yT1cJ5eU0a"
USERNAME = "svc-robot"
PASSWORD = "pw_Zr8Qm2Ls6Nd4Gx1c"


def secret_forms() -> list[str]:
    forms = []
    for secret in (TOKEN, API_KEY, PASSWORD, f"{USERNAME}:{PASSWORD}"):
        encoded = base64.b64encode(secret.encode()).decode()
        forms += [secret, encoded, encoded.rstrip("="), quote(secret, safe=""), quote_plus(secret)]
    return forms


@pytest.fixture
def echoing_connector(acme, httpbin):
    credential_upsert(
        workspace=acme,
        service_name="acmeapi",
        fields={"token": TOKEN, "key": API_KEY, "user": USERNAME, "password": PASSWORD},
    )
    return make_connector(
        acme,
        [
            {
                "name": "echo",
                "url": f"{httpbin.url}/anything",
                "headers": {"X-Upstream-Token": "{{workspace.acmeapi.token}}"},
                "query": {"key": "{{workspace.acmeapi.key}}", "plain": "visible"},
                "auth": {
                    "type": "basic",
                    "username": "{{workspace.acmeapi.user}}",
                    "password": "{{workspace.acmeapi.password}}",
                },
                "extract": {"echoed_header": "headers.X-Upstream-Token", "echoed_key": "args.key"},
            },
            {
                "name": "check_basic",
                "url": f"{httpbin.url}/basic-auth/{{{{workspace.acmeapi.user}}}}/{{{{workspace.acmeapi.password}}}}",
                "auth": {
                    "type": "basic",
                    "username": "{{workspace.acmeapi.user}}",
                    "password": "{{workspace.acmeapi.password}}",
                },
                "extract": {"authenticated": "authenticated"},
            },
        ],
    )


@pytest.mark.django_db(transaction=True)
def test_credentials_echoed_back_are_stored_nowhere_in_clear(alice_api, echoing_connector):
    execution = run_api(alice_api, echoing_connector)

    assert execution["status"] == "succeeded", execution
    assert execution["output"]["check_basic"] == {"authenticated": True}
    assert execution["output"]["echo"] == {"echoed_header": "[REDACTED]", "echoed_key": "[REDACTED]"}
    echoed = execution["steps"][0]["response"]["body"]
    assert echoed["args"] == {"key": "[REDACTED]", "plain": "visible"}
    assert echoed["headers"]["Authorization"] == "Basic [REDACTED]"
    serialized = json.dumps(execution)
    assert [form for form in secret_forms() if form in serialized] == []


@pytest.mark.django_db(transaction=True)
def test_a_dump_of_the_database_holds_no_secret(alice_api, echoing_connector):
    assert run_api(alice_api, echoing_connector)["status"] == "succeeded"

    dump = database_dump()

    assert "acmeapi" in dump  # the credential row is in the dump, encrypted
    assert [form for form in secret_forms() if form in dump] == []
