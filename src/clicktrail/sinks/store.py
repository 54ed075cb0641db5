"""One way to reach ClickHouse, embedded (chDB) or a server, through clickhouse-connect.

``chdb://path`` runs the ClickHouse engine inside this process with its data in
``path``; ``http(s)://host:8123`` talks to a server. Both speak the same SQL and
the same client API, so everything above this module is target-agnostic.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

DEFAULT_DSN = "chdb://./var/clicktrail"
DEFAULT_DATABASE = "clicktrail"
_DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
QUERY_OUTPUT_FORMATS = {
    "table": "TSVWithNames",
    "tsv": "TSVWithNames",
    "csv": "CSVWithNames",
    "json": "JSONEachRow",
}


class StoreError(Exception):
    """ClickHouse could not be reached or refused a statement; the message says which."""


def resolve_dsn(dsn: str) -> str:
    """Normalise a DSN; ``chdb://relative/dir`` becomes ``chdb:///absolute/dir``."""
    if dsn.startswith("chdb://"):
        raw = dsn.removeprefix("chdb://")
        if not raw:
            raise StoreError("chdb DSN needs a directory, e.g. chdb://./var/clicktrail")
        return "chdb://" + str(Path(raw).expanduser().resolve())
    scheme = urlsplit(dsn).scheme
    if scheme not in ("http", "https", "clickhouse", "clickhouses"):
        raise StoreError(
            f"unsupported store {redact(dsn)!r}: use chdb://DIR (embedded) or "
            "http://HOST:8123 (server)"
        )
    return dsn


def redact(dsn: str) -> str:
    """The DSN with its password masked: it is printed in banners, logs and errors, and
    ``http://user:password@host`` is how a deployment passes the ClickHouse password."""
    try:
        parts = urlsplit(dsn)
        password = parts.password
    except ValueError:
        return dsn
    if not password:
        return dsn
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


def chdb_path(dsn: str) -> Path | None:
    """The data directory of an embedded store, ``None`` for a server."""
    resolved = resolve_dsn(dsn)
    return Path(resolved.removeprefix("chdb://")) if resolved.startswith("chdb://") else None


@dataclass
class Store:
    """A connected ClickHouse target and the database clicktrail's tables live in."""

    dsn: str
    """After construction, the DSN without its password (safe to print)."""
    database: str = DEFAULT_DATABASE
    client: Client = field(init=False, repr=False)
    _reader: Client | None = field(init=False, repr=False, default=None)
    _connect_dsn: str = field(init=False, repr=False, default="")

    def __post_init__(self) -> None:
        if not _DATABASE_NAME.match(self.database):
            raise StoreError(f"invalid database name {self.database!r}")
        self._connect_dsn = resolve_dsn(self.dsn)
        self.dsn = redact(self._connect_dsn)
        path = chdb_path(self.dsn)
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)
        self.client = self._connect()

    def _connect(self, **settings: Any) -> Client:
        try:
            return clickhouse_connect.get_client(dsn=self._connect_dsn, settings=settings or None)
        except Exception as error:  # the driver raises many kinds; callers need one
            raise StoreError(f"cannot open store {self.dsn}: {_first_line(error)}") from None

    @property
    def reader(self) -> Client:
        """A separate read-only session: settings stick to a chDB session, so the
        writer's session must never see ``readonly=1``."""
        if self._reader is None:
            self._reader = self._connect(readonly=1)
        return self._reader

    @property
    def embedded(self) -> bool:
        return self.dsn.startswith("chdb://")

    def command(self, sql: str, settings: dict[str, Any] | None = None) -> Any:
        try:
            return self.client.command(sql, settings=settings)
        except ClickHouseError as error:
            raise StoreError(_first_line(error)) from None

    def insert(
        self,
        table: str,
        rows: Sequence[tuple[Any, ...]],
        columns: Sequence[str],
        dedup_token: str | None = None,
    ) -> None:
        settings = {"insert_deduplication_token": dedup_token} if dedup_token else None
        try:
            self.client.insert(
                f"{self.database}.{table}", rows, column_names=list(columns), settings=settings
            )
        except ClickHouseError as error:
            raise StoreError(f"insert into {table} failed: {_first_line(error)}") from None

    def rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            return [tuple(r) for r in self.client.query(sql, parameters=parameters).result_rows]
        except ClickHouseError as error:
            raise StoreError(_first_line(error)) from None

    def read_only(self, sql: str, output: str = "table") -> bytes:
        """Run analyst SQL with ``readonly=1``: reads only, whatever the statement says."""
        fmt = QUERY_OUTPUT_FORMATS.get(output)
        if fmt is None:
            choices = ", ".join(QUERY_OUTPUT_FORMATS)
            raise StoreError(f"unknown output format {output!r}; use one of {choices}")
        try:
            return bytes(self.reader.raw_query(sql, settings={"readonly": 1}, fmt=fmt))
        except ClickHouseError as error:
            raise StoreError(_first_line(error)) from None

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        self.client.close()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:500]
    return type(error).__name__
