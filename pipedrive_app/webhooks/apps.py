from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "pipedrive_app.webhooks"
    label = "webhooks"

    def ready(self) -> None:
        # Installations call these hooks (after commit); installations never imports webhooks.
        from pipedrive_app.installations import services as installation_services

        from . import hooks

        installation_services.register_installation_activated_hook(hooks.on_installation_activated)
        installation_services.register_company_settings_changed_hook(hooks.on_company_settings_changed)
        installation_services.register_before_vendor_uninstall_hook(hooks.before_vendor_uninstall)
        installation_services.register_installation_uninstalled_hook(hooks.on_installation_uninstalled)
