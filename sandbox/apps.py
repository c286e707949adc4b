from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """The local Pipedrive stand-in. Installed only when ``PIPEDRIVE_SANDBOX`` is on."""

    name = "sandbox"
    label = "sandbox"
    verbose_name = "Pipedrive sandbox"
    default_auto_field = "django.db.models.BigAutoField"
