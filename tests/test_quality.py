"""Static checks run with the suite, so the README's one test command covers them too."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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


# What an AsyncDatabase offers besides its collections: reaching one of these is not a query.
DATABASE_ATTRIBUTES = {"name", "client", "command", "codec_options", "read_preference", "write_concern",
                       "read_concern", "with_options", "list_collection_names", "list_collections",
                       "drop_collection", "create_collection", "validate_collection", "watch", "aggregate",
                       "cursor_command", "dereference"}
# Modules outside repositories that may reach a collection, and why.
COLLECTION_CALLS_ALLOWED = {
    # the VAPID key pair in `meta`: the push engine's own record (generated once, read once per process),
    # no area's data
    "server/push/vapid.py",
}


def _is_database(node: ast.expr) -> bool:
    """`db` or `<anything>.db` (every database in server/ goes by that name: `db: AsyncDatabase[Doc]`)."""
    return (isinstance(node, ast.Name) and node.id in ("db", "_db")) or \
        (isinstance(node, ast.Attribute) and node.attr in ("db", "_db"))


def collection_uses(path: Path) -> Iterator[str]:
    """`db.<collection>` (`db.get_collection` too) and `db[<name>]` in one module, as "line: expression"."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and _is_database(node.value) and node.attr not in DATABASE_ATTRIBUTES:
            yield f"{node.lineno}: {ast.unparse(node)}"
        elif isinstance(node, ast.Subscript) and _is_database(node.value):
            yield f"{node.lineno}: {ast.unparse(node)}"


def test_queries_live_in_repositories() -> None:
    """Services, delivery and the push engine reach MongoDB through repositories (docs/architecture.md):
    a collection is named only in `repository.py` / `*_repository.py` modules, the adapters in
    server/services/ (clients, indexes) and the short, explained list above."""
    server = ROOT / "server"
    found = {}
    for path in sorted(server.rglob("*.py")):
        name = str(path.relative_to(ROOT))
        if path.stem == "repository" or path.stem.endswith("_repository") or name.startswith("server/services/") \
                or name in COLLECTION_CALLS_ALLOWED:
            continue
        uses = list(collection_uses(path))
        if uses:
            found[name] = uses
    assert found == {}
    # the scan finds a database by its name: one passed under another would slip past it
    others = sorted(f"{path.relative_to(ROOT)}: {node.arg}" for path in server.rglob("*.py")
                    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                    if isinstance(node, ast.arg) and node.annotation is not None
                    and "AsyncDatabase" in ast.unparse(node.annotation) and node.arg not in ("db", "_db"))
    assert others == []
    for name in COLLECTION_CALLS_ALLOWED:  # the list stays honest: each entry still needs its exception
        assert list(collection_uses(ROOT / name)), f"{name} no longer names a collection: take it off the list"


def test_the_message_catalog_repeats_no_key() -> None:
    """MESSAGES merges its parts with **: a key two parts both define silently keeps only the last text
    (ruff's F601 sees repeats inside one literal only)."""
    from collections import Counter

    from server.domain import messages

    parts = [messages.VALIDATION, messages.UI, messages.DASHBOARDS, messages.COUPONS]
    counts = Counter(key for part in parts for key in part)
    assert [key for key, n in counts.items() if n > 1] == []
