"""Feed JSONL event files and auction-insights exports through the embedded runtime, in
order, with progress. A simulator output directory stands for its events followed by its
export (a daily report comes after the traffic it describes), and its ``registry.yaml`` is
the world they were made in: the registry to replay them with when none is named.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from clicktrail.config import Registry
from clicktrail.contracts import AuctionInsight
from clicktrail.processors.brand import AuctionInsightsError, parse_auction_insights
from clicktrail.runtime.checkpoints import ModelCheckpoint
from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.runtime.gate import IntakeStats
from clicktrail.sinks.alerts import AlertService
from clicktrail.sinks.store import Store

PROCESS_EVERY = 5_000
Progress = Callable[[IntakeStats, float], None]
SIMULATION_FILES = ("events.jsonl", "auction_insights.csv")
SIMULATION_REGISTRY = "registry.yaml"
INSIGHTS_SUFFIXES = (".csv", ".csv.gz")


class ReplayInputError(ValueError):
    """An input that cannot be replayed; the message names the file."""


def expand(paths: list[str]) -> list[str]:
    """Directories replaced by the simulator files they hold, in replay order."""
    out: list[str] = []
    for path in paths:
        directory = Path(path)
        if path == "-" or not directory.is_dir():
            out.append(path)
            continue
        found = [str(directory / name) for name in SIMULATION_FILES if (directory / name).is_file()]
        if not found:
            raise ReplayInputError(f"{path} is a directory without {' or '.join(SIMULATION_FILES)}")
        out += found
    return out


def registry_of(paths: list[str]) -> str | None:
    """The registry the simulator directories among ``paths`` were made with (None: no
    directory holds one). Directories made in different worlds have no one registry."""
    found = [
        Path(path) / SIMULATION_REGISTRY
        for path in paths
        if path != "-" and (Path(path) / SIMULATION_REGISTRY).is_file()
    ]
    if len({file.read_bytes() for file in found}) > 1:
        names = ", ".join(str(file) for file in found)
        raise ReplayInputError(f"the directories hold different registries ({names}): name one")
    return str(found[0]) if found else None


def is_insights(path: str) -> bool:
    return path.endswith(INSIGHTS_SUFFIXES)


def read_insights(path: str) -> list[AuctionInsight]:
    """A whole export, parsed before anything is replayed: a malformed one stops the run
    with its row and column instead of leaving half of it behind."""
    try:
        with _open(path) as stream, io.TextIOWrapper(stream, "utf-8-sig", newline="") as text:
            return parse_auction_insights(text)
    except AuctionInsightsError as error:
        raise ReplayInputError(f"{path}: {error}") from None
    except UnicodeDecodeError:
        raise ReplayInputError(f"{path}: not UTF-8 text") from None
    except (OSError, EOFError) as error:  # unreadable, or a broken .gz
        raise ReplayInputError(f"{path}: cannot read it: {error}") from None


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


_TYPE = re.compile(rb'"type"\s*:\s*"(impression|click|conversion)"')


def event_types(path: str) -> set[str]:
    """The event types a file holds (a first pass over it, by pattern: a line that is no
    event is found out on the second): each is an input of its own, so a file that lists
    its conversions before its clicks is read as two topics would be."""
    found: set[str] = set()
    for _, line in read_lines(path):
        match = _TYPE.search(line)
        if match:
            found.add(match.group(1).decode())
    return found


def source_id(path: str) -> str:
    """Stable for an unchanged file (a re-run after a crash writes nothing twice),
    different for another file of the same name; stdin is new every time."""
    if path == "-":
        return f"replay:stdin:{uuid.uuid4().hex[:12]}"
    stat = Path(path).stat()
    identity = f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return f"replay:{Path(path).name}:{hashlib.sha1(identity.encode()).hexdigest()[:12]}"


def replay_runtime(
    registry: Registry, store: Store, checkpoint: ModelCheckpoint | None = None
) -> EmbeddedRuntime:
    """The embedded runtime a replay runs on: its alerts go to their destinations and the
    ``alerts`` table as always, but a ``log`` destination writes them at debug level, so
    a backfill's alerts do not bury its progress on stderr."""
    quiet = AlertService(registry.alerts, log_level="debug")
    return EmbeddedRuntime(registry, store, alerts=quiet, checkpoint=checkpoint)


def replay(
    runtime: EmbeddedRuntime,
    paths: list[str],
    progress: Progress | None = None,
    progress_every: float = 2.0,
) -> IntakeStats:
    exports = {path: read_insights(path) for path in paths if is_insights(path)}
    started = last = time.monotonic()
    runtime.backlog = True
    for path in paths:
        name = "stdin" if path == "-" else Path(path).name
        runtime.bus.begin_source(source_id(path))
        if path in exports:
            runtime.gate.submit_insights(exports[path])
            runtime.process()
            continue
        if path != "-":
            runtime.pipeline.declare_inputs(runtime.bus.source, event_types(path))
        for number, line in read_lines(path):
            runtime.submit_raw(line, f"replay:{name}:{number}")
            if runtime.stats.read % PROCESS_EVERY == 0:
                runtime.process()
                now = time.monotonic()
                if progress and now - last >= progress_every:
                    progress(runtime.stats, now - started)
                    last = now
    runtime.backlog = False
    runtime.close(end_of_input=True)
    return runtime.stats
