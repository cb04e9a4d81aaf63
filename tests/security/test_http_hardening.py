"""HTTP hardening: CORS only for the configured origins, security headers, CSP on pages, the admin login brake,
and `manage.py check --deploy` clean in production with the HTTPS switches on (plain HTTP served with them off).
"""

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from core import security
from tests.factories import PASSWORD, UserFactory

ROOT = Path(__file__).resolve().parents[2]
ALLOWED_ORIGIN = "https://app.example.test"


# ------------------------------------------------------------------------------------------------------------
# CORS


@pytest.fixture
def cors(settings):
    settings.CORS_ALLOWED_ORIGINS = [ALLOWED_ORIGIN]


def preflight(client, origin: str):
    return client.options(
        "/api/v1/connectors",
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type, x-workspace-id, idempotency-key",
    )


def test_cors_preflight_from_an_allowed_origin_is_answered(cors, anon_api):
    response = preflight(anon_api, ALLOWED_ORIGIN)

    assert response["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    allowed = {h.strip() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "x-workspace-id", "idempotency-key"} <= allowed
    assert "Access-Control-Allow-Credentials" not in response


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://app.example.test", "https://app.example.test.evil.example", "null"],
)
def test_cors_gives_other_origins_nothing(cors, alice_api, origin):
    assert "Access-Control-Allow-Origin" not in preflight(alice_api, origin)
    assert "Access-Control-Allow-Origin" not in alice_api.get("/api/v1/connectors", HTTP_ORIGIN=origin)


def test_cors_is_closed_by_default(alice_api):
    response = alice_api.get("/api/v1/connectors", HTTP_ORIGIN=ALLOWED_ORIGIN)

    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response


def test_cors_answers_an_allowed_origins_actual_request(cors, alice_api):
    response = alice_api.get("/api/v1/connectors", HTTP_ORIGIN=ALLOWED_ORIGIN)

    assert response["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


# ------------------------------------------------------------------------------------------------------------
# Security headers and CSP


@pytest.mark.parametrize("path", ["/api/v1/connectors", "/healthz", "/api/schema/", "/admin/login/", "/api/docs/"])
def test_security_headers_are_on_every_kind_of_answer(alice_api, path):
    response = alice_api.get(path)

    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


@pytest.mark.parametrize("path", ["/admin/login/", "/api/docs/"])
def test_pages_get_a_policy_without_inline_scripts(db, path):
    response = Client().get(path)

    policy = response["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-eval" not in policy
    assert "<script>" not in response.content.decode()  # every script is a file the policy admits


def test_docs_start_up_script_is_served_as_a_file(db):
    page = Client().get("/api/docs/").content.decode()
    script = Client().get("/api/docs/?script=")

    assert 'src="/api/docs/?script="' in page
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in script.content.decode()


def test_json_answers_get_a_policy_that_allows_nothing(alice_api):
    response = alice_api.get("/api/v1/connectors")

    assert response["Content-Security-Policy"] == security.API_POLICY


# ------------------------------------------------------------------------------------------------------------
# Admin login brake


@pytest.fixture
def staff_user(db):
    return UserFactory(email="ops@saas.test", is_staff=True, is_superuser=True)


def admin_login(client: Client, username: str, password: str, address: str = "192.0.2.10"):
    return client.post("/admin/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_admin_login_is_throttled_after_repeated_failures(staff_user):
    client = Client()
    failures = [admin_login(client, "ops@saas.test", f"wrong-{n}").status_code for n in range(5)]

    blocked = admin_login(client, "ops@saas.test", PASSWORD)

    assert failures == [200] * 5
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) == security.ADMIN_LOGIN_WINDOW_SECONDS
    assert "_auth_user_id" not in client.session


def test_admin_login_throttle_is_per_address_and_username(staff_user):
    for n in range(5):
        admin_login(Client(), "ops@saas.test", f"wrong-{n}")

    other_address = admin_login(Client(), "ops@saas.test", PASSWORD, address="198.51.100.7")
    other_user = admin_login(Client(), "someone@saas.test", "wrong")

    assert other_address.status_code == 302
    assert other_user.status_code == 200


def test_admin_login_throttle_also_caps_an_address_spraying_usernames(db):
    for n in range(security.ADMIN_LOGIN_MAX_FAILURES_PER_ADDRESS):
        admin_login(Client(), f"user{n}@saas.test", "wrong")

    assert admin_login(Client(), "fresh@saas.test", "wrong").status_code == 429


def test_successful_admin_login_clears_the_usernames_failures(staff_user):
    for n in range(4):
        admin_login(Client(), "ops@saas.test", f"wrong-{n}")
    assert admin_login(Client(), "ops@saas.test", PASSWORD).status_code == 302

    later = [admin_login(Client(), "ops@saas.test", f"wrong-again-{n}").status_code for n in range(4)]

    assert later == [200] * 4


def test_admin_login_throttle_ignores_a_spoofed_forwarded_for(staff_user):
    for n in range(5):
        Client().post(
            "/admin/login/",
            {"username": "ops@saas.test", "password": f"wrong-{n}"},
            REMOTE_ADDR="192.0.2.10",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}",
        )

    assert admin_login(Client(), "ops@saas.test", PASSWORD).status_code == 429


# ------------------------------------------------------------------------------------------------------------
# Production settings


def production_env(**https) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CONNECTORS_", "CORS_"))}
    env.update(
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_ALLOWED_HOSTS="example.com",
        CONNECTORS_ENCRYPTION_KEYS="k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        **https,
    )
    return env


HTTPS_ON = {"DJANGO_SECURE_SSL_REDIRECT": "true", "DJANGO_SECURE_COOKIES": "true", "DJANGO_HSTS_SECONDS": "31536000"}


def test_check_deploy_is_clean_in_production_with_the_https_switches_on():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(**HTTPS_ON),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


SERVE_ONE_REQUEST = """
import django
django.setup()
from django.test import Client
response = Client().get("/api/v1/connectors", HTTP_HOST="example.com")
print(response.status_code, response.get("Location", ""), response.get("Strict-Transport-Security", ""))
"""


@pytest.mark.parametrize(
    ("https", "expected"),
    [
        ({}, "401  "),
        (HTTPS_ON, "301 https://example.com/api/v1/connectors "),
    ],
    ids=["https-switches-off", "https-switches-on"],
)
def test_production_serves_plain_http_unless_told_to_redirect(https, expected):
    env = production_env(**https, DJANGO_SETTINGS_MODULE="config.settings")
    result = subprocess.run(
        [sys.executable, "-c", SERVE_ONE_REQUEST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected.strip()


def test_hsts_is_sent_over_https_when_switched_on():
    env = production_env(**HTTPS_ON, DJANGO_SETTINGS_MODULE="config.settings")
    script = SERVE_ONE_REQUEST.replace('HTTP_HOST="example.com"', 'HTTP_HOST="example.com", secure=True')
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "401  max-age=31536000; includeSubDomains; preload"
