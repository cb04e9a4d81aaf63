from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps  # not `import AdminConfig`: it would be a second default


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "SaaS console"


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """`django.contrib.admin` with the console's site as the default `admin.site` (INSTALLED_APPS lists this
    instead of "django.contrib.admin")."""

    default_site = "console.sites.ConsoleAdminSite"
    default = False
