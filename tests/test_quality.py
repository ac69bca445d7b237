"""Static checks run with the suite, so the README's one test command covers them too."""

from __future__ import annotations

import subprocess
import sys

from server.settings import ROOT


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)


def test_ruff_is_clean() -> None:
    result = run("ruff", "check", "server", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_server() -> None:
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
