from django.apps import AppConfig


class InstallationsConfig(AppConfig):
    name = "pipedrive_app.installations"
    label = "installations"
