from __future__ import annotations

import logging

from pipedrive_app.core.logging import RedactSecretsFilter, redact


def test_redacts_common_credential_shapes() -> None:
    text = (
        "Authorization: Bearer v1u:AQIBAHj+LzTNK1yuuuaLqifz "
        "refresh_token=1:1:2a5496a8bdd0f8 {'access_token': 'abcdefgh123'} code=xyz&state=s "
        '"http_auth_password": "hunter22"'
    )
    cleaned = redact(text)
    for secret in ["v1u:AQIBAHj", "2a5496a8bdd0f8", "abcdefgh123", "code=xyz", "hunter22"]:
        assert secret not in cleaned
    assert "state=s" in cleaned  # not a secret


def test_filter_rewrites_the_record_including_args() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "token refreshed: %s", ("refresh_token=abc123456",), None
    )
    assert RedactSecretsFilter().filter(record)
    assert "abc123456" not in record.getMessage()


def test_runserver_request_lines_go_through_the_redacting_handler() -> None:
    logger = logging.getLogger("django.server")
    assert logger.handlers, "django.server must log through the project's console handler"
    record = logger.makeRecord(
        "django.server",
        logging.INFO,
        __file__,
        1,
        '"%s" %s %s',
        ("GET /oauth/callback?code=abc123secret&state=x HTTP/1.1", 302, 0),
        None,
    )
    for handler in logger.handlers:
        for flt in handler.filters:
            assert isinstance(flt, logging.Filter), flt  # the project's filters are Filter subclasses
            flt.filter(record)
    assert "abc123secret" not in record.getMessage()
