"""Per-offer daily counters: the funnel a merchant and an operator read (views → saves → claims →
redemptions). Days are Shenzhen calendar days, so "today" means the shopper's today."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

FUNNEL = ("views", "saves", "claims", "redemptions")
SHENZHEN = ZoneInfo("Asia/Shanghai")


def day_of(at: datetime) -> str:
    """The Shenzhen calendar day of an instant, as the `day` field of an offer_stats_daily document."""
    return at.astimezone(SHENZHEN).date().isoformat()


def days_back(at: datetime, days: int) -> list[str]:
    """The last `days` Shenzhen days ending with today, oldest first."""
    today = at.astimezone(SHENZHEN).date()
    return [(today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]


@dataclass(frozen=True, slots=True)
class DayStats:
    offer_id: str
    day: date
    views: int = 0
    saves: int = 0
    claims: int = 0
    redemptions: int = 0

    @classmethod
    def from_doc(cls, doc: dict[str, object]) -> DayStats:
        def n(name: str) -> int:
            value = doc.get(name)
            return int(value) if isinstance(value, int | float) else 0

        return cls(str(doc["offer_id"]), date.fromisoformat(str(doc["day"])), n("views"), n("saves"),
                   n("claims"), n("redemptions"))
