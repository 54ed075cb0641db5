"""One way to reach ClickHouse, embedded (chDB) or a server, through clickhouse-connect.

``chdb://path`` runs the ClickHouse engine inside this process with its data in
``path``; ``http(s)://host:8123`` talks to a server. Both speak the same SQL and
the same client API, so everything above this module is target-agnostic.

Every statement holds the store's lock: ``clicktrail run`` writes from its
processing thread while ``/readyz`` and ``/v1/query`` read from worker threads,
and chDB sessions sharing one engine are not known to be safe to use at once.
"""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from clicktrail.sinks import readonly_sql

DEFAULT_DSN = "chdb://./var/clicktrail"
DEFAULT_DATABASE = "clicktrail"
_DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
QUERY_OUTPUT_FORMATS = {
    "table": "TSVWithNames",
    "tsv": "TSVWithNames",
    "csv": "CSVWithNames",
    "json": "JSONEachRow",
}

LIMIT_ERRORS = {
    "158": "too many rows or bytes to read",
    "159": "the time limit was exceeded",
    "160": "the query would run too slowly",
    "307": "too many bytes to read",
    "396": "the result is too large",
}
"""ClickHouse error codes of a limit that stopped a query (TOO_MANY_ROWS, TIMEOUT_EXCEEDED ...)."""
CANCEL_WAIT_SECONDS = 5.0
_ERROR_CODE = re.compile(r"Code: (\d+)")


class StoreError(Exception):
    """ClickHouse could not be reached or refused a statement; the message says which."""


class QueryRefused(StoreError):
    """Analyst SQL refused before or while it ran: ``reason`` is machine-readable
    (a :mod:`~clicktrail.sinks.readonly_sql` reason, or ``query_limit``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class QueryLimits:
    """What one analyst query may cost; set on the read-only session, before ``readonly``
    forbids changing them. Generous for analysts over clicktrail's tables, bounded for
    anything else: ``numbers(1e12)`` is refused before it reads a row."""

    max_execution_time: float = 30
    max_result_rows: int = 1_000_000
    max_result_bytes: int = 256 << 20
    result_overflow_mode: str = "throw"
    max_rows_to_read: int = 10_000_000_000
    max_bytes_to_read: int = 1 << 40


def check_database_name(database: str) -> str:
    if not _DATABASE_NAME.match(database):
        raise StoreError(f"invalid database name {database!r}")
    return database


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

    @property
    def unlocked(self) -> Client:
        """The client itself, for the one call that must not wait: cancelling a query."""
        return self._client

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
    """After construction, the DSN without its password (safe to print)."""
    database: str = DEFAULT_DATABASE
    limits: QueryLimits = field(default_factory=QueryLimits)
    client: Client = field(init=False, repr=False)
    _reader: Client | None = field(init=False, repr=False, default=None)
    _connect_dsn: str = field(init=False, repr=False, default="")
    _reading: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)
    _mark: str = field(init=False, repr=False, default_factory=lambda: uuid.uuid4().hex)
    """Tags this store's analyst queries in ``system.processes``, so close() can stop them."""
    lock: threading.RLock = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_database_name(self.database)
        self._connect_dsn = resolve_dsn(self.dsn)
        self.dsn = redact(self._connect_dsn)
        self.lock = _engine_lock(self._connect_dsn)
        path = chdb_path(self.dsn)
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)
        self.client = self._connect()

    def _connect(self, **settings: Any) -> Client:
        try:
            with self.lock:  # a new session on a shared engine: not beside a statement
                client = clickhouse_connect.get_client(
                    dsn=self._connect_dsn, settings=settings or None
                )
        except Exception as error:  # the driver raises many kinds; callers need one
            raise StoreError(f"cannot open store {self.dsn}: {_first_line(error)}") from None
        return cast(Client, _Serialized(client, self.lock))

    @property
    def reader(self) -> Client:
        """A separate read-only session: settings stick to a chDB session, so the
        writer's session must never see ``readonly=1``. The limits are set first:
        ``readonly=1`` then forbids any statement from changing them."""
        with self.lock:
            if self._reader is None:
                self._reader = self._connect(**asdict(self.limits), readonly=1)
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
        settings = (
            {
                "insert_deduplication_token": dedup_token,
                # the views' blocks too, each deduplicated in its target (migration 012)
                "deduplicate_blocks_in_dependent_materialized_views": 1,
            }
            if dedup_token
            else None
        )
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

    def report(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of one of clicktrail's own report queries (the dashboard), on the read-only
        session under :class:`QueryLimits`. Values come in ``parameters`` (``{name:Type}``
        placeholders, bound by the engine), never formatted into ``sql``."""
        with self._reading:
            try:
                result = self.reader.query(sql, parameters=parameters)
                return [tuple(r) for r in result.result_rows]
            except ClickHouseError as error:
                if self._reader is not None:  # as in read_only: a failed session is dropped
                    self._reader.close()
                    self._reader = None
                raise _refusal(error) from None

    def read_only(self, sql: str, output: str = "table") -> bytes:
        """Run one analyst SELECT under :class:`QueryLimits` and ``readonly=1``.

        The statement passes :func:`readonly_sql.check`, is re-formatted by ClickHouse's
        parser and its ``EXPLAIN AST`` judged by :func:`readonly_sql.check_clickhouse_ast`;
        the re-formatted text is what runs. Refusals raise :class:`QueryRefused`.
        """
        fmt = QUERY_OUTPUT_FORMATS.get(output)
        if fmt is None:
            choices = ", ".join(QUERY_OUTPUT_FORMATS)
            raise QueryRefused(
                "unknown_format", f"unknown output format {output!r}; use one of {choices}"
            )
        try:
            statement = readonly_sql.check(sql)
        except readonly_sql.RefusedSql as refused:
            raise QueryRefused(refused.reason, refused.message) from None
        with self._reading:
            try:
                canonical = self._clickhouse_check(statement)
                tagged = f"/* clicktrail-analyst-{self._mark} */ {canonical}"
                return bytes(self.reader.raw_query(tagged, fmt=fmt))
            except ClickHouseError as error:
                # chDB hands what a failed query had written (a header, part of a block)
                # to the session's next answer: a failed session is not used again
                if self._reader is not None:
                    self._reader.close()
                    self._reader = None
                raise _refusal(error) from None

    def _clickhouse_check(self, statement: str) -> str:
        """ClickHouse's own parse of ``statement``: its single-statement text, once the
        AST of that text passed the same rules."""
        canonical = bytes(
            self.reader.raw_query(
                "SELECT formatQuerySingleLine({sql:String})",
                parameters={"sql": statement},
                fmt="TSVRaw",
            )
        ).decode("utf-8")
        canonical = canonical.removesuffix("\n")
        tree = bytes(self.reader.raw_query(f"EXPLAIN AST {canonical}", fmt="TSVRaw"))
        # the driver appends its FORMAT to what it sends: drop that last line of the tree
        lines = tree.decode("utf-8", "replace").rstrip("\n").splitlines()
        if lines and lines[-1] == " Identifier TSVRaw":
            lines.pop()
        try:
            readonly_sql.check_clickhouse_ast("\n".join(lines))
        except readonly_sql.RefusedSql as refused:
            raise QueryRefused(refused.reason, refused.message) from None
        return canonical

    def close(self) -> None:
        """Close both sessions; an analyst query still running is cancelled first, since
        closing under it waits for it (or, at exit, crashes the engine beneath it)."""
        if self._reader is not None:
            if not self._reading.acquire(blocking=False):
                self.cancel_analyst_queries()
                if not self._reading.acquire(timeout=CANCEL_WAIT_SECONDS):
                    self.client.close()
                    return
            try:
                if self._reader is not None:
                    self._reader.close()
            finally:
                self._reading.release()
        self.client.close()

    def cancel_analyst_queries(self) -> bytes:
        """Stop this store's running analyst queries (from the writer's session, which
        ``readonly`` does not bind); each then fails in its own thread. Returns ``b""``."""
        # outside the store's lock, which the query being stopped holds
        writer = cast(_Serialized, self.client).unlocked
        with contextlib.suppress(ClickHouseError):  # if not, the time limit still ends it
            writer.command(
                "KILL QUERY WHERE query LIKE {mark:String} AND query_id != queryID() SYNC",
                parameters={"mark": f"%clicktrail-analyst-{self._mark}%"},
            )
        return b""


def _refusal(error: ClickHouseError) -> StoreError:
    """A limit that stopped a query is the caller's ``query_limit``; anything else is the
    engine's own message (a syntax error, an unknown table)."""
    if "Multi-statements are not allowed" in str(error):
        return QueryRefused("multiple_statements", "send one statement")
    found = _ERROR_CODE.search(str(error))
    if found and found.group(1) in LIMIT_ERRORS:
        return QueryRefused("query_limit", f"{LIMIT_ERRORS[found.group(1)]}: {_first_line(error)}")
    return StoreError(_first_line(error))


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:500]
    return type(error).__name__
