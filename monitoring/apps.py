from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        from executions import events
        from monitoring.lifecycle import execution_ended

        events.subscribe(execution_ended)  # usage, metrics, the end log line, failure alerts
