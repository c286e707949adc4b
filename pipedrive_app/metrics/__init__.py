"""Prometheus metrics: definitions and hooks (``instruments``), scrape-time gauges (``collectors``),
the ``/metrics`` endpoint (``views``) and the dashboard's live figures (``live``)."""
