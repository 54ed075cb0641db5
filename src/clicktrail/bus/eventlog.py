"""The embedded runtime's write-ahead log: what the edge acknowledged, on disk, in order.

``clicktrail run`` answers 2xx only once an accepted event is here and fsynced (one
fsync covers every request waiting, see :class:`~clicktrail.bus.durable.DurableBus`),
and the processors only ever see records that are. Records are numbered from 1: the
number is the message offset, so a record read again after a crash carries the origin
it had the first time and the sink skips the rows it already stored. A state snapshot
that reflects records up to N (``runtime/snapshots.py``) lets every segment holding
only records up to N go: the log keeps what the last snapshot does not reflect.

Frames are the spool's (length, CRC-32, topic, key, value); the key starts with the
record number (8 bytes, big-endian). Segment files are named by the number of their
first record. A frame cut short by a crash fails its length or checksum and is cut
off when the log is opened: it was never acknowledged.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import structlog

from clicktrail.bus.segments import lock_directory, segment_numbers, sync_directory
from clicktrail.bus.spool import SpoolError, encode_frame, read_frames

log = structlog.get_logger(__name__)

_SEQ = struct.Struct(">Q")
_SUFFIX = ".log"
SEGMENT_BYTES = 64 << 20


class EventLogError(SpoolError):
    """The log directory cannot be used (in use, unwritable, foreign files)."""


class EventLog:
    """Append-only, numbered, crash-safe log; appends from one thread, ``sync`` from
    another (the event loop appends, a worker thread fsyncs)."""

    def __init__(
        self,
        directory: str | Path,
        *,
        after: int = 0,
        segment_bytes: int = SEGMENT_BYTES,
        fsync: bool = True,
    ) -> None:
        """``after``: the last record a snapshot reflects; numbering continues past it
        even when every segment is gone."""
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise EventLogError(f"cannot create log directory {self.directory}: {error}") from None
        self._lock_handle = self._take_lock()
        self._lock = threading.Lock()
        self._last = max(after, self._recover())
        self.synced = self._last
        """The last record known to be on disk."""
        self._retired: list[BinaryIO] = []
        self._writer = self._open(self._last + 1)
        self._sync_directory()

    @property
    def last(self) -> int:
        """The last record appended."""
        return self._last

    # ---------------------------------------------------------------- opening

    def _take_lock(self) -> BinaryIO:
        return lock_directory(
            self.directory, EventLogError, "give each 'clicktrail run' its own --data-dir"
        )

    def segments(self) -> list[int]:
        """First record numbers of the segment files, in order."""
        return segment_numbers(self.directory, _SUFFIX)

    def _path(self, first: int) -> Path:
        return self.directory / f"{first:020d}{_SUFFIX}"

    def _recover(self) -> int:
        """The last record on disk; a torn tail of the newest segment is cut off."""
        firsts = self.segments()
        if not firsts:
            return 0
        path = self._path(firsts[-1])
        with path.open("rb") as handle:
            frames, clean = read_frames(handle)
        end = frames[-1][1] if frames else 0
        if not clean:
            log.warning("event_log.torn_tail", segment=str(path), kept_bytes=end)
            with path.open("r+b") as handle:
                handle.truncate(end)
        if not frames:
            return firsts[-1] - 1
        return int(_SEQ.unpack_from(frames[-1][0].key)[0])

    def _open(self, first: int) -> BinaryIO:
        """The segment new records go to: the newest one, or a new one starting at ``first``."""
        firsts = self.segments()
        path = self._path(firsts[-1]) if firsts else self._path(first)
        try:
            return path.open("ab")
        except OSError as error:
            raise EventLogError(f"cannot write log segment {path}: {error}") from None

    def _sync_directory(self) -> None:
        if self.fsync:
            sync_directory(self.directory)

    # ---------------------------------------------------------------- writing

    def append(self, topic: str, key: str, value: bytes) -> int:
        """Write one record (not yet synced); returns its number."""
        with self._lock:
            seq = self._last + 1
            frame = encode_frame(topic, _SEQ.pack(seq) + key.encode(), value)
            self._writer.write(frame)
            self._last = seq
            if self._writer.tell() >= self.segment_bytes:
                self._writer.flush()
                self._retired.append(self._writer)
                self._writer = self._path(seq + 1).open("ab")
            return seq

    def sync(self) -> int:
        """Put every record appended so far on disk; returns the last one. One caller at
        a time (the group commit); appends may go on meanwhile."""
        with self._lock:
            self._writer.flush()
            upto = self._last
            writer = self._writer
            retired, self._retired = self._retired, []
        if self.fsync:
            for handle in retired:
                os.fsync(handle.fileno())
            os.fsync(writer.fileno())
            if retired:
                self._sync_directory()
        for handle in retired:
            handle.close()
        self.synced = max(self.synced, upto)
        return upto

    # ---------------------------------------------------------------- reading

    def read(self, after: int) -> Iterator[tuple[int, str, str, bytes]]:
        """``(number, topic, key, value)`` of every synced record after ``after``, in order."""
        firsts = self.segments()
        for n, first in enumerate(firsts):
            following = firsts[n + 1] if n + 1 < len(firsts) else None
            if following is not None and following <= after + 1:
                continue  # every record in it is at or before ``after``
            with self._path(first).open("rb") as handle:
                frames, _ = read_frames(handle)
            for record, _ in frames:
                seq = int(_SEQ.unpack_from(record.key)[0])
                if after < seq <= self.synced:
                    yield seq, record.topic, record.key[_SEQ.size :].decode(), record.value

    def release(self, upto: int) -> int:
        """Records up to ``upto`` are reflected by a snapshot: delete the segments holding
        only those (never the one being written). Returns the segments deleted."""
        with self._lock:
            firsts = self.segments()
            gone = 0
            for n, first in enumerate(firsts[:-1]):
                if firsts[n + 1] <= upto + 1:
                    self._path(first).unlink(missing_ok=True)
                    gone += 1
            return gone

    def close(self) -> None:
        self.sync()
        with self._lock:
            self._writer.close()
        self._lock_handle.close()
