"""The SaaS admin API (docs/api.md §12): staff only, figures equal to the database's."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from executions.models import Execution, Status
from templates_market.models import ConnectorTemplate
from tests.admin.builders import make_execution, make_executions
from tests.factories import ConnectorFactory, MembershipFactory, WorkspaceFactory

ADMIN_GETS = ["/api/v1/admin/stats", "/api/v1/admin/workspaces", "/api/v1/admin/executions/recent"]


@pytest.fixture
def template(db):
    return ConnectorTemplate.objects.create(
        name="Phone validation",
        slug="phone-validation",
        definition={"input_schema": {}, "max_duration_seconds": 300, "steps": [], "contact_mapping": {}},
    )


@pytest.fixture
def template_flag_urls(template) -> list[str]:
    return [f"/api/v1/admin/templates/{template.pk}/feature", f"/api/v1/admin/templates/{template.pk}/official"]


@pytest.mark.parametrize("url", ADMIN_GETS)
def test_anonymous_gets_401(anon_api, url):
    response = anon_api.get(url)

    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}


@pytest.mark.parametrize("url", ADMIN_GETS)
def test_workspace_owner_gets_403(alice_api, url):
    response = alice_api.get(url)

    assert response.status_code == 403
    assert response.json() == {"detail": "You do not have permission to perform this action."}


def test_template_flags_are_refused_to_non_staff(alice_api, anon_api, template, template_flag_urls):
    statuses = [
        (client.patch(url, {"is_featured": True, "is_official": True}, format="json").status_code)
        for client in (anon_api, alice_api)
        for url in template_flag_urls
    ]

    template.refresh_from_db()
    assert statuses == [401, 401, 403, 403]
    assert (template.is_featured, template.is_official) == (False, False)


@pytest.mark.parametrize("url", [*ADMIN_GETS, *(f"{url}/" for url in ADMIN_GETS)])
def test_staff_reaches_every_path_with_and_without_trailing_slash(staff_api, url):
    assert staff_api.get(url).status_code == 200


def test_stats_equal_the_database(staff_api, acme, globex, alice, bob, acme_connector, globex_connector, template):
    make_executions(acme_connector, 3, status=Status.SUCCEEDED)
    make_executions(acme_connector, 2, status=Status.FAILED)
    make_executions(globex_connector, 1, status=Status.RUNNING)
    old = make_executions(globex_connector, 4, status=Status.FAILED)
    Execution.objects.filter(pk__in=[e.pk for e in old]).update(created_at=timezone.now() - timedelta(hours=25))

    response = staff_api.get("/api/v1/admin/stats")

    assert response.status_code == 200
    assert response.json() == {
        "workspaces": 2,
        "users": 3,
        "connectors": 2,
        "templates": 1,
        "executions": {"total": 10, "succeeded": 3, "failed": 6, "last_24h": 6},
    }


def test_workspaces_lists_activity_per_workspace(staff_api, acme, globex, alice, bob, acme_connector):
    MembershipFactory(workspace=acme)
    ConnectorFactory(workspace=acme)
    make_executions(acme_connector, 2, status=Status.SUCCEEDED)
    make_executions(acme_connector, 1, status=Status.FAILED)
    old = make_executions(acme_connector, 2, status=Status.FAILED)
    long_ago = timezone.now() - timedelta(days=31)
    Execution.objects.filter(pk__in=[e.pk for e in old]).update(created_at=long_ago)
    newest = make_execution(acme_connector, status=Status.QUEUED)

    response = staff_api.get("/api/v1/admin/workspaces")

    assert response.status_code == 200
    assert response.json() == {
        "count": 2,
        "next": None,
        "previous": None,
        "results": [
            {
                "id": str(acme.pk),
                "name": "Acme",
                "members": 2,
                "connectors": 2,
                "executions_30d": 4,
                "failed_30d": 1,
                "last_execution_at": newest.created_at.isoformat().replace("+00:00", "Z"),
            },
            {
                "id": str(globex.pk),
                "name": "Globex",
                "members": 1,
                "connectors": 0,
                "executions_30d": 0,
                "failed_30d": 0,
                "last_execution_at": None,
            },
        ],
    }


def test_workspaces_list_costs_the_same_queries_for_2_and_60_workspaces(staff_api, acme, acme_connector):
    make_executions(acme_connector, 5)
    staff_api.get("/api/v1/admin/workspaces")
    with CaptureQueriesContext(connection) as few:
        staff_api.get("/api/v1/admin/workspaces?page_size=100")
    for index in range(60):
        workspace = WorkspaceFactory(name=f"W{index:02}")
        make_executions(ConnectorFactory(workspace=workspace), 2)

    with CaptureQueriesContext(connection) as many:
        response = staff_api.get("/api/v1/admin/workspaces?page_size=100")

    assert response.json()["count"] == 61
    assert len(response.json()["results"]) == 61
    assert len(few.captured_queries) == len(many.captured_queries) == 2  # the staff user is cached (access)


def test_workspaces_list_paginates(staff_api):
    WorkspaceFactory.create_batch(3)

    response = staff_api.get("/api/v1/admin/workspaces?page_size=2&page=2")

    assert response.status_code == 200
    assert response.json()["count"] == 3
    assert len(response.json()["results"]) == 1
    assert response.json()["next"] is None
    assert response.json()["previous"] == "http://testserver/api/v1/admin/workspaces?page_size=2"


def test_recent_executions_are_the_newest_of_all_workspaces(staff_api, acme_connector, globex_connector):
    older = make_execution(acme_connector, status=Status.FAILED)
    Execution.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(hours=1))
    newer = make_execution(globex_connector, status=Status.SUCCEEDED)

    response = staff_api.get("/api/v1/admin/executions/recent")

    body = response.json()
    assert response.status_code == 200
    assert (body["count"], body["next"], body["previous"]) == (2, None, None)
    assert [item["id"] for item in body["results"]] == [str(newer.pk), str(older.pk)]
    assert body["results"][1] == {
        "id": str(older.pk),
        "connector": str(acme_connector.pk),
        "workspace": str(acme_connector.workspace_id),
        "connector_version": 1,
        "status": "failed",
        "input": {"phone": "+14155550100"},
        "output": {},
        "error": "Step fetch failed: 500",
        "notes": [],
        "contact": None,
        "attempts": 1,
        "triggered_by": "api",
        "created_at": body["results"][1]["created_at"],
        "started_at": body["results"][1]["started_at"],
        "finished_at": body["results"][1]["finished_at"],
        "duration_ms": 120,
        "connector_name": "Acme phone check",
        "workspace_name": "Acme",
    }


def test_recent_executions_default_to_50_and_honour_limit(staff_api, acme_connector):
    make_executions(acme_connector, 60)

    default = staff_api.get("/api/v1/admin/executions/recent").json()
    limited = staff_api.get("/api/v1/admin/executions/recent?limit=7").json()

    assert (default["count"], len(default["results"])) == (50, 50)
    assert (limited["count"], len(limited["results"])) == (7, 7)


def test_recent_executions_cost_one_query_whatever_the_limit(staff_api, acme_connector):
    make_executions(acme_connector, 200)
    staff_api.get("/api/v1/admin/executions/recent?limit=1")  # the caller's first request reads its user

    with CaptureQueriesContext(connection) as one:
        staff_api.get("/api/v1/admin/executions/recent?limit=1")
    with CaptureQueriesContext(connection) as all_of_them:
        staff_api.get("/api/v1/admin/executions/recent?limit=200")

    assert len(one.captured_queries) == len(all_of_them.captured_queries) == 1


@pytest.mark.parametrize(
    ("limit", "error"),
    [
        ("0", "Ensure this value is greater than or equal to 1."),
        ("201", "Ensure this value is less than or equal to 200."),
        ("ten", "A valid integer is required."),
    ],
)
def test_recent_executions_refuse_a_bad_limit(staff_api, limit, error):
    response = staff_api.get(f"/api/v1/admin/executions/recent?limit={limit}")

    assert response.status_code == 400
    assert response.json() == {"limit": [error]}


def test_staff_features_a_template(staff_api, template):
    response = staff_api.patch(f"/api/v1/admin/templates/{template.pk}/feature", {"is_featured": True}, format="json")

    template.refresh_from_db()
    assert response.status_code == 200
    assert (response.json()["id"], response.json()["is_featured"], response.json()["is_official"]) == (
        str(template.pk),
        True,
        False,
    )
    assert template.is_featured is True


def test_staff_marks_a_template_official_and_back(staff_api, template):
    url = f"/api/v1/admin/templates/{template.pk}/official/"

    first = staff_api.patch(url, {"is_official": True}, format="json")
    second = staff_api.patch(url, {"is_official": False}, format="json")

    template.refresh_from_db()
    assert (first.status_code, first.json()["is_official"]) == (200, True)
    assert (second.status_code, second.json()["is_official"]) == (200, False)
    assert template.is_official is False


def test_flag_change_does_not_bump_the_template_version(staff_api, template):
    staff_api.patch(f"/api/v1/admin/templates/{template.pk}/feature", {"is_featured": True}, format="json")

    template.refresh_from_db()
    assert template.version == 1


def test_template_response_has_the_documented_fields(staff_api, template):
    response = staff_api.patch(f"/api/v1/admin/templates/{template.pk}/feature", {"is_featured": True}, format="json")

    assert set(response.json()) == {
        "id",
        "name",
        "slug",
        "description",
        "category",
        "tags",
        "definition",
        "required_credentials",
        "is_public",
        "is_featured",
        "is_official",
        "install_count",
        "rating_average",
        "rating_count",
        "version",
        "created_at",
        "updated_at",
    }


@pytest.mark.parametrize("body", [{}, {"is_featured": None}, {"is_featured": "maybe"}])
def test_feature_refuses_a_missing_or_non_boolean_flag(staff_api, template, body):
    response = staff_api.patch(f"/api/v1/admin/templates/{template.pk}/feature", body, format="json")

    template.refresh_from_db()
    assert response.status_code == 400
    assert list(response.json()) == ["is_featured"]
    assert template.is_featured is False


@pytest.mark.parametrize("template_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid"])
def test_flags_of_an_unknown_template_are_404_json(staff_api, template_id):
    response = staff_api.patch(f"/api/v1/admin/templates/{template_id}/official", {"is_official": True}, format="json")

    assert response.status_code == 404
    assert response.json() == {"detail": "No such template."}


def test_flags_answer_405_to_get(staff_api, template):
    response = staff_api.get(f"/api/v1/admin/templates/{template.pk}/feature")

    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "GET" not allowed.'}


def test_admin_api_is_in_the_openapi_schema(staff_api):
    paths = staff_api.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]

    # drf-spectacular writes the optional trailing slash of `/?$` routes as "/"; either form is served.
    assert {path.rstrip("/") for path in paths if path.startswith("/api/v1/admin/")} == {
        "/api/v1/admin/stats",
        "/api/v1/admin/workspaces",
        "/api/v1/admin/workspaces/{workspace_id}",
        "/api/v1/admin/executions/recent",
        "/api/v1/admin/templates/{template_id}/feature",
        "/api/v1/admin/templates/{template_id}/official",
    }
