"""``clicktrail run`` killed mid-stream loses nothing it acknowledged and counts nothing twice.

A simulated scenario is posted in batches by a client that resends every batch it got no
answer for. The service is SIGKILLed twice while the batches stream in (once soon after a
state snapshot, once long after one) and started again on the same data directory; the
store it ends with must equal, table by table (raw and derived), the store of a clean run
of the same batches. Read like the metamorphic tests read a store
(tests/metamorphic/store_snapshot.py): what a resend changes legitimately (the message a
row came from, write times) is left out; nothing else is.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from tests.faults.service import Client, Service
from tests.metamorphic.store_snapshot import describe, diff

from clicktrail.simulate import Options, simulate

pytestmark = pytest.mark.slow
EVENTS = 20_000
SEED = 5
BATCH = 400


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("faults") / "sim"
    simulate(Options(out=out, events=EVENTS, seed=SEED, days=3))
    return out


@pytest.fixture(scope="module")
def batches(world: Path) -> list[bytes]:
    lines = [line for line in (world / "events.jsonl").read_bytes().splitlines() if line]
    return [b"\n".join(lines[n : n + BATCH]) + b"\n" for n in range(0, len(lines), BATCH)]


def test_a_killed_service_resumes_from_its_log_and_state(
    world: Path, batches: list[bytes], tmp_path: Path
) -> None:
    registry = world / "registry.yaml"
    assert len(batches) >= 40
    clean = Service(tmp_path / "clean", registry).start()
    try:
        assert Client(batches).send(clean) == len(batches)
    finally:
        clean.stop()

    faulted = Service(tmp_path / "faulted", registry).start()
    client = Client(batches)
    first, second = len(batches) // 3, 2 * len(batches) // 3
    client.send(faulted, first)
    faulted.wait_for_snapshot(first * BATCH)  # the state holds the first third
    kill_while_sending(faulted, client, first + 3, first + 8)
    kill_while_sending(faulted, client, second, second + 5)  # long after the last snapshot
    client.send(faulted)
    assert client.owed == 0
    faulted.stop()
    replays = [
        json.loads(line)
        for line in faulted.log.read_text().splitlines()
        if '"state.log_replay"' in line
    ]
    assert len(replays) == 3, replays  # the first start and two restarts
    restored, replayed = replays[1]["after"], replays[1]["records"]
    assert restored >= first * BATCH and replayed > 0, replays  # state and log both used
    assert replays[2]["records"] > 0, replays

    expected, actual = clean.snapshot(), faulted.snapshot()
    sizes = {name: len(rows) for name, rows in expected.items()}
    summary = json.loads((world / "scenario.json").read_text())
    stored = sum(rows for rows, _ in expected["events"].values())
    assert stored == sum(summary["events"].values()), expected["events"]
    assert sizes["attributed"] > 0 and sizes["verdicts"] > 0, sizes
    differences = diff(expected, actual)
    assert not differences, "the killed service's store differs:\n" + describe(differences)


def kill_while_sending(service: Service, client: Client, kill_at: int, until: int) -> None:
    """SIGKILL the service once ``kill_at`` batches are acknowledged, with the client still
    sending (up to ``until``), then start it again on the same directories."""
    sending = threading.Thread(target=client.send, args=(service, until))
    sending.start()
    while len(client.acknowledged) < kill_at and sending.is_alive():
        time.sleep(0.002)
    service.kill()
    sending.join()
    assert client.owed > 0
    service.start()
