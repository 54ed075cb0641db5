"""A durable local queue for records the broker cannot take right now.

The edge answers 2xx before Kafka has the event, so when the broker is away or
slow the accepted records go here instead: append-only segment files of
length-prefixed, checksummed frames. They are read back in append order once
the broker answers again; delivered segments are deleted (the last one is
truncated by starting a new segment), so the directory only holds what is
still owed to Kafka.

Frame layout (big-endian): ``length:u32 crc32:u32 topic_len:u16 key_len:u16``
then topic, key and value bytes; ``length`` counts everything after the
8-byte ``length crc`` prefix and ``crc32`` covers it. A frame cut short by a
crash fails its length or checksum and is cut off when the spool is opened.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import structlog

from clicktrail.bus.segments import lock_directory, segment_numbers, sync_directory

log = structlog.get_logger(__name__)

FsyncPolicy = Literal["always", "interval", "never"]
FSYNC_POLICIES: tuple[FsyncPolicy, ...] = ("always", "interval", "never")

_PREFIX = struct.Struct(">II")
_NAMES = struct.Struct(">HH")
_SUFFIX = ".spool"
_POSITION_FILE = "position"
MAX_FRAME_BYTES = 16 << 20


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    topic: str
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True, order=True)
class SpoolPosition:
    """A place in the spool: segment number and byte offset inside it."""

    segment: int
    offset: int


class SpoolError(Exception):
    """The spool directory cannot be used (permissions, disk full, foreign files)."""


def encode_frame(topic: str, key: bytes, value: bytes) -> bytes:
    name = topic.encode()
    if len(name) > 0xFFFF or len(key) > 0xFFFF:
        raise ValueError("topic and key must be shorter than 64 KiB")
    body = _NAMES.pack(len(name), len(key)) + name + key + value
    if len(body) > MAX_FRAME_BYTES:
        raise ValueError(f"record of {len(body)} bytes is larger than {MAX_FRAME_BYTES}")
    return _PREFIX.pack(len(body), zlib.crc32(body)) + body


def _decode_body(body: bytes) -> SpoolRecord:
    topic_len, key_len = _NAMES.unpack_from(body)
    start = _NAMES.size
    topic = body[start : start + topic_len].decode()
    key = body[start + topic_len : start + topic_len + key_len]
    return SpoolRecord(topic, key, body[start + topic_len + key_len :])


def read_frames(
    handle: BinaryIO, limit: int | None = None
) -> tuple[list[tuple[SpoolRecord, int]], bool]:
    """Frames from the handle's position: ``(record, end offset)`` pairs; False on a bad tail."""
    out: list[tuple[SpoolRecord, int]] = []
    while limit is None or len(out) < limit:
        prefix = handle.read(_PREFIX.size)
        if not prefix:
            return out, True
        if len(prefix) < _PREFIX.size:
            return out, False
        length, crc = _PREFIX.unpack(prefix)
        if length < _NAMES.size or length > MAX_FRAME_BYTES:
            return out, False
        body = handle.read(length)
        if len(body) < length or zlib.crc32(body) != crc:
            return out, False
        try:
            record = _decode_body(body)
        except (UnicodeDecodeError, struct.error):
            return out, False
        out.append((record, handle.tell()))
    return out, True


class Spool:
    """Append-only, ordered, crash-safe queue on local disk; one writer, one reader.

    ``read`` returns records from the last committed position without moving
    it; ``commit`` marks them delivered. A crash between the two re-delivers
    at most the records read since the last commit.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        fsync: FsyncPolicy = "interval",
        fsync_interval: float = 0.2,
        segment_bytes: int = 64 << 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync must be one of {', '.join(FSYNC_POLICIES)}, not {fsync!r}")
        if fsync_interval <= 0:
            raise ValueError("fsync_interval must be positive")
        if segment_bytes < 1024:
            raise ValueError("segment_bytes must be at least 1024")
        self.directory = Path(directory)
        self.fsync = fsync
        self.fsync_interval = fsync_interval
        self.segment_bytes = segment_bytes
        self._clock = clock
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SpoolError(f"cannot create spool directory {self.directory}: {error}") from None
        self._lock = self._take_lock()
        self._committed = self._load_position()
        self._depth = 0
        self._bytes = 0
        self._recover()
        self._writer: BinaryIO = self._open_writer()
        self._dirty = False
        self._last_sync = self._clock()
        self.closed = False
        if self._depth == 0 and self._committed.offset:
            self._reset()
            self._write_position()

    # ------------------------------------------------------------------ state

    @property
    def depth(self) -> int:
        """Records appended and not yet committed."""
        return self._depth

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def committed(self) -> SpoolPosition:
        return self._committed

    def _segments(self) -> list[int]:
        return segment_numbers(self.directory, _SUFFIX)

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:016d}{_SUFFIX}"

    def _take_lock(self) -> BinaryIO:
        """One process per spool directory: two writers would interleave their frames."""
        return lock_directory(self.directory, SpoolError, "give each edge process its own")

    def _load_position(self) -> SpoolPosition:
        path = self.directory / _POSITION_FILE
        try:
            segment, offset = path.read_text().split()
            return SpoolPosition(int(segment), int(offset))
        except FileNotFoundError:
            return SpoolPosition(0, 0)
        except (OSError, ValueError):
            log.warning("spool.position_unreadable", path=str(path))
            return SpoolPosition(0, 0)

    def _recover(self) -> None:
        """Count what is owed, drop delivered segments and cut a torn tail off the last one."""
        segments = self._segments()
        for number in segments:
            if number < self._committed.segment:
                self._path(number).unlink(missing_ok=True)
        segments = [n for n in segments if n >= self._committed.segment]
        if not segments:
            self._active = max(self._committed.segment, 0)
            if self._committed.offset:
                self._committed = SpoolPosition(self._active, 0)
            return
        if self._committed.segment not in segments:
            self._committed = SpoolPosition(segments[0], 0)
        for number in segments:
            path = self._path(number)
            start = self._committed.offset if number == self._committed.segment else 0
            with path.open("rb") as handle:
                handle.seek(start)
                frames, clean = read_frames(handle)
            end = frames[-1][1] if frames else start
            self._depth += len(frames)
            self._bytes += end - start
            if not clean:
                log.warning("spool.torn_tail", segment=str(path), kept_bytes=end)
                with path.open("r+b") as handle:
                    handle.truncate(end)
        self._active = segments[-1]

    def _open_writer(self) -> BinaryIO:
        try:
            handle = self._path(self._active).open("ab")
        except OSError as error:
            raise SpoolError(f"cannot write spool segment in {self.directory}: {error}") from None
        self._sync_directory()
        return handle

    def _sync_directory(self) -> None:
        if self.fsync != "never":
            sync_directory(self.directory)

    # ----------------------------------------------------------------- writer

    def append(self, topic: str, key: bytes, value: bytes) -> None:
        frame = encode_frame(topic, key, value)
        self._writer.write(frame)
        self._depth += 1
        self._bytes += len(frame)
        self._dirty = True
        if self._writer.tell() >= self.segment_bytes:
            self._rotate()
        elif self.fsync == "always":
            self.sync()
        elif self.fsync == "interval":
            self.maybe_sync()

    def extend(self, records: Iterable[tuple[str, bytes, bytes]]) -> int:
        count = 0
        for topic, key, value in records:
            self.append(topic, key, value)
            count += 1
        return count

    def sync(self) -> None:
        """Push written frames to the OS and, unless the policy is ``never``, to the disk."""
        if not self._dirty:
            return
        self._writer.flush()
        if self.fsync != "never":
            os.fsync(self._writer.fileno())
        self._dirty = False
        self._last_sync = self._clock()

    def maybe_sync(self) -> None:
        """Sync if the interval has passed; call it on a timer so a quiet tail gets synced too."""
        if self._dirty and self._clock() - self._last_sync >= self.fsync_interval:
            self.sync()

    def _rotate(self) -> None:
        self.sync()
        self._writer.close()
        self._active += 1
        self._writer = self._open_writer()

    # ----------------------------------------------------------------- reader

    def read(self, max_records: int) -> tuple[list[SpoolRecord], SpoolPosition]:
        """Up to ``max_records`` from the committed position, and the position after them."""
        if max_records < 1:
            raise ValueError("max_records must be positive")
        self._writer.flush()
        position = self._committed
        records: list[SpoolRecord] = []
        while len(records) < max_records and position.segment <= self._active:
            path = self._path(position.segment)
            try:
                handle = path.open("rb")
            except FileNotFoundError:
                if position.segment >= self._active:
                    break
                position = SpoolPosition(position.segment + 1, 0)
                continue
            with handle:
                handle.seek(position.offset)
                frames, _ = read_frames(handle, max_records - len(records))
            records.extend(record for record, _ in frames)
            if frames:
                position = SpoolPosition(position.segment, frames[-1][1])
            if len(records) < max_records:
                if position.segment >= self._active:
                    break
                position = SpoolPosition(position.segment + 1, 0)
        return records, position

    def commit(self, position: SpoolPosition, count: int) -> None:
        """Records up to ``position`` (``count`` of them) reached the broker: forget them."""
        if position < self._committed:
            raise ValueError(f"cannot commit {position} before {self._committed}")
        self._writer.flush()
        self._bytes = max(0, self._bytes - self._span(self._committed, position))
        for number in self._segments():
            if number < position.segment:
                self._path(number).unlink(missing_ok=True)
        self._depth = max(0, self._depth - count)
        self._committed = position
        if self._depth == 0:
            self._reset()
        self._write_position()

    def _span(self, start: SpoolPosition, end: SpoolPosition) -> int:
        """Bytes between two positions (segments in between counted whole)."""
        if start.segment == end.segment:
            return end.offset - start.offset
        total = 0
        for number in range(start.segment, end.segment):
            try:
                size = self._path(number).stat().st_size
            except FileNotFoundError:
                continue
            total += size - (start.offset if number == start.segment else 0)
        return total + end.offset

    def _reset(self) -> None:
        """Everything delivered: start an empty segment so the old ones can go."""
        self.sync()
        self._writer.close()
        old = self._segments()
        self._active += 1
        self._writer = self._open_writer()
        for number in old:
            self._path(number).unlink(missing_ok=True)
        self._committed = SpoolPosition(self._active, 0)
        self._bytes = 0

    def _write_position(self) -> None:
        path = self.directory / _POSITION_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{self._committed.segment} {self._committed.offset}\n")
        if self.fsync != "never":
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)

    def close(self) -> None:
        if self.closed:
            return
        self.sync()
        self._writer.close()
        self._lock.close()
        self.closed = True
