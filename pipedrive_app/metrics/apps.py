from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "pipedrive_app.metrics"
    label = "metrics"

    def ready(self) -> None:
        from django.conf import settings

        if not settings.METRICS_ENABLED:
            return
        from celery.signals import task_postrun

        from pipedrive_app.webhooks.handlers import handler_register

        from . import hooks

        # After the history handler (registered first, by an app listed earlier): one more step in
        # the transaction that marks the event processed, observing the lag once that commits.
        handler_register(entity="*", action="*", handler=hooks.lag_handler)
        task_postrun.connect(hooks.on_task_postrun, weak=False, dispatch_uid="metrics-task-postrun")
