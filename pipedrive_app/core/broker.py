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
inbox, which is re-queued from the database once the broker is back (webhooks/services.py).

Used through ``CELERY_BROKER_TRANSPORT`` when the broker URL is ``redis://`` or ``rediss://``
(settings.py); the URL still carries host, port, db and credentials.
"""

from __future__ import annotations

from queue import Empty

from kombu.transport import redis


class Channel(redis.Channel):
    def close(self) -> None:
        if self._in_poll:
            try:
                self._brpop_read()
            except Empty:
                pass
            except self.connection_errors:
                # The broker is gone mid-read; _brpop_read has already dropped the socket.
                pass
        if not self.closed and self.connection is not None and getattr(self.connection, "client", None) is None:
            # The transport was detached (Connection.collect): there is no way to the broker left,
            # so do not try to restore the unacknowledged messages through it.
            self.do_restore = False
        try:
            super().close()
        except self.connection_errors:
            # Restoring the unacknowledged messages needs the broker, which is down: finish the
            # close anyway, so the transport goes on to close its other channels.
            if self._cycle is not None:
                self._cycle.close()
                self._cycle = None
            if self.connection is not None:
                self.connection.close_channel(self)
            self.exchange_types = None


class Transport(redis.Transport):
    Channel = Channel
