"""Pagination of a step, each kind against a real local server, through the whole execution lifecycle."""

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.executions.helpers import json_reply, make_connector, run_api
from tests.local_server import RecordedRequest, Reply

PEOPLE = [{"id": n} for n in range(1, 8)]  # 7 items, served 3 per page


def query(request: RecordedRequest) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(request.path).query).items()}


def step(local_server, paginate, **extra):
    return {
        "name": "people",
        "url": f"{local_server.url}/people",
        "query": {"per_page": "3"},
        "paginate": paginate,
        "extract": {"ids": "items[*].id", "pages": "pages"},
        **extra,
    }


def test_cursor_pagination_follows_the_cursor_until_it_is_missing(alice_api, acme, local_server):
    def people(request):
        start = int(query(request).get("after", 0))
        chunk = PEOPLE[start : start + 3]
        cursor = str(start + 3) if start + 3 < len(PEOPLE) else None
        return json_reply({"data": chunk, "meta": {"next_cursor": cursor}})

    local_server.route("/people", people)
    paginate = {"type": "cursor", "cursor_path": "meta.next_cursor", "param": "after", "items_path": "data"}
    detail = run_api(alice_api, make_connector(acme, [step(local_server, paginate)]))

    assert detail["output"] == {"people": {"ids": [1, 2, 3, 4, 5, 6, 7], "pages": 3}}
    assert [query(r) for r in local_server.requests] == [
        {"per_page": "3"},
        {"per_page": "3", "after": "3"},
        {"per_page": "3", "after": "6"},
    ]
    assert detail["steps"][0]["attempts"] == 3
    assert detail["steps"][0]["response"]["body"] == {"items": PEOPLE, "pages": 3}


def test_next_url_from_the_body(alice_api, acme, local_server):
    def people(request):
        page = int(query(request).get("page", 1))
        chunk = PEOPLE[(page - 1) * 3 : page * 3]
        following = f"/people?page={page + 1}" if page * 3 < len(PEOPLE) else ""
        return json_reply({"results": chunk, "next": following})

    local_server.route("/people", people)
    paginate = {"type": "next_url", "path": "next", "items_path": "results"}
    detail = run_api(alice_api, make_connector(acme, [step(local_server, paginate)]))

    assert detail["output"]["people"] == {"ids": [1, 2, 3, 4, 5, 6, 7], "pages": 3}
    # The next link is relative to the page; the step's own query parameters are kept.
    assert [query(r) for r in local_server.requests] == [
        {"per_page": "3"},
        {"page": "2", "per_page": "3"},
        {"page": "3", "per_page": "3"},
    ]


def test_next_url_from_the_link_header(alice_api, acme, local_server):
    def people(request):
        page = int(query(request).get("page", 1))
        headers = {}
        if page * 3 < len(PEOPLE):
            headers["Link"] = (
                f'<{local_server.url}/people?per_page=3&page={page + 1}>; rel="next", '
                f'<{local_server.url}/people?per_page=3&page=3>; rel="last"'
            )
        return json_reply(PEOPLE[(page - 1) * 3 : page * 3], **headers)

    local_server.route("/people", people)
    detail = run_api(alice_api, make_connector(acme, [step(local_server, {"type": "next_url"})]))

    assert detail["output"]["people"] == {"ids": [1, 2, 3, 4, 5, 6, 7], "pages": 3}
    assert [query(r) for r in local_server.requests] == [
        {"per_page": "3"},
        {"per_page": "3", "page": "2"},
        {"per_page": "3", "page": "3"},
    ]


def test_offset_pagination_stops_at_an_empty_page(alice_api, acme, local_server):
    def people(request):
        offset, limit = int(query(request)["offset"]), int(query(request)["limit"])
        return json_reply({"rows": PEOPLE[offset : offset + limit]})

    local_server.route("/people", people)
    paginate = {"type": "offset", "param": "offset", "limit_param": "limit", "limit": 3, "items_path": "rows"}
    detail = run_api(alice_api, make_connector(acme, [step(local_server, paginate)]))

    assert detail["output"]["people"] == {"ids": [1, 2, 3, 4, 5, 6, 7], "pages": 4}
    assert [query(r)["offset"] for r in local_server.requests] == ["0", "3", "6", "7"]


def test_page_pagination_with_max_pages(alice_api, acme, local_server):
    local_server.route("/people", lambda request: json_reply({"items": [{"id": int(query(request)["p"])}]}))
    paginate = {"type": "page", "param": "p", "start": 0, "items_path": "items", "max_pages": 4}
    detail = run_api(alice_api, make_connector(acme, [step(local_server, paginate)]))

    assert detail["output"]["people"] == {"ids": [0, 1, 2, 3], "pages": 4}
    assert local_server.hits == 4


def test_a_transient_failure_resumes_at_the_failed_page_without_fetching_earlier_pages_again(
    alice_api, acme, local_server
):
    failures = {"left": 1}

    def people(request):
        page = int(query(request).get("page", 1))
        if page == 3 and failures["left"]:
            failures["left"] -= 1
            return Reply(503)
        return json_reply({"items": PEOPLE[(page - 1) * 3 : page * 3]})

    local_server.route("/people", people)
    paginate = {"type": "page", "param": "page", "items_path": "items"}
    detail = run_api(alice_api, make_connector(acme, [step(local_server, paginate)]))

    assert detail["output"]["people"] == {"ids": [1, 2, 3, 4, 5, 6, 7], "pages": 4}
    assert [query(r)["page"] for r in local_server.requests] == ["1", "2", "3", "3", "4"]
    assert detail["steps"][0]["attempts"] == 5


def test_a_failing_page_fails_the_step_with_its_response(alice_api, acme, local_server):
    local_server.route("/people", [json_reply({"items": [1]}), Reply(404, body=b"gone")])
    paginate = {"type": "page", "param": "page", "items_path": "items"}
    detail = run_api(alice_api, make_connector(acme, [step(local_server, paginate)]))

    assert detail["status"] == "failed"
    assert detail["steps"][0]["error"] == "HTTP 404"
    assert detail["steps"][0]["response"]["status_code"] == 404


def test_items_path_that_is_not_a_list_fails_the_step(alice_api, acme, local_server):
    local_server.route("/people", json_reply({"items": {"id": 1}}))
    paginate = {"type": "page", "param": "page", "items_path": "items"}
    detail = run_api(alice_api, make_connector(acme, [step(local_server, paginate)]))

    assert detail["steps"][0]["error"] == "items_path 'items' is not a list (page 1)"


@pytest.mark.parametrize(
    ("paginate", "errors"),
    [
        ({"type": "scroll"}, {"type": ["Unknown pagination type; use one of cursor, next_url, offset, page."]}),
        ({"type": "cursor", "cursor_path": "next"}, {"param": ["This field is required."]}),
        ({"type": "page", "param": "p", "max_pages": 0}, {"max_pages": ["Must be an integer from 1 to 100."]}),
        ({"type": "page", "param": "p", "max_pages": 101}, {"max_pages": ["Must be an integer from 1 to 100."]}),
        (
            {"type": "offset", "param": "o", "limit_param": "l"},
            {"limit": ["This field is required."]},
        ),
        ({"type": "next_url", "typo": 1}, {"typo": ["Unknown field."]}),
        ("cursor", ["Must be an object with a type."]),
    ],
)
def test_bad_paginate_is_a_400_pointing_at_the_step(alice_api, paginate, errors):
    body = {"name": "x", "steps": [{"name": "s", "url": "https://api.example.com", "paginate": paginate}]}
    response = alice_api.post("/api/v1/connectors", body, format="json")

    assert response.status_code == 400
    assert response.json() == {"steps": [{"paginate": errors}]}


def test_a_step_without_paginate_keeps_its_stored_form(alice_api):
    body = {"name": "x", "steps": [{"name": "s", "url": "https://api.example.com"}]}
    step = alice_api.post("/api/v1/connectors", body, format="json").json()["steps"][0]

    assert "paginate" not in step
    assert "idempotency_key" not in step


def test_max_pages_defaults_to_ten(alice_api):
    body = {"name": "x", "steps": [{"name": "s", "url": "https://a.example", "paginate": {"type": "next_url"}}]}
    step = alice_api.post("/api/v1/connectors", body, format="json").json()["steps"][0]

    assert step["paginate"] == {"type": "next_url", "max_pages": 10}


def test_each_page_has_its_own_retry_budget(alice_api, acme, local_server):
    answers = {
        "1": [Reply(503), json_reply({"items": [{"id": 1}]})],
        "2": [Reply(503), json_reply({"items": [{"id": 2}]})],
    }

    def people(request):
        page = query(request)["page"]
        return answers[page].pop(0) if page in answers else json_reply({"items": []})

    local_server.route("/people", people)
    paginate = {"type": "page", "param": "page", "items_path": "items"}
    detail = run_api(alice_api, make_connector(acme, [step(local_server, paginate, retry={"max_attempts": 2})]))

    assert detail["status"] == "succeeded"
    assert detail["output"]["people"] == {"ids": [1, 2], "pages": 3}
    assert [query(r)["page"] for r in local_server.requests] == ["1", "1", "2", "2", "3"]
    assert detail["steps"][0]["attempts"] == 5
