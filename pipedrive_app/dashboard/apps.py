from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "pipedrive_app.dashboard"
    label = "dashboard"
    verbose_name = "Operators' dashboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from allauth.mfa.signals import authenticator_added
        from django.contrib.auth.signals import user_logged_in

        from .access import record_sign_in_as_recent, record_totp_activation

        authenticator_added.connect(record_totp_activation, dispatch_uid="dashboard_record_totp_activation")
        user_logged_in.connect(record_sign_in_as_recent, dispatch_uid="dashboard_record_sign_in_as_recent")
