"""The dashboard in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven by Playwright.

Skipped on a developer machine without Chromium; in CI (the CI variable is set) a missing browser fails the
test instead. Playwright never downloads a browser here: it is pointed at the system one.
"""

import os
from pathlib import Path

import pytest
from django.conf import settings

from executions.models import Status
from tests.admin.builders import make_daily, make_executions
from tests.factories import PASSWORD, ConnectorFactory, UserFactory, WorkspaceFactory

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = Path(settings.BASE_DIR) / "artifacts" / "dashboard.png"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists() and not os.environ.get("CI"),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


@pytest.fixture
def dashboard_data(transactional_db):
    """Three workspaces with rollups on a few days of the window, and some executions for the figures."""
    staff = UserFactory(email="ops@saas.test", is_staff=True, is_superuser=True)
    for index, name in enumerate(["Acme", "Globex", "Initech"]):
        connector = ConnectorFactory(workspace=WorkspaceFactory(name=name), name=f"{name} sync")
        make_executions(connector, 3 - index, status=Status.SUCCEEDED)
        make_executions(connector, 1, status=Status.FAILED)
        for days_ago in (0, 1, 7, 20):
            make_daily(
                connector,
                days_ago=days_ago,
                succeeded=5 * (index + 1) + days_ago,
                failed=index + 1,
                total_duration_ms=(index + 1) * 1000 * (5 * (index + 1) + days_ago + index + 1),
            )
    return staff


def test_staff_logs_in_and_sees_the_dashboard_charts(live_server, dashboard_data):
    # Imported here: the Django ORM must not run while Playwright's event loop lives in this thread, so all
    # data is created (by the fixture) before the browser starts.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{live_server.url}/admin/login/?next=/admin/dashboard/")
            page.fill("#id_username", dashboard_data.email)
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(f"{live_server.url}/admin/dashboard/")

            day_groups = page.locator("svg.chart-daily g.day-group")
            succeeded_bars = page.locator("svg.chart-daily rect.bar-succeeded")
            failed_bars = page.locator("svg.chart-daily rect.bar-failed")
            workspace_bars = page.locator("svg.chart-top-workspaces g.hbar")
            connector_bars = page.locator("svg.chart-slowest-connectors g.hbar")
            counts = (
                day_groups.count(),
                succeeded_bars.count(),
                failed_bars.count(),
                workspace_bars.count(),
                connector_bars.count(),
            )
            today = day_groups.last
            today_counts = (today.get_attribute("data-succeeded"), today.get_attribute("data-failed"))
            top_workspace = workspace_bars.first.get_attribute("data-label")
            rate = page.locator("svg.chart-success-rate").get_attribute("data-rate")
            executions_total = page.locator('[data-figure="executions-total"] .value').inner_text()
            svg_box = page.locator("svg.chart-daily").bounding_box()

            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()

    assert counts == (30, 30, 30, 3, 3)
    assert today_counts == ("30", "6")  # 5 + 10 + 15 succeeded, 1 + 2 + 3 failed
    assert top_workspace == "Initech"
    assert rate == "0.8947"  # 204 succeeded of 228 finished
    assert executions_total == "9"
    assert svg_box is not None
    assert svg_box["width"] > 300
    assert SCREENSHOT.stat().st_size > 10_000
