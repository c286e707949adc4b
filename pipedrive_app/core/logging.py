"""A logging filter that keeps credentials out of every log line, whatever the caller passed."""

from __future__ import annotations

import logging
import re

_PATTERNS = [
    # Authorization headers, Bearer and Basic credentials.
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(bearer|basic)\s+[^\s'\",}]+"), r"\1\2 [redacted]"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/:=-]{8,}"), r"\1 [redacted]"),
    # OAuth parameters in URLs, form bodies, JSON and reprs.
    (
        re.compile(
            r"(?i)(['\"]?(?:access_token|refresh_token|client_secret|code|token|password|"
            r"http_auth_password)['\"]?\s*[:=]\s*['\"]?)[^\s&'\",}]+"
        ),
        r"\1[redacted]",
    ),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix here
            return True
        cleaned = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log shippers index without parsing rules."""

    def format(self, record: logging.LogRecord) -> str:
        import json

        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)
