from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "pipedrive_app.core"
    label = "core"
