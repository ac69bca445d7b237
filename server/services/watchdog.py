"""Stops the embedded services when the app dies, however it dies (run by server/services/embedded.py).

    python -m server.services.watchdog      reads "pid" (watch it) or "-pid" (it is gone) lines on stdin

When stdin reaches end of file (the app exited, or was killed and the kernel closed its end of the pipe),
every process group named is sent SIGTERM, then SIGKILL if still there after a few seconds.  Standard
library only, and imports nothing of ours, so it starts fast and works on Linux and macOS alike.
"""

from __future__ import annotations

import os
import signal
import sys
import time

GRACE_SECONDS = 3.0


def _signal_group(pgid: int, sig: int) -> bool:
    """True while the group still exists."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the pipe decides when we act
    pids: set[int] = set()
    for line in sys.stdin.buffer:
        text = line.strip()
        if text.isdigit():
            pids.add(int(text))
        elif text.startswith(b"-") and text[1:].isdigit():  # reaped by the app: its pid may be reused
            pids.discard(int(text[1:]))
    alive = [pid for pid in pids if _signal_group(pid, signal.SIGTERM)]
    deadline = time.monotonic() + GRACE_SECONDS
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in alive if _signal_group(pid, 0)]
    for pid in alive:
        _signal_group(pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
