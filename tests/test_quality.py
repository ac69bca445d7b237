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


def test_imports_run_downward() -> None:
    """The layer contracts in pyproject.toml ([tool.importlinter]; docs/architecture.md explains them)."""
    result = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                             "lint_imports_command(['--no-cache'])"], cwd=ROOT, capture_output=True, text=True,
                            timeout=600, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr


def test_resolvers_read_the_typed_context() -> None:
    """Resolvers reach clients, hubs and the limiter through Context's attributes (server/api/context.py):
    only the view that builds the Context reads the application's state, and settings are read as typed
    attributes, never with getattr."""
    api = ROOT / "server" / "api"
    state = sorted(str(p.relative_to(ROOT)) for p in api.rglob("*.py")
                   if "app.state" in p.read_text(encoding="utf-8") and p.name not in ("view.py", "context.py"))
    assert state == []
    loose = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "server").rglob("*.py")
                   if "getattr(settings" in p.read_text(encoding="utf-8"))
    assert loose == []
