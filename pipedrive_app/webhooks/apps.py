from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "pipedrive_app.webhooks"
    label = "webhooks"

    def ready(self) -> None:
        # Installations sends these signals; it never imports webhooks.
        from pipedrive_app.installations import signals

        from . import hooks

        signals.installation_activated.connect(hooks.on_installation_activated, dispatch_uid="webhooks.provision")
        signals.company_settings_changed.connect(hooks.on_company_settings_changed, dispatch_uid="webhooks.settings")
        signals.vendor_uninstall_starting.connect(hooks.before_vendor_uninstall, dispatch_uid="webhooks.release")
        signals.installation_uninstalled.connect(hooks.on_installation_uninstalled, dispatch_uid="webhooks.reown")
