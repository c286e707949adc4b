from django.apps import AppConfig


class HistoryConfig(AppConfig):
    name = "pipedrive_app.history"
    label = "history"

    def ready(self) -> None:
        # The change-history handler is the first consumer of webhook events.
        from pipedrive_app.history.handlers import register_history_handlers

        register_history_handlers()
