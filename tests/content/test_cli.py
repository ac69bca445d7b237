"""`python -m server content load` as an operator runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from server.settings import ROOT
from tests.conftest import unique_db

FIXTURE = Path(__file__).parent.parent / "fixtures" / "content"


def run_load(mongo_url: str, db_name: str, content: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MONGODB_URL": mongo_url, "MONGODB_DB": db_name,
           "SHANGQUAN_CONTENT_DIR": str(content)}
    return subprocess.run([sys.executable, "-m", "server", "content", "load"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_cli_loads_then_reports_no_changes_then_rejects_bad_content(mongo_url: str, tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(FIXTURE, content)
    db_name = unique_db("cli")
    first = run_load(mongo_url, db_name, content)
    assert first.returncode == 0, first.stderr
    assert "merchants: +2" in first.stdout
    second = run_load(mongo_url, db_name, content)
    assert second.returncode == 0 and "(0 changes)" in second.stdout
    offers = content / "offers.yaml"
    data = yaml.safe_load(offers.read_text(encoding="utf-8"))
    data["offers"][0]["kind"] = "free-lunch"
    offers.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    third = run_load(mongo_url, db_name, content)
    assert third.returncode == 1
    assert "offers.yaml: record #1 (phone-city-100-off): field kind" in third.stderr
    assert "nothing written" in third.stderr


def test_a_mongodb_that_does_not_answer_or_a_missing_content_folder_gets_one_line(tmp_path: Path) -> None:
    from server.services.embedded import free_port

    silent = f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=500"
    unreachable = run_load(silent, unique_db("cli"), FIXTURE)
    assert unreachable.returncode == 1 and "Traceback" not in unreachable.stderr, unreachable.stderr
    assert unreachable.stderr.strip().splitlines() == [
        f"MongoDB at {silent.split('/')[2]} did not answer: is it running, and is MONGODB_URL right? "
        "Nothing was written."]
    missing = run_load(silent, unique_db("cli"), tmp_path / "no-such-folder")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr, missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and "no-such-folder is not a folder" in missing.stderr


def test_create_admin_says_why_in_words(mongo_url: str) -> None:
    env = {**os.environ, "MONGODB_URL": mongo_url, "MONGODB_DB": unique_db("cli")}
    short = subprocess.run([sys.executable, "-m", "server", "accounts", "create-admin", "boss@example.com"],
                           env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, input="short\n")
    assert short.returncode == 1
    assert short.stderr.strip() == "not created: password: Use at least 10 characters.", short.stderr
