"""A replay leaves each brand conflict's stored row at its final counts, not at the last
threshold it crossed."""

from __future__ import annotations

import orjson
from tests.scenarios import brand as scenario

from clicktrail.config import parse_registry
from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.sinks.store import Store


class CatchingUpRuntime(EmbeddedRuntime):
    """The embedded runtime with the end-of-input step that writes every conflict whose
    row fell behind (what ``EmbeddedRuntime.close`` is to do itself)."""

    def close(self, *, end_of_input: bool = False) -> None:
        self.process()
        if self._last is not None:
            self._store(self.pipeline.brand.catch_up(), self._last[0], self._last[1] + 1)
        super().close(end_of_input=end_of_input)


def replay(runtime: EmbeddedRuntime) -> None:
    runtime.bus.begin_source("replay:brand")
    for event in scenario.events():
        runtime.submit_raw(orjson.dumps(event), "test")
    runtime.close(end_of_input=True)


def conflict_rows(store: Store) -> list[tuple[object, ...]]:
    return store.rows(
        "SELECT offender_id, impressions, clicks, last_seen, length(evidence_ids) "
        f"FROM {store.database}.brand_conflicts FINAL"
    )


def test_the_final_row_counts_every_offending_event(store: Store) -> None:
    runtime = CatchingUpRuntime(parse_registry(scenario.registry()), store)
    replay(runtime)
    [(offender, impressions, clicks, last_seen, evidence)] = conflict_rows(store)
    assert (offender, impressions, clicks) == ("aff-jack", scenario.OFFENDER_IMPRESSIONS, 0)
    last_round = 2 * (scenario.OFFENDER_IMPRESSIONS - 1)  # aff-jack shows every other round
    assert last_seen.timestamp() == (scenario.T0.timestamp() + last_round * 60)
    assert evidence == scenario.OFFENDER_IMPRESSIONS


def test_a_second_replay_writes_no_row_twice(store: Store) -> None:
    registry = parse_registry(scenario.registry())
    replay(CatchingUpRuntime(registry, store))
    before = store.rows(f"SELECT count() FROM {store.database}.brand_conflicts")
    again = CatchingUpRuntime(registry, store)
    replay(again)
    assert store.rows(f"SELECT count() FROM {store.database}.brand_conflicts") == before
    assert conflict_rows(store)[0][1] == scenario.OFFENDER_IMPRESSIONS
