"""Outcome writes in groups: one update_many per distinct change, still a compare-and-set on each record's version,
so a record another worker took over in between keeps that worker's write."""

from __future__ import annotations

from typing import Any

from server.domain.push.delivery_repository import Deliveries
from server.domain.push.models import DELIVERIES


def change(state: str, token: str) -> dict[str, Any]:
    return {"$set": {"state": state, "by": "w1", "write": token, "at": 1.0}, "$inc": {"version": 1}}


async def test_a_group_writes_the_records_still_at_its_version_and_says_which(db: Any) -> None:
    await db[DELIVERIES].insert_many([{"_id": f"c:{i}", "campaign_id": "c", "state": "sending", "version": 1}
                                      for i in range(6)])
    await db[DELIVERIES].update_one({"_id": "c:2"}, {"$set": {"state": "sending", "by": "w2"}, "$inc": {"version": 1}})
    deliveries = Deliveries(db)
    won = await deliveries.write_outcomes(
        [(["c:0", "c:1", "c:2", "c:3"], 1, change("delivered", "t1")), (["c:4"], 1, change("expired", "t1")),
         (["c:5"], 2, change("delivered", "t1"))], "t1")
    assert won == {"c:0", "c:1", "c:3", "c:4"}  # c:2 moved on (another worker), c:5 was never at version 2
    records = {d["_id"]: d async for d in db[DELIVERIES].find({"campaign_id": "c"})}
    assert [records[f"c:{i}"]["state"] for i in range(6)] == ["delivered", "delivered", "sending", "delivered",
                                                              "expired", "sending"]
    assert [records[f"c:{i}"]["version"] for i in range(6)] == [2, 2, 2, 2, 2, 1]
    assert records["c:2"]["by"] == "w2"
    assert await deliveries.write_outcomes([(["c:0", "c:1"], 2, change("failed", "t2"))], "t2") == {"c:0", "c:1"}
