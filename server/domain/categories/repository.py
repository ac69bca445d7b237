"""Merchant categories (food, electronics, …): written by the content loader, read for names and pickers."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from server.services.mongo import Doc


async def names_by_ids(db: AsyncDatabase[Doc], ids: list[str]) -> dict[str, dict[str, str]]:
    """Each category's name per locale."""
    return {d["_id"]: d["name"] async for d in db.categories.find({"_id": {"$in": ids}})}


async def list_categories(db: AsyncDatabase[Doc]) -> list[dict[str, Any]]:
    """Every category (its _id and name), in the content's order."""
    return [d async for d in db.categories.find({}, {"name": 1}).sort([("sort", 1), ("_id", 1)])]


async def existing_ids(db: AsyncDatabase[Doc], ids: list[str]) -> set[str]:
    return {d["_id"] async for d in db.categories.find({"_id": {"$in": ids}}, {"_id": 1})}
