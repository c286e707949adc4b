from django.apps import AppConfig


class HistoryConfig(AppConfig):
    name = "pipedrive_app.history"
    label = "history"

    def ready(self) -> None:
        # The change-history handler is the first consumer of webhook events.
        from pipedrive_app.history.handlers import register_history_handlers

        register_history_handlers()
        # Uninstall purges the record names cached for the company.
        from pipedrive_app.history.references import name_cache_prefixes
        from pipedrive_app.installations import signals

        signals.company_cache_prefixes.connect(name_cache_prefixes, dispatch_uid="history.names")
