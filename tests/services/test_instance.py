"""One instance per data folder, children that die with the app, and bad input that gets one clear line.

Every case runs the real `python -m server` (or the real watchdog) and looks at real processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from server.services import embedded
from server.settings import ROOT
from tests.services.single_machine import SingleMachine, alive


def gone_soon(pids: list[int], within: float = 10) -> bool:
    """True once none of `pids` is alive; the bound is the issue's "a few seconds", generously."""
    deadline = time.monotonic() + within
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def snapshot(folder: Path) -> tuple[set[str], bytes]:
    """The files there and what the lock says (the running instance itself keeps writing its data and logs)."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}, (folder / "run" / "shangquan.lock").read_bytes()


def test_killed_app_takes_its_children_along_and_the_next_start_takes_over(tmp_path: Path) -> None:
    app = SingleMachine(tmp_path / "var").start()
    try:
        app.ready()
        first = app.lock()
        children = [app.child_pid("redis"), app.child_pid("nx-27017")]
        # a second start on the same folder touches nothing and says who runs
        before = snapshot(app.var_dir)
        second = SingleMachine(app.var_dir)
        line = one_clear_line(second.run())
        assert line == f"Shangquan is already running (pid {app.process.pid}) at {app.url}"  # type: ignore[union-attr]
        assert snapshot(app.var_dir) == before
        # a management command meanwhile uses the running instance's MongoDB
        made = app.run("accounts", "create-admin", "boss@example.com", stdin="a long enough password\n")
        assert made.returncode == 0 and "admin boss@example.com created" in made.stdout, made.stderr

        os.kill(app.process.pid, signal.SIGKILL)  # type: ignore[union-attr]
        app.process.wait(timeout=10)  # type: ignore[union-attr]
        assert gone_soon(children), [pid for pid in children if alive(pid)]

        again = SingleMachine(app.var_dir).start()
        try:
            again.ready()
            assert again.lock()["pid"] != first["pid"]
            signed_in = httpx.get(f"{again.url}/admin/login", timeout=10)
            assert signed_in.status_code == 200
            # the data folder is the same one: the admin made before the kill can sign in
            made_again = again.run("accounts", "create-admin", "boss@example.com", stdin="a long enough password\n")
            assert made_again.returncode == 1 and "not created" in made_again.stderr, made_again.stderr
            logs = sorted(p.name for p in (app.var_dir / "log").iterdir())
            assert logs == ["nx-27017.log", "redis.log"], "one log file per service, however many starts"
        finally:
            assert again.stop() == 0
    finally:
        app.stop(signal.SIGKILL)


def test_a_stale_lock_is_taken_over_and_only_our_leftovers_are_stopped(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    (var_dir / "run").mkdir(parents=True)
    # what an instance killed before its children could follow leaves: a lock nobody holds, a running Redis
    # with its pid file, and a pid file whose number now belongs to some other program
    leftover = embedded.redis_service(var_dir)
    leftover.start()
    stranger = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        (var_dir / "run" / "shangquan.lock").write_text(json.dumps({"pid": 999999, "url": "http://x"}) + "\n")
        (var_dir / "run" / "nx-27017.pid").write_text(json.dumps({"pid": stranger.pid,
                                                                  "argv": ["nx-27017", "--data-dir", "x"]}))
        app = SingleMachine(var_dir).start()
        try:
            app.ready()
            assert leftover.process is not None and leftover.process.wait(timeout=10) is not None
            assert stranger.poll() is None, "a process that is not ours is never stopped"
            assert app.lock()["pid"] == app.process.pid  # type: ignore[union-attr]
        finally:
            assert app.stop() == 0
    finally:
        stranger.kill()
        stranger.wait()
        leftover.stop()


@pytest.mark.parametrize("name", ["shangquan.lock", "redis.pid"])
def test_a_damaged_lock_or_pid_file_is_named_and_nothing_starts(tmp_path: Path, name: str) -> None:
    var_dir = tmp_path / "var"
    (var_dir / "run").mkdir(parents=True)
    damaged = var_dir / "run" / name
    damaged.write_bytes(b"\x00garbage{")
    line = one_clear_line(SingleMachine(var_dir).run())
    assert str(damaged) in line and "delete" in line, line
    assert not (var_dir / "mongo").exists(), "no empty database was started"


def test_a_data_folder_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    line = one_clear_line(SingleMachine(blocker / "var").run())
    assert str(blocker / "var") in line and "SHANGQUAN_VAR_DIR" in line, line


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_data_folder_is_named(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    var_dir.chmod(0o500)
    try:
        line = one_clear_line(SingleMachine(var_dir).run())
    finally:
        var_dir.chmod(0o700)
    assert str(var_dir) in line and "not writable" in line, line


def test_a_full_disk_is_named_before_anything_starts(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(small)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("a small file system needs mount (root): " + mounted.stderr.decode(errors="replace"))
    try:
        with contextlib.suppress(OSError):  # fill what is left
            with (small / "filler").open("wb") as out:
                while True:
                    out.write(b"\0" * 1024 * 1024)
        line = one_clear_line(SingleMachine(small / "var").run())
        assert "full" in line and str(small / "var") in line and "free some space" in line, line
        assert not (small / "var" / "mongo").exists()
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_the_watchdog_stops_what_it_watches_when_the_app_end_of_its_pipe_closes() -> None:
    """How the children die with the app where the kernel offers no parent-death signal (macOS)."""
    child = subprocess.Popen(["sleep", "120"], start_new_session=True)
    watchdog = subprocess.Popen([sys.executable, "-m", "server.services.watchdog"], cwd=ROOT,
                                stdin=subprocess.PIPE, start_new_session=True)
    try:
        assert watchdog.stdin is not None
        watchdog.stdin.write(f"{child.pid}\n".encode())
        watchdog.stdin.close()  # what the kernel does when the app dies
        assert watchdog.wait(timeout=20) == 0
        assert child.wait(timeout=5) == -signal.SIGTERM
    finally:
        child.kill()
        watchdog.kill()


def test_cap_log_keeps_one_previous_file_and_the_writer_carries_on(tmp_path: Path) -> None:
    log = tmp_path / "redis.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, b"x" * 2000)
        embedded.cap_log(log, cap=1000)
        os.write(fd, b"after\n")
    finally:
        os.close(fd)
    assert log.read_bytes() == b"after\n"
    assert (tmp_path / "redis.log.1").read_bytes() == b"x" * 2000


def children_of(parent: int) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
    return found


def test_production_mode_starts_and_supervises_nothing(tmp_path: Path, mongo_url: str, redis_url: str) -> None:
    app = SingleMachine(tmp_path / "var", MONGODB_DB="production_mode")
    app.env.update(MONGODB_URL=mongo_url, REDIS_URL=redis_url)
    app.start()
    try:
        app.ready()
        assert app.process is not None
        spawned = children_of(app.process.pid)
        assert not [c for c in spawned if "nx-27017" in c or "redis-server" in c or "watchdog" in c], spawned
        assert not (app.var_dir / "run").exists(), "no lock, no pid files: any number of web processes may run"
    finally:
        assert app.stop() == 0
