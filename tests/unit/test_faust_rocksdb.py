"""The RocksDB table store of the Faust runtime: no garbage collection per table and
rebalance (it ran inside the callback during which no heartbeats are sent)."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from faust import stores
from faust.stores import rocksdb as faust_rocksdb
from faust.types import TP

from clicktrail.runtime import faust_rocksdb as ours


def bare_store() -> Any:
    store = ours.Store.__new__(ours.Store)
    store._dbs = {0: object(), 1: object()}
    store.logger = logging.getLogger("test")
    return store


def table(topic: str) -> Any:
    return SimpleNamespace(changelog_topic=SimpleNamespace(topics={topic}))


@pytest.fixture
def collections(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(ours.gc, "collect", lambda *a: calls.append(1) or 0)
    return calls


def test_rocksdb_urls_get_this_store() -> None:
    ours.use_for_rocksdb_urls()
    assert stores.by_url("rocksdb://") is ours.Store
    assert stores.by_url("memory://") is not ours.Store


def test_a_rebalance_drops_revoked_handles_without_collecting(collections: list[int]) -> None:
    store = bare_store()
    store.revoke_partitions(table("t-x-changelog"), set())
    assert set(store._dbs) == {0, 1}
    revoked = [TP("t-x-changelog", 1), TP("t-y-changelog", 0)]
    store.revoke_partitions(table("t-x-changelog"), set(revoked))
    assert set(store._dbs) == {0}
    assert collections == []


def test_stop_drops_every_handle_without_collecting(collections: list[int]) -> None:
    store = bare_store()
    asyncio.run(store.stop())
    assert store._dbs == {}
    assert collections == []


def test_a_locked_partition_is_opened_again_after_one_collection(
    monkeypatch: pytest.MonkeyPatch, collections: list[int]
) -> None:
    outcomes: list[Any] = [OSError("IO error: lock hold by current process"), "db"]

    def opened(self: Any, partition: int) -> Any:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(faust_rocksdb.Store, "_open_for_partition", opened)
    assert bare_store()._open_for_partition(0) == "db"
    assert collections == [1]


def test_other_open_errors_are_raised_without_collecting(
    monkeypatch: pytest.MonkeyPatch, collections: list[int]
) -> None:
    def broken(self: Any, partition: int) -> Any:
        raise OSError("IO error: No space left on device")

    monkeypatch.setattr(faust_rocksdb.Store, "_open_for_partition", broken)
    with pytest.raises(OSError, match="No space"):
        bare_store()._open_for_partition(0)
    assert collections == []
