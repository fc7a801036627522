"""Fan-out of live events to WebSocket connections: a Broadcaster.

A message is persisted first (messaging), then its committed event is published on a
channel (``conversation:12``, ``live:7``); every connection subscribed to that channel, in
this process or, with Redis, in any process, receives it. The broadcaster is a delivery
hint, not the record: a connection that misses a publication (it reconnected, Redis
restarted) catches up from the database by sequence number.

* :class:`InProcessBroadcaster` (the default) serves one app process.
* :class:`RedisBroadcaster` (``XIETONG_REDIS_URL``) relays through Redis pub/sub, so
  several app processes serve one conversation. One pub/sub connection per process carries
  every channel this process has subscribers for.

Events committed by synchronous code (a route running in the thread pool) are handed to the
event loop with :meth:`Broadcaster.publish_threadsafe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

Payload = dict[str, Any]
Callback = Callable[[Payload], Awaitable[None]]
CHANNEL_PREFIX = "xietong:"


class Subscription:
    """One callback on one channel; :meth:`close` removes it."""

    def __init__(self, broadcaster: BaseBroadcaster, channel: str, callback: Callback) -> None:
        self.broadcaster = broadcaster
        self.channel = channel
        self.callback = callback
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.broadcaster._remove(self)


class Broadcaster(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, channel: str, payload: Payload) -> None: ...

    def publish_threadsafe(self, channel: str, payload: Payload) -> None: ...

    def subscribe(self, channel: str, callback: Callback) -> Subscription: ...

    async def ready(self) -> None: ...


class BaseBroadcaster:
    """Local delivery and bookkeeping shared by both broadcasters."""

    def __init__(self) -> None:
        self._subscriptions: dict[str, set[Subscription]] = defaultdict(set)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        self._subscriptions.clear()

    def subscribe(self, channel: str, callback: Callback) -> Subscription:
        subscription = Subscription(self, channel, callback)
        first = not self._subscriptions.get(channel)
        self._subscriptions[channel].add(subscription)
        if first:
            self._channel_added(channel)
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        channel = subscription.channel
        subscribers = self._subscriptions.get(channel)
        if subscribers is None:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del self._subscriptions[channel]
            self._channel_removed(channel)

    def _channel_added(self, channel: str) -> None:
        """A channel got its first local subscriber (Redis subscribes to it)."""

    def _channel_removed(self, channel: str) -> None:
        """A channel lost its last local subscriber."""

    async def ready(self) -> None:
        """Return once new subscriptions receive publications (Redis: once Redis has
        them); a subscriber reads the database only after this, so nothing falls between."""

    def subscriber_count(self, channel: str) -> int:
        return len(self._subscriptions.get(channel, ()))

    async def publish(self, channel: str, payload: Payload) -> None:
        raise NotImplementedError

    async def deliver(self, channel: str, payload: Payload) -> None:
        """Hand ``payload`` to every local subscriber of ``channel``; one failing callback
        (a closed socket) does not keep it from the others."""
        for subscription in list(self._subscriptions.get(channel, ())):
            if subscription.closed:
                continue
            try:
                await subscription.callback(payload)
            except Exception:
                log.exception("fan-out callback failed on %s", channel)

    def publish_threadsafe(self, channel: str, payload: Payload) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # not serving (a CLI command, a test without the app running)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        publication = self.publish(channel, payload)
        if running is loop:
            loop.create_task(publication)
        else:
            asyncio.run_coroutine_threadsafe(publication, loop)


class InProcessBroadcaster(BaseBroadcaster):
    """Delivery within this process only."""

    async def publish(self, channel: str, payload: Payload) -> None:
        await self.deliver(channel, payload)


class RedisBroadcaster(BaseBroadcaster):
    """Delivery through Redis pub/sub: every process that has a subscriber for a channel
    receives what any process publishes on it."""

    def __init__(self, url: str, namespace: str = "") -> None:
        super().__init__()
        self.url = url
        # Installations (or test servers) sharing one Redis must not hear each other.
        digest = hashlib.sha256(namespace.encode()).hexdigest()[:12]
        self.prefix = f"{CHANNEL_PREFIX}{digest}:"
        self._redis: Any = None
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()
        self._ready = asyncio.Event()

    async def start(self) -> None:
        from redis import asyncio as aioredis  # imported only when Redis is configured

        await super().start()
        self._redis = aioredis.from_url(self.url, decode_responses=True)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        # A placeholder channel so the reader can listen before the first real one.
        await self._pubsub.subscribe(self.prefix + "_")
        self._reader = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        for task in list(self._pending):
            task.cancel()
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()
        await super().stop()

    async def publish(self, channel: str, payload: Payload) -> None:
        await self._redis.publish(self.prefix + channel, json.dumps(payload, default=str))

    def _channel_added(self, channel: str) -> None:
        self._track(self._pubsub.subscribe(self.prefix + channel))

    def _channel_removed(self, channel: str) -> None:
        self._track(self._pubsub.unsubscribe(self.prefix + channel))

    async def ready(self) -> None:
        """Wait until every pending (un)subscribe has reached Redis."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def _track(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _read(self) -> None:
        while True:
            try:
                async for message in self._pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    channel = str(message["channel"]).removeprefix(self.prefix)
                    try:
                        payload = json.loads(message["data"])
                    except ValueError:
                        continue
                    await self.deliver(channel, payload)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis went away: connections catch up from the database when they
                # notice; keep trying to listen.
                log.exception("Redis fan-out reader failed; retrying")
                await asyncio.sleep(1.0)


def make_broadcaster(redis_url: str | None, namespace: str = "") -> BaseBroadcaster:
    """Redis when a URL is given; ``namespace`` (the database URL) keeps two installations
    on one Redis apart."""
    if redis_url:
        return RedisBroadcaster(redis_url, namespace)
    return InProcessBroadcaster()
