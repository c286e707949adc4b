"""Settings for `make bench-webhooks`: the app's own, plus a bare view to compare the receiver with."""

from pipedrive_app.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
