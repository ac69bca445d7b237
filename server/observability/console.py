"""A calm console for single-machine mode on a terminal: short human lines, no request lines below DEBUG,
a progress bar for long first-run work, and a banner that says where everything is.

Used only when stdout is a terminal and LOG_FORMAT is not set; Procfile processes, pipes, files and
LOG_FORMAT=json keep the JSON lines.  Progress bars are tqdm's: a small, dependency-free library made for
exactly this (rich would also do, but brings a whole rendering toolkit for one bar).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from types import TracebackType
from typing import Any, TextIO

from tqdm import tqdm

from server.observability.logs import redact_text

log = logging.getLogger("shangquan")


def console_wanted(stream: TextIO, environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return not env.get("LOG_FORMAT") and stream.isatty()


class ConsoleFormatter(logging.Formatter):
    """`12:03:04  message`, with the level named only when it is not INFO; tracebacks kept."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        line = f"{stamp}  {level}{record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact_text(line)


class CalmFilter(logging.Filter):
    """Request lines (ours and uvicorn's) and uvicorn's start-up chatter only at DEBUG; warnings always."""

    def __init__(self, debug: bool) -> None:
        super().__init__()
        self.debug = debug

    def filter(self, record: logging.LogRecord) -> bool:
        if self.debug or record.levelno >= logging.WARNING:
            return True
        return not (record.name == "shangquan.access" or record.name.startswith("uvicorn"))


class Progress:
    """A progress bar on the terminal while `step(done, total)` is called, then one "done in N s" line
    (logged, so it is in JSON where the console is not)."""

    def __init__(self, what: str, *, shown: bool) -> None:
        self.what, self.shown = what, shown
        self.bar: tqdm[Any] | None = None
        self.started = 0.0

    def __enter__(self) -> Progress:
        self.started = time.monotonic()
        if self.shown:
            self.bar = tqdm(total=1, desc=self.what, unit="step", leave=False, file=sys.stderr, ncols=80,
                            bar_format="{desc} {percentage:3.0f}% |{bar}| {elapsed}")
        return self

    def step(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.total = total
            self.bar.n = done
            self.bar.refresh()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.close()
        if kind is None and (self.shown or time.monotonic() - self.started >= 1):
            log.info("%s: done in %.1f s", self.what, time.monotonic() - self.started)


def banner(host: str, port: int, first_admin_command: str | None, *, fancy: bool) -> str:
    """Where everything is; on a first run, the command that creates the first admin."""
    shown = "127.0.0.1" if host in {"0.0.0.0", "::"} else host  # a browser cannot open 0.0.0.0
    base = f"http://{shown}:{port}"
    lines = [f"商圈 Shangquan is running at {base}  (Ctrl-C stops it)",
             f"  shopper app    {base}/",
             f"  back office    {base}/admin",
             f"  API explorer   {base}/graphql"]
    if host in {"0.0.0.0", "::"}:
        lines.append(f"  (listening on every address: phones on this network use http://<this machine's IP>:{port})")
    if first_admin_command:
        lines.append(f"  first run: create the first admin with  {first_admin_command} accounts create-admin "
                     f"you@example.com")
    if not fancy:
        return "\n".join(lines)
    rule = "─" * 72
    return "\n".join([rule, *lines, rule])
