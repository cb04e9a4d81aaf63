"""Hooks the console's dashboard into the default admin site (so every app's registrations stay as they are).

`/admin/dashboard/` is served through `admin.site.admin_view`: only active staff reach it, others are sent
to the admin login, which refuses non-staff accounts. The admin index links to it.
"""

from django.contrib import admin
from django.urls import path

from console.views import dashboard

_site_urls = admin.site.get_urls


def _get_urls():
    return [path("dashboard/", admin.site.admin_view(dashboard), name="dashboard"), *_site_urls()]


admin.site.get_urls = _get_urls
admin.site.index_template = "console/admin_index.html"
admin.site.site_header = "Connectors console"
admin.site.site_title = "Connectors console"
admin.site.index_title = "SaaS administration"
