"""The first pass of a replay: which event types a file holds."""

from __future__ import annotations

import gzip
from pathlib import Path

from clicktrail.runtime.replay import event_types


def test_the_types_a_file_holds(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl.gz"
    lines = [
        b'{"type": "conversion", "event_id": "v1"}',
        b'{"event_id": "c1", "type":"click"}',
        b"not json at all",
        b'{"type": "auction_insight"}',
    ]
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    assert event_types(str(path)) == {"conversion", "click"}
