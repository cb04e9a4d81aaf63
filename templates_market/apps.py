from django.apps import AppConfig


class TemplatesMarketConfig(AppConfig):
    name = "templates_market"
    verbose_name = "Template marketplace"
