"""Where the fan-out's delivery records were queried before they moved to the push area's repository
(server/domain/push/delivery_repository.py); kept so that imports of this path keep working."""

from server.domain.push.delivery_repository import (
    CLAIMED,
    DEFERRED,
    RETRY,
    SUB_FIELDS,
    Deliveries,
    delivery_counts,
    delivery_id,
)

__all__ = ["CLAIMED", "DEFERRED", "RETRY", "SUB_FIELDS", "Deliveries", "delivery_counts", "delivery_id"]
