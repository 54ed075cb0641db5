"""Shared fixtures.

chDB allows one data directory per process, so every in-process test shares
one directory and gets a database of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from clicktrail.config import Registry, load_registry
from clicktrail.sinks.migrations import migrate
from clicktrail.sinks.store import Store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = ROOT / "deploy" / "clicktrail.example.yaml"


@pytest.fixture(scope="session")
def chdb_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture
def store(chdb_dsn: str) -> Iterator[Store]:
    """A migrated, empty database of its own in the session's embedded ClickHouse."""
    database = f"t_{uuid.uuid4().hex[:12]}"
    store = Store(chdb_dsn, database)
    migrate(store)
    yield store
    store.command(f"DROP DATABASE IF EXISTS {database}")


@pytest.fixture(scope="session")
def example_registry() -> Registry:
    return load_registry(EXAMPLE_CONFIG)


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Tests that run the CLI in-process configure structlog onto pytest's captured
    stream; reset it so no later test logs into a closed file."""
    yield
    structlog.reset_defaults()
