from tests.webhooks.conftest import install_user, post_event, webhook_company  # noqa: F401
