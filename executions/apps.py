from django.apps import AppConfig


class ExecutionsConfig(AppConfig):
    name = "executions"

    def ready(self) -> None:
        # Embedded mode runs executions in this process; dispatch learns here what runs them, so that it needs
        # no import of the runtime (which imports the lifecycle, which imports dispatch).
        from executions import dispatch, runtime

        dispatch.register_embedded_runner(lambda execution_id: runtime.process_execution(execution_id, reload=False))
