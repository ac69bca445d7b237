"""The district page costs a fixed number of MongoDB commands, whatever the page size."""

from __future__ import annotations

import httpx

from server.api.ids import to_global
from tests.conftest import CommandCounter, gql

DISTRICT_PAGE = """query($first: Int) { district(id: "%s") { name areas { name capacity }
  merchants(first: $first) { edges { node { name openNow categories { name } offers { title couponCode }
  products { name } } } } } }""" % to_global("District", "luohu-golden-triangle")


async def commands_for(http: httpx.AsyncClient, counter: CommandCounter, first: int) -> tuple[list[str], int]:
    counter.commands.clear()
    counter.enabled = True
    try:
        body = await gql(http, DISTRICT_PAGE, {"first": first})
    finally:
        counter.enabled = False
    return list(counter.commands), len(body["data"]["district"]["merchants"]["edges"])


async def test_command_count_does_not_grow_with_page_size(http: httpx.AsyncClient,
                                                          command_counter: CommandCounter) -> None:
    small, small_n = await commands_for(http, command_counter, 2)
    large, large_n = await commands_for(http, command_counter, 20)
    assert (small_n, large_n) == (2, 20)
    assert len(small) == len(large), (small, large)
    assert len(large) <= 7, large


async def test_crowd_levels_reuse_the_areas_already_loaded(http: httpx.AsyncClient,
                                                           command_counter: CommandCounter) -> None:
    query = """{ district(id: "%s") { crowd { level } areas { name crowd { level percent } } } }""" % to_global(
        "District", "luohu-golden-triangle")
    command_counter.targets.clear()
    command_counter.enabled = True
    try:
        body = await gql(http, query)
    finally:
        command_counter.enabled = False
    assert len(body["data"]["district"]["areas"]) >= 3
    assert command_counter.targets.count(("find", "areas")) == 1, command_counter.targets
