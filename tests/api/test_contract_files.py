"""graphql/ is the contract: the checked-in SDL matches the code, and the PWA's documents validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphql import parse, validate
from server.api.schema import build_schema, schema_sdl
from server.settings import ROOT, Settings

OPERATIONS = sorted((ROOT / "graphql" / "operations").glob("*.graphql"))


def test_checked_in_schema_matches_the_code() -> None:
    checked_in = (ROOT / "graphql" / "schema.graphql").read_text(encoding="utf-8")
    assert checked_in == schema_sdl(), "run: python -m server schema > graphql/schema.graphql"


def test_graphql_folder_holds_no_python() -> None:
    assert not list((ROOT / "graphql").rglob("*.py")), "a module in graphql/ would shadow graphql-core"


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda p: p.name)
def test_operation_documents_validate_against_the_schema(path: Path) -> None:
    schema = build_schema(Settings())._schema
    errors = validate(schema, parse(path.read_text(encoding="utf-8")))
    assert not errors, errors


def test_there_are_operation_documents() -> None:
    assert len(OPERATIONS) >= 5
