"""The staff dashboard at /admin/dashboard/: the platform figures and 30-day charts, drawn server-side."""

from django.contrib import admin
from django.template.response import TemplateResponse

from console import charts, selectors
from usage.months import month_of


def dashboard(request):
    """Figures of GET /api/v1/admin/stats plus the charts; a fixed number of queries (see docs/admin-console.md).

    Reached only through the console site's `admin_view`, which requires an active staff user.
    """
    daily = selectors.executions_per_day()
    rate = selectors.success_rate(daily)
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "stats": selectors.platform_stats(),
        "window_days": selectors.WINDOW_DAYS,
        "success_rate": rate,
        "daily_chart": charts.daily_executions_chart(daily),
        "success_rate_chart": charts.success_rate_chart(rate),
        "top_workspaces_chart": charts.horizontal_bar_chart(
            selectors.top_workspaces(), css_class="chart-top-workspaces"
        ),
        "slowest_connectors_chart": charts.horizontal_bar_chart(
            selectors.slowest_connectors(), css_class="chart-slowest-connectors", unit=" ms"
        ),
        "finished_in_window": sum(day.succeeded + day.failed for day in daily),
        "usage_month": f"{month_of():%Y-%m}",
        "usage_chart": charts.horizontal_bar_chart(selectors.top_usage(month=month_of()), css_class="chart-usage"),
    }
    return TemplateResponse(request, "console/dashboard.html", context)
