from django.apps import AppConfig


class ExtensionsConfig(AppConfig):
    name = "extensions"
    verbose_name = "App extensions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Uninstall purges the panels cached for the company (or the user who left).
        from pipedrive_app.installations import signals

        from .selectors import panel_cache_prefixes

        signals.company_cache_prefixes.connect(panel_cache_prefixes, dispatch_uid="extensions.panels")
