from django.apps import AppConfig


class MetricsConfig(AppConfig):
    """Metrics need no start-up work: the code paths are wrapped where they are defined."""

    name = "pipedrive_app.metrics"
    label = "metrics"
