from django.apps import AppConfig


class WorkspacesConfig(AppConfig):
    name = "workspaces"
    verbose_name = "Users and workspaces"

    def ready(self) -> None:
        from workspaces import access

        access.connect_signals()
