"""The admin site of the SaaS console, installed as Django's default site (see `console.apps`).

Every app registers its models on it through `django.contrib.admin.site` as usual; the console adds its
dashboard at `/admin/dashboard/`, behind `admin_view` (only active staff reach it; others are sent to the
admin login, which refuses non-staff accounts), and links it from the index. "View site" opens the API docs:
the service has no other public pages.
"""

from django.contrib import admin
from django.urls import URLPattern, URLResolver, path

from console.views import dashboard


class ConsoleAdminSite(admin.AdminSite):
    site_header = "Connectors console"
    site_title = "Connectors console"
    index_title = "SaaS administration"
    index_template = "console/admin_index.html"
    site_url = "/api/docs/"

    def get_urls(self) -> list[URLResolver | URLPattern]:
        return [path("dashboard/", self.admin_view(dashboard), name="dashboard"), *super().get_urls()]
