"""The first minutes on a terminal: `shangquan` with a calm console and a banner whose first-admin command runs
as printed; JSON lines wherever a machine reads them; every command and its --help as the README writes them,
and bad input answered with usage and status 2."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from server.services.embedded import free_port
from server.settings import ROOT

SCRIPT = str(Path(sys.executable).with_name("shangquan"))
FIXTURES = str(ROOT / "tests" / "fixtures" / "content")


class Terminal:
    """A process whose stdout and stderr are a pseudo-terminal, as when a person runs it."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=slave,
                                        stderr=slave, start_new_session=True)
        os.close(slave)
        self.text = ""

    def read_until(self, pattern: str, limit: float = 120) -> str:
        deadline = time.monotonic() + limit
        while not re.search(pattern, self.text):
            assert time.monotonic() < deadline, f"{pattern!r} never came:\n{self.text[-3000:]}"
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.text += os.read(self.master, 65536).decode(errors="replace")
                except OSError:  # the process closed the terminal
                    assert re.search(pattern, self.text), self.text[-3000:]
        return self.text

    def finish(self) -> str:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        while True:
            ready, _, _ = select.select([self.master], [], [], 0.5)
            if not ready and self.process.poll() is not None:
                break
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                self.text += chunk.decode(errors="replace")
        self.process.wait(timeout=30)
        os.close(self.master)
        return self.text

    def lines(self) -> list[str]:
        return [line.strip() for line in self.text.replace("\r", "\n").split("\n") if line.strip()]


def app_env(var_dir: Path, **extra: str) -> tuple[dict[str, str], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"MONGODB_URL", "REDIS_URL", "LOG_FORMAT", "LOG_LEVEL"}}
    env.update(PORT=str(port), HOST="127.0.0.1", SHANGQUAN_VAR_DIR=str(var_dir), SHANGQUAN_CONTENT_DIR=FIXTURES,
               CROWD_SIMULATOR="0", **extra)
    return env, port


def test_a_terminal_gets_a_calm_console_and_a_banner_whose_admin_command_runs_as_printed(tmp_path: Path) -> None:
    env, port = app_env(tmp_path / "var")
    term = Terminal([SCRIPT], env)
    try:
        term.read_until(r"create-admin you@example\.com")
        base = f"http://127.0.0.1:{port}"
        for path in ("/", "/readyz", "/admin/login"):
            assert httpx.get(base + path, timeout=10).status_code == 200
        banner = term.text[term.text.index("商圈 Shangquan is running"):]
        for name, path in (("shopper app", "/"), ("back office", "/admin"), ("API explorer", "/graphql")):
            assert re.search(rf"{name}\s+{re.escape(base + path)}\s", banner), banner
        command = re.search(r"create the first admin with\s+(.+ create-admin you@example\.com)", banner)
        assert command, banner
        made = subprocess.run(shlex.split(command.group(1)), cwd=ROOT, env=env, input="a long enough password\n",
                              capture_output=True, text=True, timeout=120)
        assert made.returncode == 0 and "admin you@example.com created" in made.stdout, made.stderr
    finally:
        term.finish()
    lines = term.lines()
    assert term.process.returncode == 0, lines[-20:]
    assert not [line for line in lines if line.startswith("{")], "no JSON on a person's terminal"
    assert any(re.search(r"loading the content: done in \d+\.\d s", line) for line in lines), lines
    assert not [line for line in lines if "/readyz" in line or "/admin/login" in line], "no request lines at INFO"
    assert not [line for line in lines if "Waiting for application startup" in line]


def test_a_terminal_with_log_format_json_and_the_procfile_worker_keep_json_lines(
        tmp_path: Path, mongo_url: str, redis_url: str) -> None:
    env, _ = app_env(tmp_path / "var", LOG_FORMAT="json")
    app = Terminal([SCRIPT], env)
    worker_env = {**os.environ, "MONGODB_URL": mongo_url, "REDIS_URL": redis_url, "MONGODB_DB": "console_worker",
                  "CROWD_SIMULATOR": "0"}
    worker_env.pop("LOG_FORMAT", None)
    worker = Terminal([sys.executable, "-m", "server.worker"], worker_env)  # the Procfile's worker line
    try:
        app.read_until(r"Shangquan is running")
        worker.read_until(r"worker \S+ ready")
    finally:
        app.finish()
        worker.finish()
    logged = [line for line in app.lines() if "Application startup complete" in line]
    assert logged and json.loads(logged[0])["logger"] == "uvicorn.error"
    ready = [line for line in worker.lines() if re.search(r"worker \S+ ready", line)]
    assert ready and json.loads(ready[0])["logger"] == "shangquan.worker"


def readme_commands() -> list[list[str]]:
    """Every `shangquan …` command line in the README's code blocks (the install line's too)."""
    found = []
    for line in (ROOT / "README.md").read_text().splitlines():
        if not line.startswith("    "):
            continue
        command = line.split("#", 1)[0].strip()
        for part in command.split("&&"):
            if not re.match(r"\s*(\S*/)?shangquan(\s|$)", part):
                continue
            words = shlex.split(part)
            if words and Path(words[0]).name == "shangquan":
                found.append(words[1:])
    return found


def test_every_command_the_readme_writes_parses_and_explains_itself() -> None:
    commands = readme_commands()
    assert [] in commands, "the README starts the app with a bare `shangquan`"
    assert {tuple(c[:2]) for c in commands} >= {("accounts", "create-admin"), ("content", "load"), ("schema",)}
    seen = set()
    for words in commands:
        # the command words, then --help: each prints its own arguments and exits 0
        path = [w for w in words if not w.startswith("-") and "@" not in w and not w.isdigit()][:2]
        if tuple(path) in seen:
            continue
        seen.add(tuple(path))
        shown = subprocess.run([SCRIPT, *path, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, (words, shown.stderr)
        assert shown.stdout.startswith(f"usage: shangquan {' '.join(path)}".rstrip()), shown.stdout
    helped = subprocess.run([SCRIPT, "accounts", "create-admin", "--help"], capture_output=True, text=True)
    assert "email" in helped.stdout
    helped = subprocess.run([SCRIPT, "crowd", "simulate", "--help"], capture_output=True, text=True)
    assert all(option in helped.stdout for option in ("--backfill-days", "--interval", "--once"))


@pytest.mark.parametrize("words", [["bogus"], ["accounts"], ["content", "unload"], ["crowd", "simulate", "--interval",
                                   "soon"], ["accounts", "create-admin"], ["--no-such-option"]])
def test_an_unknown_command_or_bad_argument_prints_usage_and_exits_2(words: list[str]) -> None:
    result = subprocess.run([SCRIPT, *words], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result
    assert result.stderr.startswith("usage: shangquan") and "error:" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
