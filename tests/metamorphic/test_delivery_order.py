"""Metamorphic: the same events in another delivery order give the same store.

One simulated scenario is replayed through a fresh embedded runtime per delivery order
(tests/metamorphic/delivery.py), each into its own database, closed as the end of the
input; every store is read into the comparable sets of store_snapshot.py and compared
with the store the events in event-time order gave.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import structlog
from tests.metamorphic import delivery
from tests.metamorphic.store_snapshot import Snapshot, describe, diff, snapshot, tolerated

from clicktrail.config import load_registry
from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.runtime.replay import replay, source_id
from clicktrail.simulate import Options, simulate
from clicktrail.sinks.migrations import migrate
from clicktrail.sinks.store import Store

SEED = int(os.environ.get("CLICKTRAIL_METAMORPHIC_SEED", "7"))
EVENTS = 4_000
DAYS = 1.0
"""4,000 events over a day: every planted pattern shows (flooding, injection, forged and
orphan ids, replays, status updates, brand bidding), and a replay takes about 3 s."""
pytestmark = pytest.mark.slow

Variant = Callable[[list[bytes], list[bytes]], list[bytes]]
"""(the simulator's lines as written, the same in event-time order) -> a delivery."""
# The shuffle stays well inside the default 300 s conversion grace (and inside the
# simulator's own late lines, up to 4 min): a pipeline with bounded out-of-orderness must
# absorb it. The duplicates, partitions and topic order are not bounded in time at all.
VARIANTS: dict[str, Variant] = {
    "as_generated": lambda generated, ordered: generated,
    "bounded_shuffle": lambda generated, ordered: delivery.bounded_shuffle(
        ordered, seed=1, max_positions=25, max_seconds=120
    ),
    "duplicates": lambda generated, ordered: delivery.with_duplicates(ordered, seed=2, share=0.02),
    "conversions_first": lambda generated, ordered: delivery.conversions_first(ordered),
    "two_workers": lambda generated, ordered: delivery.two_workers(ordered, seed=3),
}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("metamorphic") / "sim"
    simulate(Options(out=out, events=EVENTS, seed=SEED, days=DAYS))
    return out


@pytest.fixture(scope="module")
def generated(scenario: Path) -> list[bytes]:
    """The simulator's lines in the order it wrote them (already a delivery order)."""
    return [line for line in (scenario / "events.jsonl").read_bytes().splitlines() if line]


@pytest.fixture(scope="module")
def in_time_order(generated: list[bytes]) -> list[bytes]:
    return delivery.time_order(generated)


class Replayer:
    """Replays lines like ``clicktrail replay`` replays a directory (the events, then the
    auction-insights export) into a database of its own, and reads the snapshot."""

    def __init__(self, scenario: Path, chdb_dsn: str, work: Path) -> None:
        self.scenario = scenario
        self.chdb_dsn = chdb_dsn
        self.work = work
        self.registry = load_registry(scenario / "registry.yaml")
        summary = json.loads((scenario / "scenario.json").read_text())
        last = datetime.fromisoformat(summary["last_event_ts"])
        self.now = last + timedelta(minutes=1)
        """A fixed clock after the last event: the intake's time bounds hold, whatever day
        the test runs."""

    def __call__(self, name: str, lines: list[bytes]) -> Snapshot:
        directory = self.work / name
        directory.mkdir()
        events = directory / "events.jsonl"
        events.write_bytes(b"".join(line + b"\n" for line in lines))
        insights = directory / "auction_insights.csv"
        shutil.copyfile(self.scenario / "auction_insights.csv", insights)
        store = Store(self.chdb_dsn, f"t_meta_{name}_{uuid.uuid4().hex[:8]}")
        migrate(store)
        # The log alert destination writes every alert: a failure's report would drown in them.
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
        try:
            runtime = EmbeddedRuntime(self.registry, store, clock=lambda: self.now)
            paths = [str(events), str(insights)]
            replay(runtime, paths)  # closes with end_of_input=True
            return snapshot(store, [source_id(path) for path in paths])
        finally:
            structlog.reset_defaults()
            store.command(f"DROP DATABASE IF EXISTS {store.database}")


@pytest.fixture(scope="module")
def replayer(scenario: Path, chdb_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Replayer:
    return Replayer(scenario, chdb_dsn, tmp_path_factory.mktemp("deliveries"))


@pytest.fixture(scope="module")
def expected(replayer: Replayer, in_time_order: list[bytes]) -> Snapshot:
    return replayer("time_order", in_time_order)


def assert_same(expected: Snapshot, actual: Snapshot) -> None:
    """Fails with the counts per table and the first rows of each difference only."""
    differences = diff(expected, actual)
    if differences:
        pytest.fail("the store differs from the time-order store:\n" + describe(differences), False)


def test_the_reference_has_something_to_compare(expected: Snapshot) -> None:
    """Every table the comparison rests on has rows (dead letters excepted: the simulator
    writes only valid events)."""
    sizes = {name: len(rows) for name, rows in expected.items()}
    assert all(sizes[name] > 0 for name in sizes if name != "dead_letters"), sizes
    touches = {values[1] for values in expected["attributed"].values()}
    assert touches == {"click", "view", "none"}, touches
    assert any(key[0] == "partner" for key in expected["verdicts"])


def test_the_same_order_twice_gives_the_same_store(
    replayer: Replayer, in_time_order: list[bytes], expected: Snapshot
) -> None:
    """The control: without it a difference below could be noise of the run itself."""
    assert_same(expected, replayer("time_order_again", in_time_order))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_delivery_order_does_not_change_the_store(
    variant: str,
    replayer: Replayer,
    generated: list[bytes],
    in_time_order: list[bytes],
    expected: Snapshot,
) -> None:
    """Identical but for what ``store_snapshot.TOLERATED`` allows, and why."""
    actual = replayer(variant, VARIANTS[variant](generated, in_time_order))
    differences = tolerated(diff(expected, actual))
    if differences:
        pytest.fail("the store differs from the time-order store:\n" + describe(differences), False)
