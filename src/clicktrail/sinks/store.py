"""One way to reach ClickHouse, embedded (chDB) or a server, through clickhouse-connect.

``chdb://path`` runs the ClickHouse engine inside this process with its data in
``path``; ``http(s)://host:8123`` talks to a server. Both speak the same SQL and
the same client API, so everything above this module is target-agnostic.

Every statement holds the store's lock: ``clicktrail run`` writes from its
processing thread while ``/readyz`` and ``/v1/query`` read from worker threads,
and chDB sessions sharing one engine are not known to be safe to use at once.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
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
            f"unsupported store {dsn!r}: use chdb://DIR (embedded) or http://HOST:8123 (server)"
        )
    return dsn


def chdb_path(dsn: str) -> Path | None:
    """The data directory of an embedded store, ``None`` for a server."""
    resolved = resolve_dsn(dsn)
    return Path(resolved.removeprefix("chdb://")) if resolved.startswith("chdb://") else None


_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def _engine_lock(dsn: str) -> threading.RLock:
    """One lock per target: every Store on the same chDB directory shares one engine."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(dsn, threading.RLock())


class _Serialized:
    """A client whose every call holds ``lock``: one statement at a time per store."""

    def __init__(self, client: Client, lock: threading.RLock) -> None:
        self._client = client
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute
        lock = self._lock

        def serialized(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return attribute(*args, **kwargs)

        return serialized


@dataclass
class Store:
    """A connected ClickHouse target and the database clicktrail's tables live in."""

    dsn: str
    database: str = DEFAULT_DATABASE
    client: Client = field(init=False, repr=False)
    _reader: Client | None = field(init=False, repr=False, default=None)
    lock: threading.RLock = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _DATABASE_NAME.match(self.database):
            raise StoreError(f"invalid database name {self.database!r}")
        self.dsn = resolve_dsn(self.dsn)
        self.lock = _engine_lock(self.dsn)
        path = chdb_path(self.dsn)
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)
        self.client = self._connect()

    def _connect(self, **settings: Any) -> Client:
        try:
            with self.lock:  # a new session on a shared engine: not beside a statement
                client = clickhouse_connect.get_client(dsn=self.dsn, settings=settings or None)
        except Exception as error:  # the driver raises many kinds; callers need one
            raise StoreError(f"cannot open store {self.dsn}: {_first_line(error)}") from None
        return cast(Client, _Serialized(client, self.lock))

    @property
    def reader(self) -> Client:
        """A separate read-only session: settings stick to a chDB session, so the
        writer's session must never see ``readonly=1``."""
        with self.lock:
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
