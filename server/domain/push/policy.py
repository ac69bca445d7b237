"""When a push message may go out: quiet hours and the per-subscription daily cap, in Asia/Shanghai time.

Pure functions of epoch seconds, so the worker's clock seam (and a test) decides what "now" is.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from server.domain.push.message import Urgency

LOCAL: Final = ZoneInfo("Asia/Shanghai")
# A cap counter outlives its local day by a day, so a key written just before midnight still expires.
CAP_KEY_SECONDS: Final = 2 * 24 * 3600

QuietHours = tuple[int, int] | None  # (start, end) local hours; start > end wraps midnight, e.g. (22, 8)


def is_quiet(window: QuietHours, ts: float) -> bool:
    """Whether local time `ts` falls in [start:00, end:00)."""
    if window is None:
        return False
    start, end = window
    hour = datetime.fromtimestamp(ts, LOCAL).hour
    if start < end:
        return start <= hour < end
    return hour >= start or hour < end


def quiet_ends(window: QuietHours, ts: float) -> float | None:
    """Epoch seconds at which the quiet period containing `ts` ends; None when `ts` is not quiet."""
    if window is None or not is_quiet(window, ts):
        return None
    local = datetime.fromtimestamp(ts, LOCAL)
    end = datetime.combine(local.date(), time(window[1]), LOCAL)
    if end <= local:
        end += timedelta(days=1)
    return end.timestamp()


def defer_until(window: QuietHours, urgency: Urgency, ts: float) -> float | None:
    """When a message of `urgency` may be sent if not now; None: now. HIGH urgency ignores quiet hours."""
    if urgency is Urgency.HIGH:
        return None
    return quiet_ends(window, ts)


def local_day(ts: float) -> str:
    """The Asia/Shanghai calendar day of `ts` (the daily cap's period), e.g. "2026-11-29"."""
    return datetime.fromtimestamp(ts, LOCAL).date().isoformat()


def cap_key(subscription_id: str, ts: float) -> str:
    """Redis counter of the messages sent to a subscription on the local day of `ts`."""
    return f"push:cap:{local_day(ts)}:{subscription_id}"
