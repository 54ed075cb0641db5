"""Feed JSONL files through the embedded runtime, in file order, with progress."""

from __future__ import annotations

import gzip
import hashlib
import sys
import time
import uuid
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


def source_id(path: str) -> str:
    """Stable for an unchanged file (a re-run after a crash writes nothing twice),
    different for another file of the same name; stdin is new every time."""
    if path == "-":
        return f"replay:stdin:{uuid.uuid4().hex[:12]}"
    stat = Path(path).stat()
    identity = f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return f"replay:{Path(path).name}:{hashlib.sha1(identity.encode()).hexdigest()[:12]}"


def replay(
    runtime: EmbeddedRuntime,
    paths: list[str],
    progress: Progress | None = None,
    progress_every: float = 2.0,
) -> IntakeStats:
    started = last = time.monotonic()
    for path in paths:
        name = "stdin" if path == "-" else Path(path).name
        runtime.bus.begin_source(source_id(path))
        for number, line in read_lines(path):
            runtime.submit_raw(line, f"replay:{name}:{number}")
            if runtime.stats.read % PROCESS_EVERY == 0:
                runtime.process()
                now = time.monotonic()
                if progress and now - last >= progress_every:
                    progress(runtime.stats, now - started)
                    last = now
    runtime.close(end_of_input=True)
    return runtime.stats
