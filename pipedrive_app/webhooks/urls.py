from django.urls import path

from . import views

urlpatterns = [
    path("webhooks/pipedrive/<str:key>/", views.pipedrive_webhook, name="pipedrive-webhook"),
]
