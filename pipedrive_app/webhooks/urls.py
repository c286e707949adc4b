from django.urls import path

from pipedrive_app.metrics.instruments import webhook_receiver

from . import views

urlpatterns = [
    path("webhooks/pipedrive/<str:key>/", webhook_receiver(views.pipedrive_webhook), name="pipedrive-webhook"),
]
