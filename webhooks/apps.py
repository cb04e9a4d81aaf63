from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self) -> None:
        from executions import events
        from webhooks import services

        events.subscribe(services.deliveries_for_finished_execution, writes_if=services.ENDPOINTS_EXIST_SQL)
