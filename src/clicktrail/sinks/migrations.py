"""Versioned, idempotent DDL: ``schemas/clickhouse/NNN_name.sql`` applied in order.

On a cluster of servers, :mod:`clicktrail.sinks.cluster` lays the same files out as
replicated tables behind Distributed ones (``clicktrail migrate --cluster NAME``).

Each file runs once per database; what ran is recorded in ``schema_migrations``
with a checksum, so a re-run is a no-op and an edited, already-applied file is
reported instead of silently diverging.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from clicktrail.sinks.store import Store, StoreError

DDL_DIR = Path(__file__).with_name("ddl")
_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
SCHEMA_MIGRATIONS_COLUMNS = (
    "(version UInt32, name String, checksum String, "
    "applied_at DateTime64(3, 'UTC') DEFAULT now64(3))"
)
"""The columns of ``schema_migrations``, where each applied migration is recorded."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def statements(self, database: str) -> list[str]:
        body = "\n".join(
            line for line in self.sql.splitlines() if not line.lstrip().startswith("--")
        )
        statements = re.split(r";\s*$", body, flags=re.MULTILINE)  # a statement ends a line
        return [s.strip().replace("{db}", database) for s in statements if s.strip()]


@dataclass(frozen=True)
class MigrationResult:
    applied: list[str]
    skipped: list[str]
    changed: list[str]


def discover(directory: Path = DDL_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if match is None:
            raise StoreError(f"migration file {path.name} must be named NNN_name.sql")
        migrations.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise StoreError(f"duplicate migration versions in {directory}")
    return migrations


def migrate(store: Store, directory: Path = DDL_DIR) -> MigrationResult:
    db = store.database
    store.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    store.command(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations {SCHEMA_MIGRATIONS_COLUMNS} "
        "ENGINE = MergeTree ORDER BY version"
    )
    done = {
        int(version): checksum
        for version, checksum in store.rows(f"SELECT version, checksum FROM {db}.schema_migrations")
    }
    applied, skipped, changed = [], [], []
    for migration in discover(directory):
        label = f"{migration.version:03d}_{migration.name}"
        if migration.version in done:
            skipped.append(label)
            if done[migration.version] != migration.checksum:
                changed.append(label)
            continue
        for statement in migration.statements(db):
            store.command(statement)
        store.insert(
            "schema_migrations",
            [(migration.version, migration.name, migration.checksum)],
            ["version", "name", "checksum"],
        )
        applied.append(label)
    return MigrationResult(applied, skipped, changed)
