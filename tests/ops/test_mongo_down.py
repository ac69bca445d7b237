"""MongoDB stops under the running app: probes and data requests say 503 within the configured timeout,
the shell of the PWA still loads, and the app serves again by itself once the same server is back."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx

from server.api.ids import to_global
from server.domain.crowd import sensors
from server.services import mongo
from server.settings import ROOT
from tests.conftest import RunningApp
from tests.ops.servers import MongoServer, eventually, serve
from tests.support import PASSWORD, make_account

DISTRICT, AREA = "huaqiangbei", "hqb-north"  # tests/fixtures/content
READ = '{ district(id: "%s") { id name areas { id name } } }' % to_global("District", DISTRICT)


async def test_mongodb_down_then_back(app_server: RunningApp, tmp_path: Path) -> None:
    server = MongoServer(tmp_path / "mongo")
    server.start()
    settings = replace(app_server.settings, mongodb_url=server.url, mongodb_db="mongo_down", var_dir=tmp_path,
                       content_dir=ROOT / "tests" / "fixtures" / "content", mongodb_timeout_ms=500)
    client = mongo.connect(server.url)
    try:
        async with serve(settings) as url, httpx.AsyncClient(base_url=url, timeout=15) as http:
            db = client[settings.mongodb_db]
            operator = await make_account(db, "operator", district_ids=[DISTRICT])
            _, key = await sensors.register(db, operator.actor(), AREA, "people_counter", "gate")
            form = await http.get("/admin/login")
            csrf = re.search(r'name="csrf" value="([^"]*)"', form.text)
            assert csrf
            signed_in = await http.post("/admin/login", data={
                "csrf": csrf.group(1), "email": operator.email, "password": PASSWORD, "next": "/admin/"})
            assert signed_in.status_code == 303
            before = await http.post("/graphql", json={"query": READ})
            assert before.status_code == 200 and "errors" not in before.json()

            def reading() -> dict[str, object]:
                return {"readings": [{"areaId": AREA, "at": datetime.now(UTC).isoformat(), "count": 500}]}

            server.stop()

            ready = await http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["mongodb"].startswith("error")
            read = await http.post("/graphql", json={"query": READ})
            assert read.status_code == 503 and read.headers["retry-after"].isdigit()
            assert read.json()["data"] == {"district": None}
            [error] = read.json()["errors"]
            assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            assert str(server.port) not in error["message"], "the driver's message stays in the log"
            page = await http.get("/admin/", headers={"accept": "text/html"})
            assert page.status_code == 503 and page.headers["retry-after"].isdigit()
            assert "text/html" in page.headers["content-type"]
            ingest = await http.post("/ingest/crowd", json=reading(), headers={"authorization": f"Bearer {key}"})
            assert ingest.status_code == 503 and ingest.json()["code"] == "SERVICE_UNAVAILABLE"
            shell = await http.get("/")
            assert shell.status_code == 200, "the PWA's shell needs no database"

            server.start()  # the same port and data directory

            async def ready_again() -> bool:
                return (await http.get("/readyz")).status_code == 200

            await eventually(ready_again)
            after = await http.post("/graphql", json={"query": READ})
            assert after.status_code == 200 and after.json() == before.json(), "the data survived the restart"
            assert (await http.get("/admin/")).status_code == 200
            ingest = await http.post("/ingest/crowd", json=reading(), headers={"authorization": f"Bearer {key}"})
            assert ingest.status_code == 200, ingest.text
    finally:
        await client.close()
        server.stop()
