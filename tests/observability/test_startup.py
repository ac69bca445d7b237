"""Startup validation: one clear line per problem, and a bounded, credential-free wait for MongoDB."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from server.observability.startup import MongoUnavailable, problems, wait_for_mongo
from server.settings import ROOT, Settings

BASE = Settings.from_env({})
GOOD = replace(BASE, mongodb_url="mongodb://db1:27017,db2:27018/shangquan?replicaSet=rs0",
               redis_url="redis://cache:6379/0", session_secret="s" * 40)


def test_good_settings_have_no_problems() -> None:
    assert problems(GOOD, {}) == []
    assert problems(GOOD, {"SHANGQUAN_ENV": "production"}) == []
    assert problems(BASE, {}) == []  # development: embedded servers, generated secret
    for url in ("mongodb+srv://user:pw@cluster0.example.net/db", "mongodb://[::1]:27017", "mongodb://localhost"):
        assert problems(replace(GOOD, mongodb_url=url), {}) == [], url
    for url in ("rediss://:pw@cache.example:6380", "unix:///run/redis.sock"):
        assert problems(replace(GOOD, redis_url=url), {}) == [], url


@pytest.mark.parametrize(("field", "url", "expect"), [
    ("mongodb_url", "mongodb://db:99999/x", "MONGODB_URL has an invalid port '99999'"),
    ("mongodb_url", "mongodb://db:port/x", "MONGODB_URL has an invalid port 'port'"),
    ("mongodb_url", "mongodb:///x", "MONGODB_URL names no host"),
    ("mongodb_url", "mongodb://a:1,:2/x", "MONGODB_URL has an empty or unparsable host"),
    ("mongodb_url", "mongodb+srv://a.example:27017/x", "mongodb+srv:// takes exactly one host"),
    ("mongodb_url", "postgres://db/x", "MONGODB_URL must use one of mongodb://, mongodb+srv://"),
    ("mongodb_url", "mongodb://[::1/x", "MONGODB_URL cannot be parsed"),
    ("redis_url", "redis://cache:0", "REDIS_URL has an invalid port '0'"),
    ("redis_url", "http://cache", "REDIS_URL must use one of redis://"),
    ("redis_url", "unix://", "REDIS_URL needs a socket path"),
    ("redis_url", "redis://a:1,b:2", "REDIS_URL names several hosts"),
])
def test_bad_urls(field: str, url: str, expect: str) -> None:
    settings = replace(GOOD, mongodb_url=url) if field == "mongodb_url" else replace(GOOD, redis_url=url)
    found = problems(settings, {})
    assert len(found) == 1 and expect in found[0], found


def test_production_without_secrets() -> None:
    found = problems(replace(BASE, debug=True), {"SHANGQUAN_ENV": "production"})
    assert found == [
        "MONGODB_URL must be set in production (the embedded server is for one machine)",
        "REDIS_URL must be set in production (the embedded server is for one machine)",
        "SESSION_SECRET must be set in production (32+ random characters)",
        "DEBUG is on in production: it shows tracebacks to everyone; unset it",
    ]
    short = problems(replace(GOOD, session_secret="short"), {"SHANGQUAN_ENV": "production"})
    assert short == ["SESSION_SECRET is too short: 5 characters, need at least 32"]
    assert problems(replace(BASE, debug=True), {}) == []  # development may debug


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_wait_for_mongo_gives_up_clearly() -> None:
    port = closed_port()
    started = time.monotonic()
    with pytest.raises(MongoUnavailable) as info:
        await wait_for_mongo(f"mongodb://admin:hunter2secret@127.0.0.1:{port}/db", attempts=3, delay=0.1,
                             attempt_seconds=0.3)
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert message.startswith(f"MongoDB at 127.0.0.1:{port} did not answer after 3 attempts: "), message
    assert "hunter2secret" not in message and "admin" not in message
    assert "\n" not in message and len(message) < 400
    assert 0.3 <= elapsed < 8, elapsed  # backoff 0.1 + 0.2 s, attempts bounded by attempt_seconds


async def test_wait_for_mongo_returns_when_up(mongo_url: str) -> None:
    await wait_for_mongo(mongo_url, attempts=2, delay=0.1)


@pytest.mark.parametrize("command", [
    ["-m", "server"],
    ["-m", "server.worker"],
    ["-c", "import server.asgi as entry; entry.app"],  # what `uvicorn server.asgi:app` does
])
def test_a_bad_setting_is_refused_in_one_line_by_every_entry_point(command: list[str]) -> None:
    env = {**os.environ, "GRAPHQL_IDE": "maybe", "MONGODB_URL": "mongodb://127.0.0.1:1", "REDIS_URL": "redis://x"}
    done = subprocess.run([sys.executable, *command], env=env, capture_output=True, text=True, timeout=60,
                          cwd=ROOT)
    assert done.returncode in (1, 2), done
    assert done.stderr.strip() == "configuration error: GRAPHQL_IDE must be on or off, got 'maybe'", done.stderr
