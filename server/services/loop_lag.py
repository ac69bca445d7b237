"""How far behind this process's event loop is: a periodic callback that notes how late it runs.

A Redis call can fail for two unrelated reasons: Redis is down or hung, or this process's own event loop was too
busy to read the answer in time (a surge: every timer, redis-py's connect and read timeouts included, fires
after the loop comes round, and a connection can be dropped mid-stall). Only the first is a reason to leave
Redis alone for a while; doing it for the second sends the surge to MongoDB, which costs far more per read and
deepens the backlog that caused it. So whoever sees a Redis call fail asks `lagged_since(started)`: was the
loop behind at any moment of that call? One tick every TICK_SECONDS costs next to nothing.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque

TICK_SECONDS = 0.1
# A tick this late means the loop, not the service, set the pace. A healthy loop runs ticks a few ms late;
# under the bench's surge they ran 0.5-3 s late, which is what made healthy Redis calls time out.
BEHIND_SECONDS = 0.25
KEEP_SECONDS = 60.0  # late ticks remembered (longer than any Redis call can last with its timeouts)


class LoopLag:
    """Late ticks of one event loop, as (when it ran, how late), oldest first."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.late: deque[tuple[float, float]] = deque()
        self.due = time.monotonic() + TICK_SECONDS
        loop.call_at(self._loop_time(loop, self.due), self._tick, loop)

    @staticmethod
    def _loop_time(loop: asyncio.AbstractEventLoop, at: float) -> float:
        # asyncio's clock is time.monotonic, but a loop may keep its own: translate rather than assume
        return loop.time() + (at - time.monotonic())

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.monotonic()
        if now - self.due >= BEHIND_SECONDS:
            self.late.append((now, now - self.due))
        while self.late and self.late[0][0] < now - KEEP_SECONDS:
            self.late.popleft()
        self.due = now + TICK_SECONDS
        loop.call_at(self._loop_time(loop, self.due), self._tick, loop)

    def lagged_since(self, started: float) -> bool:
        """Whether the loop fell BEHIND_SECONDS behind at some moment after `started` (time.monotonic), counting
        a stall still going on now (the tick is overdue: the caller runs inside it)."""
        now = time.monotonic()
        if now - self.due >= BEHIND_SECONDS:
            return True
        # a tick that ran late was held up until it ran: that stall overlapped the call if it ended after the call
        # began (the newest late tick is the last to end)
        return bool(self.late) and self.late[-1][0] > started


_monitors: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopLag] = weakref.WeakKeyDictionary()


def watch() -> LoopLag | None:
    """The running loop's monitor, started on first use; None outside a running loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    monitor = _monitors.get(loop)
    if monitor is None:
        monitor = _monitors[loop] = LoopLag(loop)
    return monitor


def lagged_since(started: float) -> bool:
    """Whether this process's event loop was behind during a call begun at `started` (see the module's doc)."""
    monitor = watch()
    return monitor is not None and monitor.lagged_since(started)
