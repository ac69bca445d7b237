"""Content loading: idempotent, updates what changed, rejects bad files whole."""

from __future__ import annotations

import dataclasses
import gc
import pickle
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.content import collector, files, records
from server.content.loader import COLLECTIONS, load_content, parse_content
from server.content.validate import ContentError, Record
from server.domain.geo import Point
from server.domain.images import repository as images
from server.domain.images.models import Image, content_image_id, owner_ref
from server.domain.merchants.hours import Span
from server.domain.merchants.repository import MerchantQuery, find_page
from server.domain.search.terms import query_terms
from server.settings import ROOT
from tests.conftest import unique_db

FIXTURE = Path(__file__).parent.parent / "fixtures" / "content"


@pytest.fixture
def content(tmp_path: Path) -> Path:
    target = tmp_path / "content"
    shutil.copytree(FIXTURE, target)
    return target


@pytest.fixture
def db(db_client: Any) -> Any:
    return db_client[unique_db("content")]


async def counts(db: Any) -> dict[str, int]:
    return {name: await db[name].count_documents({}) for name in COLLECTIONS}


def edit(path: Path, change: Any) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


async def test_first_load_writes_everything_and_second_changes_nothing(db: Any, content: Path) -> None:
    first = await load_content(db, content)
    assert sum(first.inserted.values()) == sum(len(v) for v in parse_content(content).values())
    snapshot = [d async for d in db.merchants.find({}).sort("_id", 1)]
    second = await load_content(db, content)
    assert second.changed == 0
    assert [d async for d in db.merchants.find({}).sort("_id", 1)] == snapshot


async def test_changed_record_is_updated_and_removed_record_deleted(db: Any, content: Path) -> None:
    await load_content(db, content)

    def rename_and_drop(data: dict[str, Any]) -> None:
        data["merchants"][0]["name"]["en"] = "Huaqiang Phone Mall"
        del data["merchants"][1]

    def drop_product(data: dict[str, Any]) -> None:
        data["products"] = [{**data["products"][0], "sold_by": ["hqb-phone-city"]}]

    edit(content / "merchants" / "huaqiangbei.yaml", rename_and_drop)
    edit(content / "products.yaml", drop_product)
    report = await load_content(db, content)
    assert report.updated["merchants"] == 1 and report.deleted["merchants"] == 1
    assert report.updated["products"] == 1
    renamed = await db.merchants.find_one({"_id": "hqb-phone-city"})
    assert renamed["name"]["en"] == "Huaqiang Phone Mall"
    assert await db.merchants.find_one({"_id": "hqb-night-noodles"}) is None


async def test_back_office_edits_survive_a_reload(db: Any, content: Path) -> None:
    await load_content(db, content)
    await db.merchants.update_one({"_id": "hqb-phone-city"}, {"$set": {"origin": "backoffice", "phone": "1"}})
    edit(content / "merchants" / "huaqiangbei.yaml", lambda d: d["merchants"][0].update(phone="+86 755 1"))
    await load_content(db, content)
    assert (await db.merchants.find_one({"_id": "hqb-phone-city"}))["phone"] == "1"


async def test_a_reload_lists_pictures_uploaded_before_the_lists(db: Any, content: Path) -> None:
    """Uploads stored before `images_by_owner` existed show once a load runs (the upgrade to it changes the
    deriving code, so one does); the content picture needs no list, its _id is the owner's."""
    await load_content(db, content)
    ref = owner_ref("merchant", "hqb-phone-city")
    drawn = content_image_id("merchant", "hqb-phone-city")
    photo = Image("early-upload", "1" * 24, "merchant", "hqb-phone-city", {}, 640, 400, (320, 640))
    await images.insert_image(db, images.as_doc(photo, {"position": 1.7e9, "origin": "backoffice"}))
    assert [i.id for i in (await images.by_owners(db, [ref]))[ref]] == [drawn]
    edit(content / "merchants" / "huaqiangbei.yaml", lambda d: d["merchants"][0].update(phone="+86 755 1"))
    await load_content(db, content)
    assert [i.id for i in (await images.by_owners(db, [ref]))[ref]] == ["early-upload", drawn]


async def test_counters_after_a_reload_count_the_back_offices_merchants_too(db: Any, content: Path) -> None:
    await load_content(db, content)
    # the back office unpublished one content merchant and moved another; and it created one of its own
    await db.merchants.update_one({"_id": "hqb-phone-city"}, {"$set": {"origin": "backoffice", "status": "hidden"}})
    moved = await db.merchants.find_one({"_id": "hqb-night-noodles"})
    area = next(iter([a async for a in db.areas.find({}) if a["_id"] != moved["area_id"]]))
    await db.merchants.update_one({"_id": moved["_id"]}, {"$set": {"origin": "backoffice", "area_id": area["_id"]}})
    await db.merchants.insert_one({**moved, "_id": "bo-new", "key": "bo-new", "origin": "backoffice",
                                   "categories": ["night-snacks"]})
    edit(content / "merchants" / "huaqiangbei.yaml", lambda d: d["merchants"][0].update(phone="+86 755 3"))
    await load_content(db, content)
    stored = {d["_id"]: d["n"] async for d in db.merchant_counts.find({})}
    assert stored["all"] == await db.merchants.count_documents({"status": "published"})
    for district in [d["_id"] async for d in db.districts.find({}, {"_id": 1})]:
        exact = await db.merchants.count_documents({"district_id": district, "status": "published"})
        assert stored.get(f"district:{district}", 0) == exact, district
    for area_id in [a["_id"] async for a in db.areas.find({}, {"_id": 1})]:
        exact = await db.merchants.count_documents({"area_id": area_id, "status": "published"})
        assert stored.get(f"area:{area_id}", 0) == exact, area_id
    snacks = await db.merchants.count_documents({"categories": "night-snacks", "status": "published"})
    assert stored["category:night-snacks"] == snacks


BAD_EDITS = [
    ("merchants/huaqiangbei.yaml", lambda d: d["merchants"][1].update(price_level=9),
     "hqb-night-noodles", "price_level"),
    ("merchants/huaqiangbei.yaml", lambda d: d["merchants"][0]["hours"].update(mon=["25:00-26:00"]),
     "hqb-phone-city", "hours"),
    ("merchants/huaqiangbei.yaml", lambda d: d["merchants"][0].update(location={"lat": 22.0, "lng": 114.0}),
     "hqb-phone-city", "location"),
    ("merchants/huaqiangbei.yaml", lambda d: d["merchants"][0].update(area="dongmen"), "hqb-phone-city", "area"),
    ("merchants/huaqiangbei.yaml", lambda d: d["merchants"][0]["name"].pop("zh-CN"), "hqb-phone-city", "name.zh-CN"),
    ("offers.yaml", lambda d: d["offers"][0].update(valid_until="2026-01-01T00:00:00+08:00"),
     "phone-city-100-off", "valid_until"),
    ("offers.yaml", lambda d: d["offers"][0].update(merchant="nobody"), "phone-city-100-off", "merchant"),
    ("offers.yaml", lambda d: d["offers"][0].update(amount_off_fen=-5), "phone-city-100-off", "amount_off_fen"),
    ("products.yaml", lambda d: d["products"][0]["price"].update(min_fen=99999), "shajing-oyster", "price.max_fen"),
    ("festivals.yaml", lambda d: d["festivals"][0].update(districts=["atlantis"]), "test-shopping-festival",
     "districts"),
    ("districts.yaml", lambda d: d["districts"][0].update(id="Bad Id"), "#1", "id"),
]


@pytest.mark.parametrize(("file", "change", "record", "field"), BAD_EDITS)
async def test_malformed_content_is_rejected_naming_file_record_and_field(
    db: Any, content: Path, file: str, change: Any, record: str, field: str,
) -> None:
    await load_content(db, content)
    before = {name: [d async for d in db[name].find({}).sort("_id", 1)] for name in COLLECTIONS}
    edit(content / "merchants" / "huaqiangbei.yaml", lambda d: d["merchants"][0].update(phone="+86 755 2"))
    edit(content / file, change)
    with pytest.raises(ContentError) as caught:
        await load_content(db, content)
    assert caught.value.file == file
    assert record in caught.value.record
    assert caught.value.field == field
    assert file in str(caught.value) and field in str(caught.value)
    after = {name: [d async for d in db[name].find({}).sort("_id", 1)] for name in COLLECTIONS}
    assert after == before  # the valid phone change in the same load was not written either


async def test_invalid_yaml_is_rejected(db: Any, content: Path) -> None:
    (content / "festivals.yaml").write_text("festivals: [unclosed", encoding="utf-8")
    with pytest.raises(ContentError, match=r"festivals\.yaml"):
        await load_content(db, content)
    assert all(v == 0 for v in (await counts(db)).values())


def test_shipped_content_meets_the_brief() -> None:
    parsed = parse_content(ROOT / "content")
    district_ids = {d["_id"] for d in parsed["districts"]}
    assert {"luohu-golden-triangle", "huaqiangbei", "futian-cbd", "shuibei-jewellery",
            "yantian-chung-ying-street"} <= district_ids
    assert len(district_ids) >= 7
    luohu_areas = {a["name"]["zh-CN"] for a in parsed["areas"] if a["district_id"] == "luohu-golden-triangle"}
    assert {"东门", "国贸", "人民南"} <= luohu_areas
    assert len(parsed["areas"]) >= 25
    assert len(parsed["merchants"]) >= 150
    assert len(parsed["products"]) >= 30
    assert len(parsed["offers"]) >= 60
    assert len(parsed["festivals"]) >= 4
    past_midnight = [m for m in parsed["merchants"]
                     if any(int(s[6:8]) < int(s[:2]) for spans in m["hours"].values() for s in spans
                            if s[6:] != "24:00")]
    assert len(past_midnight) >= 10
    for collection in ("districts", "merchants", "products"):
        for doc in parsed[collection]:
            assert {"zh-CN", "zh-HK", "en"} <= set(doc["name"]), doc["_id"]


def test_merchant_files_read_in_worker_processes_give_the_same_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    one_process = parse_content(ROOT / "content")
    monkeypatch.setattr(files, "PARALLEL_BYTES", 0)  # the seed's 8 district files, as if a city's
    assert parse_content(ROOT / "content") == one_process


def test_a_bad_merchant_read_in_a_worker_process_is_reported_as_in_this_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    content = tmp_path / "content"
    shutil.copytree(ROOT / "content", content)
    edit(content / "merchants" / "futian-cbd.yaml", lambda d: d["merchants"][2].update(price_level=0))
    edit(content / "merchants" / "prince-bay.yaml", lambda d: d["merchants"][0].update(phone="call us"))
    monkeypatch.setattr(files, "PARALLEL_BYTES", 0)
    with pytest.raises(ContentError) as caught:
        parse_content(content)
    # the first bad record in file order, though the bigger file may have finished first
    assert (caught.value.file, caught.value.field) == ("merchants/futian-cbd.yaml", "price_level")
    assert "#3" in caught.value.record


def test_offers_read_in_a_worker_process_are_checked_in_file_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """offers.yaml is read beside the merchant files; its errors still come after a bad festival's, and a
    YAML error in it is reported as when it was read here."""
    content = tmp_path / "content"
    shutil.copytree(ROOT / "content", content)
    monkeypatch.setattr(files, "PARALLEL_BYTES", 0)
    (content / "offers.yaml").write_text("offers: [unclosed", encoding="utf-8")
    edit(content / "festivals.yaml", lambda d: d["festivals"][0].update(kind="parade-of-nothing"))
    with pytest.raises(ContentError) as caught:
        parse_content(content)
    assert (caught.value.file, caught.value.field) == ("festivals.yaml", "kind")
    edit(content / "festivals.yaml", lambda d: d["festivals"][0].update(kind="shopping"))
    with pytest.raises(ContentError) as caught:
        parse_content(content)
    assert caught.value.file == "offers.yaml" and "not valid YAML" in caught.value.message


async def test_a_reload_writes_only_the_offer_lists_that_changed(db: Any, content: Path) -> None:
    """offers_by_merchant is no longer deleted and written whole on each load: a list equal to the stored one
    is left as it is (the mark below stays), a changed one is written, and one without offers goes."""
    await load_content(db, content)
    await db.offers_by_merchant.update_one({"_id": "hqb-phone-city"}, {"$set": {"mark": "untouched"}})
    edit(content / "products.yaml", lambda d: d["products"][0]["name"].update(en="Another name"))
    await load_content(db, content)  # offers as they were
    assert (await db.offers_by_merchant.find_one({"_id": "hqb-phone-city"}))["mark"] == "untouched"

    edit(content / "offers.yaml", lambda d: d["offers"][0].update(valid_until="2027-02-28T23:59:59+08:00"))
    await load_content(db, content)
    listed = await db.offers_by_merchant.find_one({"_id": "hqb-phone-city"})
    assert "mark" not in listed and [o["_id"] for o in listed["offers"]] == ["phone-city-100-off"]
    assert listed["offers"][0]["valid_until"].replace(tzinfo=None) == (await db.offers.find_one())[
        "valid_until"].replace(tzinfo=None)

    edit(content / "offers.yaml", lambda d: d.update(offers=[]))
    await load_content(db, content)
    assert await db.offers_by_merchant.count_documents({}) == 0


async def test_the_collector_is_paused_while_content_loads_and_resumed_after(db: Any, content: Path) -> None:
    """The cyclic collector is off for the load (content/collector.py), and on again after it, a rejected load
    included; a pause that began elsewhere still holds until it ends."""
    was = gc.isenabled()
    gc.enable()
    try:
        seen: list[bool] = []
        await load_content(db, content, progress=lambda done, total: seen.append(gc.isenabled()))
        assert seen and not any(seen)
        assert gc.isenabled()
        (content / "festivals.yaml").write_text("festivals: [unclosed", encoding="utf-8")
        with pytest.raises(ContentError):
            await load_content(db, content)
        assert gc.isenabled()
        with collector.paused():
            with pytest.raises(ContentError):
                await load_content(db, content)
            assert not gc.isenabled()
        assert gc.isenabled()
    finally:
        if not was:
            gc.disable()


class Stopped(Exception):
    """A load stopped part way (a kill, a database error), raised from its progress callback."""


def _stop_after_merchants(done: int, total: int) -> None:
    if done == 2 + COLLECTIONS.index("merchants"):  # 1 is the reading, then one step per collection
        raise Stopped


async def _found(db: Any, word: str) -> list[str]:
    page = await find_page(db, MerchantQuery(terms=query_terms(word)), 20, None)
    return [m.id for m, _, _ in page.items]


async def test_a_load_stopped_after_the_merchants_is_completed_by_the_next(db: Any, content: Path) -> None:
    """The merchants it wrote are current when the next load compares them, yet that load rebuilds the search
    lists: the manifest said a load had begun.  (Found by the review of session 7: the renamed shop was never
    found under its new name.)"""
    await load_content(db, content)
    edit(content / "merchants" / "huaqiangbei.yaml",
         lambda d: d["merchants"][0]["name"].update(en="Zebrafish Phones"))
    with pytest.raises(Stopped):
        await load_content(db, content, progress=_stop_after_merchants)
    assert await _found(db, "zebrafish") == []  # the merchant is written, its lists are not
    again = await load_content(db, content)
    assert again.updated["merchants"] == 0  # nothing to write there: the lists were rebuilt all the same
    assert await _found(db, "zebrafish") == ["hqb-phone-city"]


async def test_files_put_back_after_a_stopped_load_are_loaded_not_taken_as_unchanged(db: Any, content: Path) -> None:
    original = (content / "merchants" / "huaqiangbei.yaml").read_text(encoding="utf-8")
    await load_content(db, content)
    edit(content / "merchants" / "huaqiangbei.yaml",
         lambda d: d["merchants"][0]["name"].update(en="Zebrafish Phones"))
    with pytest.raises(Stopped):
        await load_content(db, content, progress=_stop_after_merchants)
    (content / "merchants" / "huaqiangbei.yaml").write_text(original, encoding="utf-8")
    report = await load_content(db, content)  # the files the manifest was saved for, but the database is not
    assert report.updated["merchants"] == 1
    assert await _found(db, "zebrafish") == []
    assert (await db.merchants.find_one({"_id": "hqb-phone-city"}))["name"]["en"] != "Zebrafish Phones"


@pytest.mark.parametrize("made", [
    lambda: Record("merchants/x.yaml", "#7 (x)", {"id": "x", "name": {"en": "X"}}),
    lambda: Span(3, 600, 1560),
    lambda: Point(22.5, 114.1),
    lambda: records.MerchantDraft({"_id": "x", "name": {"en": "X"}}, Point(22.5, 114.1), [Span(0, 60, 120)],
                                  {date(2027, 2, 6): (Span(5, 0, 30),)}, content_hash="abc"),
])
def test_what_a_reading_worker_sends_back_arrives_whole(made: Any) -> None:
    """These pickle as their fields (__reduce__, for speed): every field, none left to its default.  A field
    added to one of them and not to its __reduce__ would be lost only where files are read in worker
    processes, at city scale."""
    sent = made()
    assert len(sent.__reduce__()[1]) == len(dataclasses.fields(sent))
    assert all(getattr(sent, f.name) != f.default for f in dataclasses.fields(sent))
    assert pickle.loads(pickle.dumps(sent)) == sent
