from django.apps import AppConfig


class ExecutionsConfig(AppConfig):
    name = "executions"

    def ready(self) -> None:
        # Embedded mode runs executions in this process; dispatch learns here what runs them, so that it needs
        # no import of the runtime (which imports the lifecycle, which imports dispatch).
        from django.core.signals import request_finished, request_started

        from executions import dispatch, runtime

        dispatch.register_embedded_runner(lambda execution_id: runtime.process_execution(execution_id, reload=False))
        # A web request's broker messages are sent once its response has been written (executions.dispatch).
        request_started.connect(dispatch.defer_until_answered, dispatch_uid="executions.dispatch.defer")
        request_finished.connect(dispatch.send_when_answered, dispatch_uid="executions.dispatch.send")
