"""Feed JSONL files through the embedded runtime, in file order, with progress."""

from __future__ import annotations

import gzip
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.runtime.gate import IntakeStats

PROCESS_EVERY = 5_000
Progress = Callable[[IntakeStats, float], None]


def _open(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    if path.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return Path(path).open("rb")


def read_lines(path: str) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines with their 1-based numbers."""
    stream = _open(path)
    try:
        for number, line in enumerate(stream, start=1):
            stripped = line.strip()
            if stripped:
                yield number, stripped
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def replay(
    runtime: EmbeddedRuntime,
    paths: list[str],
    progress: Progress | None = None,
    progress_every: float = 2.0,
) -> IntakeStats:
    started = last = time.monotonic()
    for path in paths:
        name = "stdin" if path == "-" else Path(path).name
        for number, line in read_lines(path):
            runtime.submit_raw(line, f"replay:{name}:{number}")
            if runtime.stats.read % PROCESS_EVERY == 0:
                runtime.process()
                now = time.monotonic()
                if progress and now - last >= progress_every:
                    progress(runtime.stats, now - started)
                    last = now
    runtime.close()
    return runtime.stats
