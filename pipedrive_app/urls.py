from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

from pipedrive_app.core import health

urlpatterns = [
    path("", TemplateView.as_view(template_name="landing.html"), name="landing"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("", include("pipedrive_app.installations.urls")),
]
