from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "batches"

    def ready(self) -> None:
        from batches import services
        from executions import events

        events.subscribe(services.count_finished_execution, writes_if="executions_execution.batch_id IS NOT NULL")
