"""The README start-up works from a clean environment (README; docs/api.md §13), and production settings refuse to start
without their secrets.

These tests run `manage.py` as subprocesses, as an operator would: the embedded set-up with a throw-away SQLite
file, no broker and no Django variables at all.
"""

import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parent.parent
START_UP_SECONDS = 60
CONFIG_PREFIXES = ("DJANGO_", "CELERY_", "CONNECTORS_", "API_THROTTLE_", "CORS_", "JWT_")


def clean_env(database: Path, **variables: str) -> dict[str, str]:
    """The process environment without any of the service's own variables (so the test suite's settings do
    not leak in), pointed at `database`, plus `variables`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(CONFIG_PREFIXES) and name != "DATABASE_URL"
    }
    env["DATABASE_URL"] = f"sqlite:///{database}"
    env.update(variables)
    return env


def manage(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def new_key() -> str:
    return "k1:" + base64.b64encode(os.urandom(32)).decode()


class EmbeddedServer:
    def __init__(self, base_url: str, env: dict[str, str]):
        self.base_url = base_url
        self.env = env

    def get(self, path: str) -> tuple[int, str, bytes]:
        return fetch(self.base_url + path)


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory):
    """README's `bin/serve` itself (without its pip step: the suite runs in the installed .venv) on a free port."""
    workdir = tmp_path_factory.mktemp("embedded")
    env = clean_env(workdir / "db.sqlite3")
    port = free_port()
    env.update(HOST="127.0.0.1", PORT=str(port), DJANGO_DEBUG="true")  # as bin/serve sets it, for `manage` below
    log_path = workdir / "runserver.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(PROJECT / "bin" / "serve"), "--no-install"],
            cwd=PROJECT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    # bin/serve sets DJANGO_DEBUG itself; commands run beside it (as an operator would) need it too.
    server = EmbeddedServer(f"http://127.0.0.1:{port}", {**env, "DJANGO_DEBUG": "true"})
    try:
        deadline = time.monotonic() + START_UP_SECONDS
        while True:
            assert process.poll() is None, f"runserver exited early:\n{log_path.read_text()}"
            try:
                if server.get("/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"/healthz not 200 within {START_UP_SECONDS} s:\n{log_path.read_text()}"
            time.sleep(0.25)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_embedded_server_reports_healthy_with_the_embedded_broker(embedded_server):
    status, content_type, body = embedded_server.get("/healthz")

    assert status == 200
    assert content_type == "application/json"
    assert json.loads(body) == {"status": "ok", "database": "ok", "broker": "embedded"}


def test_embedded_server_serves_the_docs_page_without_a_cdn(embedded_server):
    status, content_type, body = embedded_server.get("/api/docs/")

    assert status == 200
    assert content_type.startswith("text/html")
    page = body.decode()
    assert "swagger" in page.lower()
    assert not re.search(r"""(src|href)=["']https?://""", page)
    scripts = re.findall(r"""<script[^>]+src=["']([^"']+)["']""", page)
    assert scripts
    assert [embedded_server.get(src)[0] for src in scripts] == [200] * len(scripts)


def test_embedded_server_serves_the_openapi_document(embedded_server):
    status, _, body = embedded_server.get("/api/schema/")

    assert status == 200
    document = yaml.safe_load(body)
    assert document["openapi"].startswith("3.")
    paths = {path.rstrip("/") for path in document["paths"]}
    assert {"/api/v1/connectors", "/api/v1/auth/token", "/api/v1/contacts", "/api/v1/workspaces"} <= paths


def test_embedded_server_answers_api_errors_with_json(embedded_server):
    status, content_type, body = embedded_server.get("/api/v1/connectors")

    assert status == 401
    assert content_type == "application/json"
    assert set(json.loads(body)) == {"detail"}


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_the_marketplace_holds_the_official_templates_after_start(embedded_server):
    account = {"email": "newcomer@example.com", "password": "Corr3ct-horse-battery"}
    post_json(embedded_server.base_url + "/api/v1/auth/register", account)
    access = post_json(embedded_server.base_url + "/api/v1/auth/token", account)["access"]
    request = urllib.request.Request(
        embedded_server.base_url + "/api/v1/connector-templates?official=true&page_size=100",
        headers={"Authorization": f"Bearer {access}"},
    )

    with urllib.request.urlopen(request, timeout=5) as response:
        listed = json.loads(response.read())

    shipped = sorted(path.stem for path in (PROJECT / "templates_market" / "official").glob("*.json"))
    assert sorted(template["slug"] for template in listed["results"]) == shipped


def test_create_workspace_prints_the_id_last_on_real_stdout(embedded_server):
    result = manage(
        "create_workspace",
        "Acme",
        "--owner",
        "ops@acme.test",
        "--password",
        "Corr3ct-horse-battery",
        env=embedded_server.env,
    )

    assert result.returncode == 0, result.stderr
    last_line = result.stdout.strip().splitlines()[-1]
    assert str(uuid.UUID(last_line)) == last_line


# --- production settings refuse to start without their secrets ---


def test_production_without_secret_key_refuses_to_start(tmp_path):
    env = clean_env(tmp_path / "db.sqlite3", DJANGO_DEBUG="false", DJANGO_ALLOWED_HOSTS="api.example.com")

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_without_django_debug_the_settings_are_production_ones(tmp_path):
    env = clean_env(tmp_path / "db.sqlite3")

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required when DJANGO_DEBUG=false (the default" in result.stderr


def test_bin_serve_turns_debug_on_for_the_embedded_set_up():
    assert 'export DJANGO_DEBUG="${DJANGO_DEBUG:-true}"' in (PROJECT / "bin" / "serve").read_text()


def test_no_signing_key_comes_from_a_committed_constant(tmp_path):
    """Two embedded installs get different random keys (kept in their .local/), so no key is in the code."""
    script = (
        "import sys; from pathlib import Path; from config.local_secret import local_secret;"
        " print(local_secret(Path(sys.argv[1])))"
    )
    keys = [
        subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / name / "secret.key")],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for name in ("one", "two", "one")
    ]

    assert keys[0] == keys[2] != keys[1]
    assert len(keys[0]) >= 64
    assert oct((tmp_path / "one" / "secret.key").stat().st_mode & 0o777) == "0o600"
    settings_source = (PROJECT / "config" / "settings.py").read_text()
    assert "django-insecure" not in settings_source


def test_production_without_allowed_hosts_refuses_to_start(tmp_path):
    env = clean_env(tmp_path / "db.sqlite3", DJANGO_DEBUG="false", DJANGO_SECRET_KEY="s" * 50)

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS" in result.stderr


def test_production_without_encryption_keys_refuses_to_start(tmp_path):
    env = clean_env(
        tmp_path / "db.sqlite3",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="s" * 50,
        DJANGO_ALLOWED_HOSTS="api.example.com",
    )

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "CONNECTORS_ENCRYPTION_KEYS" in result.stderr


def test_production_with_a_short_encryption_key_refuses_to_start(tmp_path):
    env = clean_env(
        tmp_path / "db.sqlite3",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="s" * 50,
        DJANGO_ALLOWED_HOSTS="api.example.com",
        CONNECTORS_ENCRYPTION_KEYS="k1:" + base64.b64encode(b"too-short").decode(),
    )

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "CONNECTORS_ENCRYPTION_KEYS" in result.stderr


def test_production_with_every_secret_passes_the_checks(tmp_path):
    env = clean_env(
        tmp_path / "db.sqlite3",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="s" * 50,
        DJANGO_ALLOWED_HOSTS="api.example.com",
        CONNECTORS_ENCRYPTION_KEYS=new_key(),
    )

    result = manage("check", env=env)

    assert result.returncode == 0, result.stderr


def test_a_malformed_boolean_refuses_to_start_naming_the_variable(tmp_path):
    env = clean_env(tmp_path / "db.sqlite3", DJANGO_DEBUG="maybe")

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "DJANGO_DEBUG" in result.stderr


def _call(server: EmbeddedServer, method: str, path: str, body: dict | None = None, **headers: str) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server.base_url + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name.replace("_", "-"), value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_embedded_executions_all_run_while_requests_write_concurrently(embedded_server):
    # SQLite in embedded mode: a run's claim reads, then writes, while execute calls write from other threads.
    # Every execution must be claimed and finished; none may be left queued by "database is locked".
    password = "Corr3ct-horse-battery"
    result = manage(
        "create_workspace", "Busy", "--owner", "busy@acme.test", "--password", password, env=embedded_server.env
    )
    assert result.returncode == 0, result.stderr
    workspace = result.stdout.strip().splitlines()[-1]
    status, tokens = _call(
        embedded_server, "POST", "/api/v1/auth/token", {"email": "busy@acme.test", "password": password}
    )
    assert status == 200, tokens
    auth = {"Authorization": f"Bearer {tokens['access']}", "X_Workspace_ID": workspace}
    # Its step is refused by the address policy (no private hosts in the embedded set-up): the run still claims,
    # records the step and finishes, without any outside traffic.
    steps = [{"name": "local", "url": "http://127.0.0.1:9/refused"}]
    status, connector = _call(embedded_server, "POST", "/api/v1/connectors", {"name": "busy", "steps": steps}, **auth)
    assert status == 201, connector

    def execute(n: int) -> str:
        key = {"Idempotency_Key": f"key-{n % 12}"}  # 24 calls, 12 keys: half of them replays
        status, body = _call(
            embedded_server, "POST", f"/api/v1/connectors/{connector['id']}/execute", {"input": {}}, **auth, **key
        )
        assert status in (200, 202), body
        return body["id"]

    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = set(pool.map(execute, range(24)))
    assert len(ids) == 12
    deadline = time.monotonic() + 60
    while True:
        statuses = {_call(embedded_server, "GET", f"/api/v1/executions/{i}", **auth)[1]["status"] for i in ids}
        if statuses <= {"succeeded", "failed"} or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert statuses == {"failed"}  # each finished, its one step refused
