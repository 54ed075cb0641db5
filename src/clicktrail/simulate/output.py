"""The files of one run, written into the output directory.

Events go to ``events.jsonl`` (or stdout, so a pipe into ``clicktrail replay -``
works) and, when sending, to the sender as well; the truth and the other
files always go to the directory.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import orjson

BUFFER = 1 << 20


class Output:
    def __init__(
        self, out: Path, *, stdout: bool, tee: Callable[[bytes], Any] | None = None
    ) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.out = out
        self._events: BinaryIO = (
            sys.stdout.buffer if stdout else (out / "events.jsonl").open("wb", buffering=BUFFER)
        )
        self._own_events = not stdout
        self._truth = (out / "truth.jsonl").open("wb", buffering=BUFFER)
        self.write_truth = self._truth.write
        if tee is None:
            self.write_event: Callable[[bytes], Any] = self._events.write
        else:
            write = self._events.write

            def both(line: bytes) -> None:
                write(line)
                tee(line)

            self.write_event = both
        if stdout:
            (out / "events.jsonl").unlink(missing_ok=True)  # never leave a stale one behind

    def text(self, name: str, content: str) -> None:
        (self.out / name).write_text(content, encoding="utf-8")

    def json(self, name: str, data: Any) -> None:
        options = orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
        (self.out / name).write_bytes(orjson.dumps(data, option=options))

    def close(self) -> None:
        self._truth.close()
        if self._own_events:
            self._events.close()
        else:
            self._events.flush()
