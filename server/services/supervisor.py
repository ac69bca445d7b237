"""Single-machine mode's process manager: an embedded service that exits unexpectedly is started again on
the same port and data folder, with backoff, so every client (web, worker, hubs, push consumers) reconnects
to the URL it already has.  Its log file is kept under its cap meanwhile.

One thread, alive as long as the services: children it restarts are its own children, and Linux ties their
lives to the thread that started them (PR_SET_PDEATHSIG), which must therefore outlive them.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field

from server.services.embedded import ChildService, EmbeddedStartError, cap_log

log = logging.getLogger("shangquan.supervisor")

FIRST_BACKOFF = 0.25
MAX_BACKOFF = 30.0
STABLE_SECONDS = 60.0  # a child up this long has its backoff reset
POLL_SECONDS = 0.1
CAP_EVERY = 30.0
STILL_DOWN_EVERY = 60.0


def exit_reason(returncode: int | None) -> str:
    if returncode is None:
        return "is gone"
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


@dataclass
class _Watch:
    child: ChildService
    backoff: float = FIRST_BACKOFF
    started_at: float = field(default_factory=time.monotonic)
    down_since: float | None = None
    next_try: float = 0.0
    last_said: float = 0.0
    restarts: int = 0


class Supervisor:
    """`start()` then, at exit, `stop()`: which stops every child in reverse order of starting."""

    def __init__(self, children: list[ChildService]) -> None:
        self.watches = [_Watch(child) for child in children]
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_cap = time.monotonic()

    @property
    def restarts(self) -> int:
        return sum(watch.restarts for watch in self.watches)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="embedded-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=60)  # a restart in progress finishes first (at most START_SECONDS)
        for watch in reversed(self.watches):
            watch.child.stop()

    def _run(self) -> None:
        while not self._stopping.wait(POLL_SECONDS):
            now = time.monotonic()
            for watch in self.watches:
                self._check(watch, now)
            if now - self._last_cap >= CAP_EVERY:
                self._last_cap = now
                for watch in self.watches:
                    cap_log(watch.child.log)

    def _check(self, watch: _Watch, now: float) -> None:
        child = watch.child
        if child.stopping:
            return
        if watch.down_since is None:
            if child.alive():
                if now - watch.started_at >= STABLE_SECONDS:
                    watch.backoff = FIRST_BACKOFF
                return
            assert child.process is not None
            child.reaped()
            watch.down_since = watch.last_said = now
            watch.next_try = now + watch.backoff
            log.warning("%s (pid %d) %s; starting it again on port %d with the same data", child.label,
                        child.process.pid, exit_reason(child.process.returncode), child.port)
        if now < watch.next_try or self._stopping.is_set():
            return
        try:
            child.start()
        except (EmbeddedStartError, OSError) as exc:
            child.reaped()
            watch.backoff = min(watch.backoff * 2, MAX_BACKOFF)
            watch.next_try = time.monotonic() + watch.backoff
            if now - watch.last_said >= STILL_DOWN_EVERY:
                watch.last_said = now
                log.warning("%s still down after %.0f s (%s); next attempt in %.0f s", child.label,
                            now - watch.down_since, exc, watch.backoff)
            return
        assert watch.down_since is not None
        log.warning("%s is running again (pid %d) after %.1f s", child.label, child.pid,
                    time.monotonic() - watch.down_since)
        watch.restarts += 1
        watch.down_since = None
        watch.started_at = time.monotonic()
        watch.backoff = min(watch.backoff * 2, MAX_BACKOFF)
