"""One single-machine instance per data folder (SHANGQUAN_VAR_DIR), and a data folder fit to start on.

The lock is `var/run/shangquan.lock`, held with flock(2) for the instance's whole life: the kernel lets go of it
however the holder dies, so a lock nobody holds is stale by definition.  Its content says who holds it (pid,
the app's URL, the embedded services' URLs) for the "already running" message and for management commands,
which use the running instance's MongoDB rather than start a second server on the same files.

A stale lock is taken over; first, any embedded service the dead instance left running is stopped, once its
pid file and its live command line agree that it is ours (never by process name).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.services.embedded import command_line

MIN_FREE_BYTES = 64 * 1024 * 1024  # less than this at start and the embedded servers may fail mid-write
PID_FILES = ("nx-27017.pid", "redis.pid")


class InstanceError(Exception):
    """A reason not to start, in one line naming the path and what to do; the process exits 1."""


class AlreadyRunning(InstanceError):
    def __init__(self, pid: int | str, url: str, command: str = "") -> None:
        if command and not url:
            super().__init__(f"a Shangquan command ({command}, pid {pid}) is using this data folder; start again "
                             f"when it has finished")
        else:
            super().__init__(f"Shangquan is already running (pid {pid}) at {url or 'an unknown address'}")
        self.pid, self.url = pid, url


def lock_path(var_dir: Path) -> Path:
    return var_dir / "run" / "shangquan.lock"


def _why(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


def check_var_dir(var_dir: Path) -> None:
    """The data folder exists (or can be made), is writable, its data is readable, and the disk has room."""
    try:
        for sub in ("run", "log"):
            (var_dir / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InstanceError(f"cannot create the data folder {var_dir} ({_why(exc)}): choose another with "
                            f"SHANGQUAN_VAR_DIR or fix its permissions") from None
    for folder in (var_dir, var_dir / "run", var_dir / "log", var_dir / "mongo", var_dir / "redis"):
        if folder.exists() and not os.access(folder, os.W_OK | os.X_OK | os.R_OK):
            raise InstanceError(f"the data folder {folder} is not writable by this user: fix its permissions "
                                f"(chown/chmod) or choose another with SHANGQUAN_VAR_DIR")
    # Unreadable data must stop us: starting would show an empty database where the real one is.
    for folder in (var_dir / "mongo", var_dir / "redis"):
        if folder.is_dir():
            for item in folder.iterdir():
                if item.is_file() and not os.access(item, os.R_OK | os.W_OK):
                    raise InstanceError(f"the data file {item} cannot be read and written by this user: fix its "
                                        f"permissions; nothing was started")
    free = shutil.disk_usage(var_dir).free
    if free < MIN_FREE_BYTES:
        raise InstanceError(f"the disk holding {var_dir} is full ({free // (1024 * 1024)} MB free, need "
                            f"{MIN_FREE_BYTES // (1024 * 1024)} MB): free some space and start again")


@dataclass
class InstanceLock:
    """Held while the file descriptor is open; `update()` rewrites what it says."""

    path: Path
    fd: int
    record: dict[str, Any] = field(default_factory=dict)

    def update(self, **values: Any) -> None:
        self.record.update(values)
        data = (json.dumps(self.record) + "\n").encode()
        try:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, data, 0)
            os.fsync(self.fd)
        except OSError as exc:
            raise InstanceError(_disk_message(self.path, exc)) from None

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _disk_message(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return f"the disk holding {path.parent} is full (writing {path}): free some space and start again"
    return f"cannot write {path} ({_why(exc)}): fix the data folder's permissions or choose another"


def _read_record(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        record = json.loads(raw.decode())
        if not isinstance(record, dict) or not isinstance(record.get("pid"), int):
            raise ValueError("no pid")
    except (ValueError, UnicodeDecodeError):
        raise InstanceError(f"the lock file {path} is damaged (not what Shangquan writes): if no Shangquan runs on "
                            f"this data folder, delete it and start again") from None
    return record


def holder(var_dir: Path) -> dict[str, Any] | None:
    """What the running instance on this folder says about itself, or None when none runs."""
    path = lock_path(var_dir)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # held: someone runs
            raw = os.pread(fd, 64 * 1024, 0)
            with contextlib.suppress(InstanceError):
                return _read_record(path, raw)
            return {"pid": "unknown"}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def acquire(var_dir: Path, **record: Any) -> InstanceLock:
    """The folder's lock, or AlreadyRunning; a stale lock's leftover services are stopped first."""
    path = lock_path(var_dir)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise InstanceError(_disk_message(path, exc)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raw = os.pread(fd, 64 * 1024, 0)
        os.close(fd)
        try:
            held = _read_record(path, raw)
        except InstanceError:
            raise AlreadyRunning("unknown", "") from None
        raise AlreadyRunning(held["pid"], str(held.get("url", "")), str(held.get("command", ""))) from None
    try:
        raw = os.pread(fd, 64 * 1024, 0)
        if raw.strip():
            _read_record(path, raw)  # damaged: refuse, and leave it for the user to look at
        stop_leftovers(var_dir)
        lock = InstanceLock(path, fd)
        lock.update(pid=os.getpid(), started=time.time(), **record)
        return lock
    except BaseException:
        os.close(fd)
        raise


def _pid_record(path: Path) -> dict[str, Any] | None:
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InstanceError(f"cannot read the pid file {path} ({_why(exc)}): fix its permissions") from None
    try:
        record = json.loads(raw)
        if not (isinstance(record, dict) and isinstance(record.get("pid"), int)
                and isinstance(record.get("argv"), list)):
            raise ValueError
    except ValueError:
        raise InstanceError(f"the pid file {path} is damaged (not what Shangquan writes): stop any embedded "
                            f"server still using {path.parent.parent} by hand, delete the file and start "
                            f"again") from None
    return record


def stop_leftovers(var_dir: Path) -> list[str]:
    """Stop the embedded services a dead instance left running on this folder; returns what was stopped."""
    stopped = []
    for name in PID_FILES:
        path = var_dir / "run" / name
        record = _pid_record(path)
        if record is None:
            continue
        pid, argv = record["pid"], " ".join(str(a) for a in record["argv"])
        running = command_line(pid)
        if running is not None and running == (record.get("cmdline") or argv):
            _terminate(pid)
            stopped.append(f"{name.removesuffix('.pid')} (pid {pid})")
        path.unlink(missing_ok=True)  # dead, or a reused pid that is not ours: either way not ours any more
    return stopped


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not _exists(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while _exists(pid) and time.monotonic() < deadline + 5:
        time.sleep(0.05)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (ours to reap, or init's) still answers kill(0): ask what it runs
    return command_line(pid) is not None
