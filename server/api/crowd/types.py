from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from server.domain.crowd.models import Crowd


@strawberry.enum(description="Occupancy against capacity; thresholds are in the server's settings.")
class CrowdLevel(Enum):
    QUIET = "QUIET"
    MODERATE = "MODERATE"
    BUSY = "BUSY"
    PACKED = "PACKED"


@strawberry.type(description="How busy a place is, where the number came from and how sure it is.")
class CrowdType:
    level: CrowdLevel
    percent: float = strawberry.field(description="Occupancy as a percentage of capacity.")
    occupancy: int
    capacity: int
    updated_at: datetime | None = strawberry.field(description="Time of the newest reading behind the number.")
    source: str | None = strawberry.field(description="Sensor kinds: people_counter, gate_counter, camera, manual.")
    confidence: float = strawberry.field(description="0 to 1, from the number of sensors and their freshness.")
    stale: bool = strawberry.field(description="No reading came in for the configured time.")
    sensors: int

    @staticmethod
    def of(crowd: Crowd) -> CrowdType:
        return CrowdType(level=CrowdLevel(crowd.level), percent=crowd.percent, occupancy=crowd.occupancy,
                         capacity=crowd.capacity, updated_at=crowd.updated_at, source=crowd.source,
                         confidence=crowd.confidence, stale=crowd.stale, sensors=crowd.sensors)


@strawberry.type
class AreaCrowd:
    area_id: strawberry.ID
    crowd: CrowdType


@strawberry.type(description="A district's level and those of its areas, pushed when a reading arrives.")
class CrowdUpdate:
    district_id: strawberry.ID
    crowd: CrowdType
    areas: list[AreaCrowd]
    sent_at: datetime


@strawberry.type
class ForecastPoint:
    hour: datetime = strawberry.field(description="Start of the hour (UTC).")
    percent: float
    level: CrowdLevel
    confidence: float


@strawberry.enum
class HistoryBucket(Enum):
    HOUR = "hour"
    DAY = "day"


@strawberry.type
class HistoryPoint:
    start: datetime
    percent: float
    level: CrowdLevel


@strawberry.type
class CrowdAlertType:
    id: strawberry.ID
    area_id: strawberry.ID
    level: CrowdLevel
    percent: float
    at: datetime
    kind: str = strawberry.field(description="raised or cleared")
