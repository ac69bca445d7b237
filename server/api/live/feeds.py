"""One execution per distinct subscription: the multiplexer behind every live GraphQL feed.

Subscribers sending the same (document, operation, variables, locale, credentials) share one *feed*: one run of
the subscription resolver, whose every event graphql-core executes and we serialize once. Each subscriber gets
that payload inside its own frame, its id spliced in (`{"id":…,"type":"next","payload":<payload>}`): the
WebSocket frame's bytes are built once per distinct id and written as they are, so adding a subscriber adds a
write to its socket, not an execution.

A *state* feed (crowd levels, a campaign's progress: each frame is the whole state) hands a late joiner its
newest frame at once, so 5,000 phones reconnecting after a restart cost one MongoDB read per district, and a
slow socket skips superseded frames. A state feed is also *paced*: after a frame it waits out the interval
(LIVE_STATE_INTERVAL_MS), and at least as long as that frame's fan-out took, before it takes the next event,
and the events that arrive meanwhile are coalesced to the newest (its hub keeps only that). A burst of sensor
batches thus costs one fan-out per interval, and fan-outs take at most about half of the process's time
whatever the number of subscribers, so ingestion goes on; an event arriving after a quiet spell goes out at
once. An *event* feed (inbox items) replays nothing, drops nothing and is never held.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Final

import strawberry
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing

from server.api.context import Context
from server.api.errors import format_error
from server.api.live.outbox import Outbox
from server.api.live.protocol import text_frame_head
from server.observability import metrics

log = logging.getLogger("shangquan.live")
STATE_FIELDS: Final = frozenset({"crowdUpdates", "campaignProgress"})
# A state feed's fan-outs get at most about this share of the event loop: after a fan-out that took t seconds
# the feed rests t × (1 − share) / share before the next. Half keeps a loop that does nothing else fanning out
# at 5,000 subscribers × 5 updates/s (~55 ms each), and leaves ingestion half the loop when bursts come.
FANOUT_SHARE: Final = 0.5
FeedKey = tuple[str, str | None, str, str, str | None]  # query, operation, variables (JSON), locale, credentials
_ids = itertools.count(1)


def _encode(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Subscriber:
    """One subscription of one socket: where its frames go and the text that starts them."""

    __slots__ = ("done", "feed", "id", "outbox", "prefix")

    def __init__(self, outbox: Outbox, operation_id: str, done: Callable[[str], None]) -> None:
        self.outbox, self.id, self.done = outbox, operation_id, done
        # bytes: the fan-out writes them; the few frames that wait in an outbox take them as text
        self.prefix = ('{"id":' + _encode(operation_id) + ',"type":"next","payload":').encode()
        self.feed: Feed | None = None

    def error(self, errors: list[dict[str, Any]]) -> None:
        self.outbox.push(_encode({"id": self.id, "type": "error", "payload": errors}))

    def complete(self) -> None:
        self.outbox.push(_encode({"id": self.id, "type": "complete"}))


class Feed:
    __slots__ = ("count", "groups", "key", "last", "mux", "request_id", "state", "task")

    def __init__(self, mux: Multiplexer, key: FeedKey, state: bool) -> None:
        self.mux, self.key, self.state = mux, key, state
        # The subscribers by the frame they get: by their prefix (the bytes of their id; most clients number their
        # first subscription "1"), then by their socket's outbox (a socket has one subscription per id: the
        # transport refuses a second with 4409).
        self.groups: dict[bytes, dict[Outbox, Subscriber]] = {}
        self.count = 0
        self.last: str | None = None  # a state feed's newest payload, for joiners
        self.request_id = f"live-{next(_ids)}"
        self.task: asyncio.Task[None] | None = None

    def start(self, context: Context, variables: dict[str, Any] | None) -> None:
        self.task = asyncio.create_task(self._run(context, variables))

    async def _run(self, context: Context, variables: dict[str, Any] | None) -> None:
        query, operation_name = self.key[0], self.key[1]
        try:
            stream = await self.mux.schema.subscribe(query, variable_values=variables, context_value=context,
                                                     operation_name=operation_name)
            if isinstance(stream, ExecutionResult):  # refused before it ran
                self._refuse(stream)
                return
            first = True
            async with aclosing(stream):
                async for result in stream:
                    if isinstance(result, PreExecutionError) or (first and result.data is None and result.errors):
                        self._refuse(result)  # an unknown district, a malformed id …: nothing is kept
                        return
                    first = False
                    started = time.perf_counter()
                    self._fan_out(result)
                    if self.state:
                        await self._pace(started)
            self._end()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("live feed %s failed", self.request_id)
            self._end()

    async def _pace(self, started: float) -> None:
        """Rest after a state frame: events meanwhile wait in the hub, which keeps only the newest."""
        now = time.perf_counter()
        cost = now - started
        metrics.live_fan_out(cost)
        rest = started + max(self.mux.interval, cost / FANOUT_SHARE) - now
        if rest > 0:
            await asyncio.sleep(rest)

    def _fan_out(self, result: ExecutionResult) -> None:
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [format_error(e, self.request_id) for e in result.errors]
        if result.extensions:
            payload["extensions"] = result.extensions
        text = _encode(payload) + "}"
        state = self.state
        if state:
            self.last = text
        body = text.encode()
        # Subscribers with the same id get the same bytes: each distinct frame is built once. A subscriber's step
        # is one attribute of its outbox and the transport's write (Outbox.transport: the socket's transport
        # while nothing waits in the outbox and the socket is open, kept up to date where either changes), else
        # the outbox queues the frame. Between two writes the kernel's send path runs (~8 µs on loopback) and evicts
        # what this loop touched, so what it touches per subscriber is kept to the group's entry, the outbox and
        # the write: no Python call, no lookup by id.
        for prefix, group in self.groups.items():
            frame = text_frame_head(len(prefix) + len(body)) + prefix + body
            for outbox in group:
                transport = outbox.transport
                if transport is not None:
                    try:
                        transport.write(frame)
                    except (RuntimeError, OSError):
                        # uvloop raises on a handle closed under us; that socket's close path forgets it, and
                        # the subscribers after it in this loop must still get the frame.
                        continue
                else:
                    outbox.push(prefix.decode() + text, group[outbox].id if state else None)
        metrics.live_event(self.count)

    def _refuse(self, result: ExecutionResult) -> None:
        errors = [format_error(e, self.request_id) for e in result.errors or ()]
        for subscriber in self._detach():
            subscriber.error(errors)

    def _end(self) -> None:
        for subscriber in self._detach():
            subscriber.complete()

    def _detach(self) -> list[Subscriber]:
        """Forget the feed before telling its subscribers, so that a joiner from now on starts a fresh one."""
        self.mux.forget(self)
        subscribers = [subscriber for group in self.groups.values() for subscriber in group.values()]
        self.groups.clear()
        self.count = 0
        metrics.live_subscriptions(-len(subscribers))
        for subscriber in subscribers:
            subscriber.feed = None
            subscriber.done(subscriber.id)
        return subscribers


class Multiplexer:
    """The feeds of one web process, by key."""

    def __init__(self, schema: strawberry.Schema, interval: float = 0.0) -> None:
        """`interval`: the least time in seconds between two frames of one state feed."""
        self.schema, self.interval = schema, interval
        self.feeds: dict[FeedKey, Feed] = {}

    def join(self, key: FeedKey, subscriber: Subscriber, state: bool, context: Callable[[], Context],
             variables: dict[str, Any] | None) -> None:
        feed = self.feeds.get(key)
        if feed is None:
            feed = self.feeds[key] = Feed(self, key, state)
            metrics.live_feed_started()
            feed.start(context(), variables)
        group = feed.groups.setdefault(subscriber.prefix, {})
        previous = group.get(subscriber.outbox)
        if previous is not None:
            # Cannot happen while the transport refuses a socket's second subscription of an id (4409); if it
            # did, the feed must not go on counting a subscriber it no longer holds (it would never end).
            previous.feed = None
            feed.count -= 1
            metrics.live_subscriptions(-1)
        group[subscriber.outbox] = subscriber
        feed.count += 1
        metrics.live_subscriptions(1)
        subscriber.feed = feed
        if feed.last is not None:
            subscriber.outbox.push(subscriber.prefix.decode() + feed.last, subscriber.id)
            metrics.live_frames(1)

    def leave(self, subscriber: Subscriber) -> None:
        feed, subscriber.feed = subscriber.feed, None
        if feed is None:
            return
        group = feed.groups.get(subscriber.prefix)
        if group is not None and group.get(subscriber.outbox) is subscriber:
            del group[subscriber.outbox]
            if not group:
                del feed.groups[subscriber.prefix]
            feed.count -= 1
            metrics.live_subscriptions(-1)
        if not feed.count:
            self.forget(feed)
            if feed.task is not None:
                feed.task.cancel()

    def forget(self, feed: Feed) -> None:
        if self.feeds.get(feed.key) is feed:
            del self.feeds[feed.key]
            metrics.live_feed_ended()

    async def stop(self) -> None:
        tasks = [feed.task for feed in self.feeds.values() if feed.task is not None]
        for feed in list(self.feeds.values()):
            metrics.live_subscriptions(-feed.count)
            self.forget(feed)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    @staticmethod
    def key(query: str, operation_name: str | None, variables: dict[str, Any] | None, locale: str,
            credentials: str | None) -> FeedKey:
        return query, operation_name, json.dumps(variables or {}, sort_keys=True), locale, credentials

    @staticmethod
    def is_state(root_field: str) -> bool:
        return root_field in STATE_FIELDS
