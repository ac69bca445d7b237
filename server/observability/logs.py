"""Structured JSON logs, one object a line, with every secret we know the shape of scrubbed out.

`configure_logging()` puts one handler on the root logger; the redaction filter sits on that handler, so
it sees every record that reaches it (records from child loggers propagate past logger-level filters).
The formatter scrubs once more, for exception text and anything a later handler might add.
"""

from __future__ import annotations

import json as jsonlib
import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from server.observability.correlation import current_request_id

REDACTED = "[REDACTED]"

# Names whose values are secret, alone or as the last word of a longer name (api_key, session_secret, keys.auth).
_SECRET_WORDS = ("password", "passwd", "secret", "token", "key", "keys", "p256dh", "auth",
                 "authorization", "cookie", "set-cookie", "sq_session", "sq_csrf", "csrf", "session")
_WORDS = "|".join(re.escape(w) for w in _SECRET_WORDS)
_SECRET_NAME = re.compile(r"^(?:.*[_\-.])?(?:" + _WORDS + r")$", re.I)

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Header lines: everything after the name to the end of the line (a cookie header holds many pairs).
    (re.compile(r"(?i)\b((?:set-)?cookie|authorization|proxy-authorization)(['\"]?\s*[:=]\s*)"
                r"(?:\"[^\"\n]*\"|'[^'\n]*'|[^\n]*)"), r"\1\2" + REDACTED),
    # Bearer / Basic credentials wherever they appear.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]+"), r"\1 " + REDACTED),
    # Our own secrets by shape: sq_… API tokens, sqs_… sensor keys (token_urlsafe: letters, digits, _ and -).
    (re.compile(r"(?<![A-Za-z0-9])sqs?_[A-Za-z0-9_\-]{16,}"), REDACTED),
    # Session and CSRF cookies by name.
    (re.compile(r"(?i)\b(sq_session|sq_csrf)=[^;,\s\"']*"), r"\1=" + REDACTED),
    # key=value, key: value, "key": "value" for secret-looking names.
    (re.compile(r"(?i)([\"']?)\b((?:[A-Za-z0-9]+[_\-.])*(?:" + _WORDS + r"))\1(\s*[:=]\s*)(?!\[REDACTED\])"
                r"(?:\"[^\"]*\"|'[^']*'|[^\s,;&{}()\[\]]+)"),
     r"\1\2\1\3" + REDACTED),
    # Credentials in URLs: scheme://user:password@host.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/@\s]*):[^@/\s]+@"), r"\1:" + REDACTED + "@"),
]

# Attributes every LogRecord has; anything else came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message", "asctime", "taskName"}


def secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.match(name))


def redact_text(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact(value: Any, name: str = "") -> Any:
    """A copy of value fit for a log: secret-named entries replaced, strings scrubbed, containers walked."""
    if name and secret_name(name):
        return REDACTED
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        # a header pair (name, value): the name decides
        if len(items) == 2 and isinstance(items[0], str | bytes):
            first = items[0].decode("latin-1") if isinstance(items[0], bytes) else items[0]
            if secret_name(first):
                return [first, REDACTED]
        return [redact(v) for v in items]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact_text(str(value))


class RedactionFilter(logging.Filter):
    """Scrubs the message (with its arguments merged in) and the `extra` fields of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string still gets logged, scrubbed
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact_text(message), None
        for name, value in list(vars(record).items()):
            if name not in _STANDARD and not name.startswith("_"):
                setattr(record, name, redact(value, name))
        return True


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        request_id = current_request_id()
        if request_id != "-":
            out["request_id"] = request_id
        for name, value in extra_fields(record).items():
            out.setdefault(name, redact(value, name))
        if record.exc_info:
            out["exc_info"] = redact_text(self.formatException(record.exc_info))
        if record.stack_info:
            out["stack_info"] = redact_text(self.formatStack(record.stack_info))
        return jsonlib.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """For a developer's terminal: the classic line, plus request id and extra fields, still scrubbed."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(name)s %(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: redact(v, k) for k, v in extra_fields(record).items()}
        request_id = current_request_id()
        if request_id != "-":
            extras = {"request_id": request_id, **extras}
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return redact_text(line)


def configure_logging(level: str = "INFO", json: bool = True, stream: TextIO | None = None,
                      console: bool = False) -> logging.Handler:
    """Replace the root logger's handlers with one (JSON or text) handler on stderr; returns it.  `console`:
    single-machine mode on a terminal (see console.py), short lines and no request lines below DEBUG."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    handler.addFilter(RedactionFilter())
    if console:
        from server.observability.console import CalmFilter, ConsoleFormatter

        handler.setFormatter(ConsoleFormatter())
        handler.addFilter(CalmFilter(debug=level.upper() == "DEBUG"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    known = isinstance(logging.getLevelName(level.upper()), int)
    root.setLevel(level.upper() if known else logging.INFO)
    if not known:
        logging.getLogger("shangquan").warning("LOG_LEVEL %r is not a level name; using INFO", level)
    # uvicorn's own loggers go through ours, except its access log: the access line comes from
    # AccessLogMiddleware, without the query string uvicorn would print (invitation tokens live there).
    # uvicorn decides whether to log access by `hasHandlers()`, so the logger must have none, inherited or not.
    for name in ("uvicorn", "uvicorn.error"):
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    # httpx logs every request's full URL at INFO (push endpoints and query strings): warnings only.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    return handler
