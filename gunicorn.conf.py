"""gunicorn settings for production; every value can be overridden from the environment."""

import os

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
# Pipedrive gives webhook deliveries 10 s and JSON panels 10 s: never hold a request longer.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# No worker recycling by default: a worker retired after max_requests closes its clients' keep-alive
# connections, and a request already sent on one is reset; Pipedrive counts that as a failed
# delivery (ten failed first attempts ban the webhook). Set it only against a measured memory leak.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = 200 if max_requests else 0
accesslog = "-"
errorlog = "-"
# No query strings in the access log: OAuth callbacks carry codes there.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%({x-request-id}o)s"'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
