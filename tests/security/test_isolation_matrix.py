"""The isolation matrix, generated from the OpenAPI schema: every operation the API documents, tried by callers
who must not see workspace A (alice's Acme).

* Anonymous callers get 401 on every /api/v1/ operation but register, token and token/refresh.
* A member of another workspace (bob, Globex) who names Acme in X-Workspace-ID, or an unknown workspace, gets
  403 on every workspace-scoped operation.
* Bob, in his own workspace, addressing Acme's objects by id gets 404 (403 for /workspaces/{A}/...).
* No answer to bob, on any operation, holds a byte of Acme's data (ids, names, emails, inputs, outputs,
  secrets), and none of his requests changes Acme's rows.

A workspace-scoped operation is one that documents the X-Workspace-ID header (workspaces.scoping adds it to
every scoped view) or lives under /workspaces/{workspace_id}/. Path parameters are filled with Acme's objects;
a parameter the matrix does not know fails the test, so a new endpoint is noticed, not skipped.
"""

import json
import re
import uuid
from dataclasses import dataclass

import pytest
from drf_spectacular.generators import SchemaGenerator

from batches.models import Batch
from connectors.models import Connector, ConnectorVersion
from contacts.models import Contact
from credentials.models import Credential
from executions.models import Execution, ExecutionStep
from tests.conftest import client_for
from tests.security.conftest import TenantData
from triggers.models import Trigger
from webhooks.models import WebhookDelivery, WebhookEndpoint
from workspaces.models import ApiKey, Membership, Workspace

PUBLIC_OPERATIONS = {"/api/v1/auth/register/", "/api/v1/auth/token/", "/api/v1/auth/token/refresh/"}
SCHEMA_METHODS = ("get", "post", "put", "patch", "delete")

# (the collection segment before the parameter, the parameter) -> which of Acme's objects fills it.
PARAMETER_KINDS = {
    ("connectors", "id"): "connector",
    ("versions", "number"): "version",
    ("contacts", "id"): "contact",
    ("executions", "id"): "execution",
    ("credentials", "service_name"): "credential",
    ("check", "service_name"): "credential",
    ("workspaces", "workspace_id"): "workspace",
    ("members", "user_id"): "member",
    ("connector-templates", "id"): "template",
    ("templates", "template_id"): "template",
    ("api-keys", "id"): "api_key",
    ("triggers", "trigger_id"): "trigger",
    ("webhook-endpoints", "id"): "webhook_endpoint",
    ("batches", "id"): "batch",
    # A hook's token is its only credential: knowing Acme's token is being Acme's sender. The matrix checks
    # that a token nobody was given finds nothing.
    ("hooks", "token"): "hook_token",
}
# Kinds that are not one workspace's data: bob may legitimately act on them from his own workspace.
GLOBAL_KINDS = {"template", "hook_token"}

CONNECTOR_BODY = {"name": "Bob's", "steps": [{"name": "fetch", "url": "https://api.example.com/x"}]}
BODIES = {
    ("post", "/api/v1/connectors/"): CONNECTOR_BODY,
    ("put", "/api/v1/connectors/{id}/"): CONNECTOR_BODY,
    ("patch", "/api/v1/connectors/{id}/"): {"name": "Renamed by bob"},
    ("post", "/api/v1/connectors/{id}/execute/"): {"input": {}},
    ("post", "/api/v1/connectors/{id}/test/"): {"input": {}},
    # A private address: the SSRF guard refuses it before anything connects.
    ("post", "/api/v1/connectors/test/"): {"definition": {"steps": [{"name": "probe", "url": "http://10.255.0.1/x"}]}},
    ("post", "/api/v1/connectors/import/"): {
        "format": "connector/v1",
        "connector": {"name": "Bob's import", "steps": [{"name": "fetch", "url": "https://api.example.com/x"}]},
    },
    ("post", "/api/v1/connectors/{id}/execute-batch/"): {"items": [{"input": {}}]},
    ("post", "/api/v1/connectors/{id}/triggers/"): {"type": "webhook"},
    ("patch", "/api/v1/connectors/{id}/triggers/{trigger_id}/"): {"is_active": False},
    ("post", "/api/v1/workspace/api-keys/"): {"name": "bob's key"},
    ("post", "/api/v1/workspace/webhook-endpoints/"): {"url": "https://bob.example/in", "events": ["execution.failed"]},
    ("patch", "/api/v1/workspace/webhook-endpoints/{id}/"): {"is_active": False},
    ("post", "/api/v1/contacts/"): {"email": "bob-contact@globex.test"},
    ("put", "/api/v1/contacts/{id}/"): {"email": "bob-contact@globex.test"},
    ("patch", "/api/v1/contacts/{id}/"): {"first_name": "Renamed by bob"},
    ("post", "/api/v1/workspace/credentials/"): {"service_name": "bobsvc", "credentials": {"key": "bob-value"}},
    ("post", "/api/v1/workspaces/{workspace_id}/members/"): {"email": "bob@globex.test", "role": "owner"},
    ("patch", "/api/v1/workspaces/{workspace_id}/members/{user_id}/"): {"role": "owner"},
    ("post", "/api/v1/workspaces/"): {"name": "Bob's second"},
    ("post", "/api/v1/connector-templates/{id}/rate/"): {"rating": 4},
    ("post", "/api/v1/auth/password/"): {"old_password": "not-his-password", "new_password": "An0ther-long-pass"},
    ("post", "/api/v1/auth/logout/"): {"refresh": "not-a-token"},
    ("post", "/api/v1/auth/token/"): {"email": "alice@acme.test", "password": "wrong-password"},
    ("post", "/api/v1/auth/token/refresh/"): {"refresh": "not-a-token"},
    ("post", "/api/v1/auth/register/"): {"email": "newcomer@example.test", "password": "Corr3ct-horse-battery"},
}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    parameters: tuple[tuple[str, str], ...]  # (name, kind)
    unknown: tuple[str, ...]  # parameters the matrix cannot fill
    scoped: bool

    @property
    def kinds(self) -> set[str]:
        return {kind for _, kind in self.parameters}

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


def _operations() -> list[Operation]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, item in schema["paths"].items():
        for method in SCHEMA_METHODS:
            if method not in item:
                continue
            declared = item[method].get("parameters", [])
            header = any(p["in"] == "header" and p["name"].lower() == "x-workspace-id" for p in declared)
            known, unknown = [], []
            for name in re.findall(r"{([^}]+)}", path):
                before = path.split("{" + name + "}")[0].rstrip("/").rsplit("/", 1)[-1]
                kind = PARAMETER_KINDS.get((before, name))
                (known if kind else unknown).append((name, kind) if kind else name)
            scoped = header or path.startswith("/api/v1/workspaces/{")
            found.append(Operation(method, path, tuple(known), tuple(unknown), scoped))
    return found


OPERATIONS = _operations()
API_OPERATIONS = [op for op in OPERATIONS if op.path.startswith("/api/v1/")]
SCOPED_OPERATIONS = [op for op in OPERATIONS if op.scoped]


def _values(tenant: TenantData) -> dict[str, str]:
    return {
        "connector": str(tenant.connector.id),
        "version": "1",
        "contact": str(tenant.contact.id),
        "execution": str(tenant.execution.id),
        "credential": tenant.credential.service_name,
        "workspace": str(tenant.workspace.id),
        "member": str(tenant.member.id),
        "template": str(tenant.template.id),
        **tenant.integration_ids,
    }


def _url(op: Operation, tenant: TenantData) -> str:
    if op.unknown:
        pytest.fail(
            f"{op}: the isolation matrix does not know the path parameter(s) {', '.join(op.unknown)}; add them to "
            "PARAMETER_KINDS (tests/security/test_isolation_matrix.py) with the object of workspace A they name."
        )
    values = _values(tenant)
    url = op.path
    for name, kind in op.parameters:
        url = url.replace("{" + name + "}", values[kind])
    return url


def _send(client, op: Operation, url: str, method: str | None = None):
    method = method or op.method
    body = BODIES.get((op.method, op.path), {})
    if method in ("get", "head", "options", "delete"):
        return getattr(client, method)(url), ""
    return getattr(client, method)(url, body, format="json"), json.dumps(body)


def _snapshot(workspace: Workspace) -> dict:
    """Every row of the workspace, as the values that a write would change."""
    return {
        "workspace": list(Workspace.objects.filter(pk=workspace.pk).values_list("name")),
        "members": sorted(Membership.objects.filter(workspace=workspace).values_list("user_id", "role")),
        "connectors": sorted(
            Connector.objects.filter(workspace=workspace).values_list(
                "id", "name", "is_active", "version", "updated_at"
            )
        ),
        "versions": sorted(ConnectorVersion.objects.filter(workspace=workspace).values_list("id", "version")),
        "contacts": sorted(Contact.objects.filter(workspace=workspace).values_list("id", "email", "updated_at")),
        "executions": sorted(
            Execution.objects.filter(workspace=workspace).values_list("id", "status", "cancel_requested")
        ),
        "steps": sorted(ExecutionStep.objects.filter(execution__workspace=workspace).values_list("id", "status")),
        "triggers": sorted(Trigger.objects.filter(workspace=workspace).values_list("id", "is_active", "updated_at")),
        "webhook_endpoints": sorted(
            WebhookEndpoint.objects.filter(workspace=workspace).values_list("id", "url", "is_active", "updated_at")
        ),
        "deliveries": sorted(WebhookDelivery.objects.filter(workspace=workspace).values_list("id", "status")),
        "batches": sorted(Batch.objects.filter(workspace=workspace).values_list("id", "ended", "finished_at")),
        "api_keys": sorted(ApiKey.objects.filter(workspace=workspace).values_list("id", "revoked_at")),
        "credentials": sorted(
            Credential.objects.filter(workspace=workspace).values_list("service_name", "ciphertext", "updated_at")
        ),
    }


def _leaks(tenant: TenantData, response, sent: str) -> list[str]:
    headers = "\n".join(f"{name}: {value}" for name, value in response.items())
    return tenant.leaks_in(response.content + headers.encode(), except_=sent)


# ------------------------------------------------------------------------------------------------------------


def test_the_matrix_covers_every_documented_operation():
    # The counts are the report of what the matrix covers; a new endpoint changes them (and is then covered).
    assert len(OPERATIONS) >= 45
    assert len(SCOPED_OPERATIONS) >= 27
    assert {op.path for op in API_OPERATIONS} >= PUBLIC_OPERATIONS
    assert all(not op.unknown for op in OPERATIONS), [str(op) for op in OPERATIONS if op.unknown]


@pytest.mark.parametrize("op", [op for op in API_OPERATIONS if op.path not in PUBLIC_OPERATIONS], ids=str)
def test_anonymous_caller_gets_401(op, tenant_a, anon_api):
    url = _url(op, tenant_a)
    before = _snapshot(tenant_a.workspace)

    response, _ = _send(anon_api, op, url)
    options = anon_api.options(url)

    assert (response.status_code, options.status_code) == (401, 401), response.content
    assert response.json()["detail"]
    assert tenant_a.leaks_in(response.content) == []
    assert _snapshot(tenant_a.workspace) == before


@pytest.mark.parametrize("named", ["acme", "unknown"])
@pytest.mark.parametrize("op", SCOPED_OPERATIONS, ids=str)
def test_member_of_another_workspace_naming_it_gets_403(op, named, tenant_a, bob):
    client = client_for(bob)
    client.defaults["HTTP_X_WORKSPACE_ID"] = str(tenant_a.workspace.id if named == "acme" else uuid.uuid4())
    url = _url(op, tenant_a)
    before = _snapshot(tenant_a.workspace)

    response, sent = _send(client, op, url)
    extra = [client.options(url)] + ([client.head(url)] if op.method == "get" else [])

    assert response.status_code == 403, response.content
    if not op.kinds & GLOBAL_KINDS:  # a template's OPTIONS describes the template endpoint, not a workspace
        assert [r.status_code for r in extra] == [403] * len(extra)
    assert _leaks(tenant_a, response, url + sent) == []
    assert _snapshot(tenant_a.workspace) == before


def _expected_for_bob(op: Operation) -> int | None:
    """What bob, acting in his own workspace, gets for an operation on Acme's objects; None: not decided by
    isolation (no path parameter, or only global ones such as a template)."""
    kinds = op.kinds
    if not kinds or kinds <= GLOBAL_KINDS or not op.scoped:
        return None
    if "workspace" in kinds:
        return 403
    if op.path.startswith("/api/v1/workspace/credentials/check/"):
        return 200  # {"exists": false}: the check answers for bob's own workspace
    return 404


@pytest.mark.parametrize("op", OPERATIONS, ids=str)
def test_member_of_another_workspace_never_sees_or_changes_its_data(op, tenant_a, bob_api):
    url = _url(op, tenant_a)
    before = _snapshot(tenant_a.workspace)

    response, sent = _send(bob_api, op, url)
    extra = [bob_api.options(url)] + ([bob_api.head(url)] if op.method == "get" else [])

    expected = _expected_for_bob(op)
    if expected is not None:
        assert response.status_code == expected, response.content
    if expected == 200:
        assert response.json()["exists"] is False
    assert response.status_code < 500, response.content
    assert [r.status_code < 500 for r in extra] == [True] * len(extra)
    for answer in (response, *extra):
        assert _leaks(tenant_a, answer, url + sent) == []
    assert _snapshot(tenant_a.workspace) == before
