"""The Redis broker transport, with a channel close that survives a dead broker.

Why this exists: when the Redis broker goes away while a worker is blocked in BRPOP, Celery
(5.7) handles the connection loss by calling ``Connection.collect()`` and then
``Connection.close()`` on the lost connection. kombu's Redis channel ``close()`` first reads the
pending BRPOP reply; with the broker gone that read raises a connection error *before* the channel
is marked closed, ``collect()`` swallows it and detaches the transport (``transport.client =
None``), and the following ``close()`` tries the whole close again, this time restoring the
unacknowledged messages through a transport without a client: ``AttributeError: 'NoneType' object
has no attribute 'hostname'`` in ``_connparams``. That error is not a connection error, so the
worker reports it as unrecoverable and exits: nothing consumes after the broker returns.

The fix: the pending BRPOP reply is read with connection errors ignored (the broker is gone, there
is nothing to read), a failed restore of unacknowledged messages does not abort the close (so the
transport closes all its channels), and a channel whose transport was already detached does not
try to restore through it. The first close goes through and the second one is a no-op. The
unacknowledged messages it could not restore are not needed: every webhook event is a row in the
inbox, which is re-queued from the database once the broker is back (webhooks/services/inbox.py).

Also here: the connection class that reconnects on a short schedule (below).

The transport is used through ``CELERY_BROKER_TRANSPORT`` when the broker URL is ``redis://`` or ``rediss://``
(settings.py); the URL still carries host, port, db and credentials.
"""

from __future__ import annotations

from queue import Empty
from typing import Any

from celery.app import amqp as celery_amqp
from kombu import Connection
from kombu.transport import redis


class Channel(redis.Channel):
    def close(self) -> None:
        this: Any = self  # kombu's private attributes are not in its type stubs
        if this._in_poll:
            try:
                this._brpop_read()
            except Empty:
                pass
            except this.connection_errors:
                # The broker is gone mid-read; _brpop_read has already dropped the socket.
                pass
        if not self.closed and self.connection is not None and getattr(self.connection, "client", None) is None:
            # The transport was detached (Connection.collect): there is no way to the broker left,
            # so do not try to restore the unacknowledged messages through it.
            self.do_restore = False
        try:
            super().close()
        except this.connection_errors:
            # Whatever step needed the broker (deleting a fanout queue, restoring unacknowledged
            # messages), it is down: finish the close anyway, so the transport goes on to close its
            # other channels and a second close is a no-op.
            self.closed = True
            if self._cycle is not None:
                self._cycle.close()
                self._cycle = None
            if self.connection is not None:
                self.connection.close_channel(self)
            this.exchange_types = None


class Transport(redis.Transport):
    Channel = Channel


# Celery's consumer reconnects with kombu's default schedule: 2 s, then 4, 6 ... up to 30 s between
# attempts, so a worker can find a broker that came back only half a minute later. Broker
# connections made by the app retry every second or so instead (a connection attempt to a local
# broker costs next to nothing), so a worker is consuming again within a couple of seconds of the
# broker's return.
RECONNECT_INTERVAL_START = 0.5
RECONNECT_INTERVAL_STEP = 0.5
RECONNECT_INTERVAL_MAX = 2.0


class BrokerConnection(Connection):
    def ensure_connection(self, *args: Any, **kwargs: Any) -> Connection:  # type: ignore[override]
        kwargs.setdefault("interval_start", RECONNECT_INTERVAL_START)
        kwargs.setdefault("interval_step", RECONNECT_INTERVAL_STEP)
        kwargs.setdefault("interval_max", RECONNECT_INTERVAL_MAX)
        return super().ensure_connection(*args, **kwargs)


class AMQP(celery_amqp.AMQP):
    """Celery's AMQP helper with the connection above (``Celery(amqp=...)`` in celery.py)."""

    Connection = BrokerConnection
    BrokerConnection = BrokerConnection
