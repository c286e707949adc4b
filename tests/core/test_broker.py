"""The Redis transport's channel close survives the broker dying while a BRPOP is pending.

Reproduces what Celery's consumer does on a broker connection loss (``collect()`` then ``close()`` on
the lost connection), against a real private redis-server that is killed mid-BRPOP with one message
delivered and not acknowledged (acks_late). With kombu's own channel the second close raises
``AttributeError: 'NoneType' object has no attribute 'hostname'`` and the worker exits.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection, Consumer, Exchange, Queue

from bench.harness import PrivateRedis

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(tmp_path).start()
    try:
        yield redis
    finally:
        redis.stop()


def _lose_broker_mid_read(redis: PrivateRedis, transport: str) -> None:
    connection = Connection(redis.url, transport=transport)
    # Two channels, as in a worker (task consumer on the default channel, the control box on
    # another), each with a message delivered and not acknowledged and a BRPOP pending.
    # kombu's Redis channels (or our subclass): the private BRPOP state used below has no type hints.
    channels: list[Any] = [connection.default_channel, connection.channel()]
    for number, channel in enumerate(channels):
        name = f"broker-close-{number}"
        queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
        with connection.Producer(channel) as producer:
            producer.publish({"n": number}, exchange=queue.exchange, routing_key=name, declare=[queue])
        received: list[object] = []
        consumer = Consumer(channel, [queue], callbacks=[lambda body, message: received.append(message)])
        consumer.consume()
        for _ in range(5):
            if not received:
                connection.drain_events(timeout=2)
        assert len(received) == 1  # delivered, not acknowledged
    for channel in channels:
        channel._brpop_start()  # blocked in BRPOP, the reply pending
        assert channel._in_poll
    redis.stop()
    # What celery.worker.consumer.Consumer.on_connection_error_after_connected does:
    try:
        with contextlib.suppress(Exception):  # Celery ignores anything collect() raises
            connection.collect(socket_timeout=1)
        connection.close()  # Celery's ignore_errors() lets only connection errors pass
    finally:
        for channel in channels:  # no second restore attempt from kombu's exit hook
            channel.do_restore = False


def test_our_transport_closes_a_channel_whose_broker_died_mid_read(private_redis) -> None:
    _lose_broker_mid_read(private_redis, "pipedrive_app.core.broker:Transport")


def test_kombus_own_transport_fails_there(private_redis) -> None:
    """The reproduction is faithful: without the fix the close raises the worker-killing error."""
    with pytest.raises(AttributeError, match="hostname"):
        _lose_broker_mid_read(private_redis, "redis")


def test_settings_select_it_for_a_redis_broker() -> None:
    from django.conf import settings

    if (settings.CELERY_BROKER_URL or "").startswith("redis"):
        assert settings.CELERY_BROKER_TRANSPORT == "pipedrive_app.core.broker:Transport"
