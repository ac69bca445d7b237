"""The loop-lag monitor against a genuinely busy event loop (CPU work in it), not a simulated clock."""

from __future__ import annotations

import asyncio
import time

from server.services import loop_lag
from tests.api.test_cache_under_lag import busy


async def test_a_stall_counts_for_a_call_it_overlapped_and_not_for_one_begun_after_it() -> None:
    assert loop_lag.watch() is not None
    await asyncio.sleep(3 * loop_lag.TICK_SECONDS)  # a tick has run since the monitor started
    before = time.monotonic()
    assert not loop_lag.lagged_since(before)  # an idle loop is not behind
    busy(3 * loop_lag.BEHIND_SECONDS)
    assert loop_lag.lagged_since(before)  # the stall is still going on: the tick is overdue
    await asyncio.sleep(3 * loop_lag.TICK_SECONDS)  # the loop catches up; the late tick is remembered
    assert loop_lag.lagged_since(before)
    assert not loop_lag.lagged_since(time.monotonic())  # a call begun after the stall ended


def test_outside_a_running_loop_nothing_is_behind() -> None:
    assert loop_lag.watch() is None and not loop_lag.lagged_since(0.0)
