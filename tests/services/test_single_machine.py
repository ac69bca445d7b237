"""`python -m server` as a user runs it: embedded services, one URL, Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from server.services.embedded import free_port
from server.settings import ROOT
from tests.services.single_machine import alive


def children_of(parent: int) -> dict[int, str]:
    """Live child processes of `parent` with their command lines (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent and fields[0] != "Z":
            found[int(entry.name)] = cmdline
    return found


def test_single_machine_mode_serves_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    var_dir = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k not in {"MONGODB_URL", "REDIS_URL"}}
    env.update(PORT=str(port), HOST="127.0.0.1", SHANGQUAN_VAR_DIR=str(var_dir))
    proc = subprocess.Popen([sys.executable, "-m", "server"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output: list[str] = []
    try:
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if f"http://127.0.0.1:{port}" in line:
                break
        assert any(f"http://127.0.0.1:{port}" in line for line in output), "".join(output)
        children = children_of(proc.pid)
        assert any("nx-27017" in c for c in children.values()), children
        assert any("redis-server" in c for c in children.values()), children
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        assert httpx.get(base, timeout=10).status_code == 200
        graphql = httpx.post(f"{base}/graphql", json={"query": "{ districts { name } }"}, timeout=10).json()
        assert len(graphql["data"]["districts"]) >= 7
        assert (var_dir / "mongo").is_dir(), "embedded MongoDB keeps its data under var/"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.stdout:
            proc.stdout.close()
    for _ in range(50):
        if not any(alive(pid) for pid in children):
            break
        time.sleep(0.1)
    assert [pid for pid in children if alive(pid)] == []
