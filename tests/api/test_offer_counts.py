"""district.offers.totalCount is the number of offers its pages walk through, for every district
(it once said 0 above a row of offers: the PWA showed "优惠 0")."""

from __future__ import annotations

import httpx

from tests.conftest import gql

PAGE = """query($id: ID!, $after: String) { district(id: $id) { offers(first: 5, after: $after) {
  totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } } }"""


async def test_total_count_matches_the_edges_walked_for_every_district(http: httpx.AsyncClient) -> None:
    districts = (await gql(http, "{ districts { id slug } }"))["data"]["districts"]
    assert districts
    walked_any = 0
    for district in districts:
        seen: list[str] = []
        after = None
        totals = set()
        while True:
            body = await gql(http, PAGE, {"id": district["id"], "after": after})
            assert "errors" not in body, body
            offers = body["data"]["district"]["offers"]
            totals.add(offers["totalCount"])
            seen += [e["node"]["id"] for e in offers["edges"]]
            if not offers["pageInfo"]["hasNextPage"]:
                break
            after = offers["pageInfo"]["endCursor"]
        assert len(seen) == len(set(seen))
        assert totals == {len(seen)}, (district["slug"], totals, len(seen))
        walked_any += len(seen)
    assert walked_any > 0
