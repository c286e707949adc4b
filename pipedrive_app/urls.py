from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from pipedrive_app.core import health
from pipedrive_app.metrics.views import metrics

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # Browsers ask for /favicon.ico on pages that name no icon (the sandbox's, an error page's).
    path("favicon.ico", health.favicon),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("dashboard/", include("pipedrive_app.dashboard.urls")),
    path("", include("pipedrive_app.installations.urls")),
    path("", include("pipedrive_app.webhooks.urls")),
    path("extensions/", include("extensions.urls")),
]

if settings.PIPEDRIVE_SANDBOX:
    # The local Pipedrive stand-in; the app itself reaches it only over HTTP.
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
