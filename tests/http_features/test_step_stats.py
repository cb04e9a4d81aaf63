"""Per-step statistics after known sequences of answers: /stats, the rollup's cost, the admin chart."""

from collections import Counter

import pytest
from django.urls import reverse

from executions.step_stats import LATENCY_BUCKETS_MS, latency_bucket, percentile
from tests.executions.helpers import json_reply, make_connector, run_api
from tests.local_server import Reply


@pytest.fixture
def two_steps(acme, local_server):
    steps = [
        {"name": "lookup", "url": f"{local_server.url}/lookup", "retry": {"max_attempts": 4}},
        {"name": "store", "method": "POST", "url": f"{local_server.url}/store"},
    ]
    return make_connector(acme, steps)


def stats(api, connector) -> dict:
    response = api.get(f"/api/v1/connectors/{connector.id}/stats")
    assert response.status_code == 200
    return response.json()["steps"]


def test_requests_status_codes_retries_and_429s_per_step(alice_api, two_steps, local_server):
    local_server.route(
        "/lookup",
        [Reply(503), Reply(429, headers={"Retry-After": "0"}), json_reply({}), json_reply({})],
    )
    local_server.route("/store", [json_reply({}, status=201), Reply(400)])

    assert run_api(alice_api, two_steps)["status"] == "succeeded"
    assert run_api(alice_api, two_steps)["status"] == "failed"

    steps = stats(alice_api, two_steps)
    assert set(steps) == {"lookup", "store"}
    lookup, store = steps["lookup"], steps["store"]
    assert {key: lookup[key] for key in ("requests", "status_codes", "retries", "rate_limited")} == {
        "requests": 4,
        "status_codes": {"200": 2, "429": 1, "503": 1},
        "retries": 2,
        "rate_limited": 1,
    }
    assert {key: store[key] for key in ("requests", "status_codes", "retries", "rate_limited")} == {
        "requests": 2,
        "status_codes": {"201": 1, "400": 1},
        "retries": 0,
        "rate_limited": 0,
    }
    assert lookup["p50_ms"] is not None
    assert lookup["p95_ms"] >= lookup["p50_ms"]


def test_pages_count_as_requests_not_retries(alice_api, acme, local_server):
    local_server.route("/list", [json_reply({"items": [1]}), json_reply({"items": [2]}), json_reply({"items": []})])
    step = {
        "name": "list",
        "url": f"{local_server.url}/list",
        "paginate": {"type": "page", "param": "page", "items_path": "items"},
    }
    connector = make_connector(acme, [step])
    run_api(alice_api, connector)

    assert stats(alice_api, connector)["list"]["requests"] == 3
    assert stats(alice_api, connector)["list"]["retries"] == 0


def test_requests_without_an_answer_count_under_error(alice_api, acme):
    step = {"name": "down", "url": "http://127.0.0.1:9/", "retry": {"max_attempts": 1}}
    connector = make_connector(acme, [step])
    run_api(alice_api, connector)

    assert stats(alice_api, connector)["down"]["status_codes"] == {"error": 1}


def test_steps_that_sent_nothing_show_zeros(alice_api, two_steps):
    assert stats(alice_api, two_steps)["store"] == {
        "requests": 0,
        "status_codes": {},
        "retries": 0,
        "rate_limited": 0,
        "p50_ms": None,
        "p95_ms": None,
    }


def test_stats_cost_a_fixed_number_of_queries(alice_api, two_steps, local_server, django_assert_num_queries):
    for _ in range(3):
        run_api(alice_api, two_steps)
    alice_api.get(f"/api/v1/connectors/{two_steps.id}/stats")

    # workspace context, connector, rollup totals, daily series, p95, step rollup, context off (the user and
    # the membership come from the process's cache)
    with django_assert_num_queries(7):
        alice_api.get(f"/api/v1/connectors/{two_steps.id}/stats")


def test_percentiles_interpolate_inside_their_bucket():
    histogram = Counter({str(latency_bucket(8)): 50, str(latency_bucket(300)): 50})

    assert latency_bucket(8) == 1  # (5, 10]
    assert percentile(histogram, 0.5) == 10
    assert percentile(histogram, 0.95) == 250 + (400 - 250) * 45 // 50
    assert percentile({}, 0.5) is None
    assert percentile({str(len(LATENCY_BUCKETS_MS)): 1}, 0.5) == LATENCY_BUCKETS_MS[-1]


def test_the_connector_admin_page_draws_the_step_chart(staff, client, two_steps, local_server, alice_api):
    local_server.route("/lookup", [Reply(429, headers={"Retry-After": "0"}), json_reply({})])
    run_api(alice_api, two_steps)
    client.force_login(staff)

    page = client.get(reverse("admin:connectors_connector_change", args=[two_steps.pk])).content.decode()

    assert 'class="chart chart-steps"' in page
    assert '<g class="step-row" data-step="lookup" data-requests="2" data-retries="1" data-rate-limited="1">' in page
    assert '<g class="step-row" data-step="store" data-requests="1" data-retries="0" data-rate-limited="0">' in page
