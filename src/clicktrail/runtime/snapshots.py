"""The embedded runtime's state on disk, with the log record it reflects.

Taken on the processing thread right after the sink has written every row of the
records processed so far, so "state after record N" and "rows of records up to N
stored" hold together; on restart the runtime restores it and reads the event log
from N + 1 (the Kafka Streams / Flink model, on one machine). A crash between two
snapshots costs reprocessing, never a loss: the replayed records keep their offsets
and the sink skips the rows it already has.

The file is a header line (JSON: format, offset, registry fingerprint, checksum) and a
pickle of the pipeline with its state stores, models and event clock. It is written
atomically into the service's own data directory and read back only from there (the
same trust as the code; the checksum catches a damaged file, not an attacker). A
snapshot taken under another registry is carried over store by store
(:meth:`Pipeline.under`); one that cannot be read is refused with a clear error
rather than silently replaced by an empty state, since the log before it is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import pickle
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from clicktrail.config import Registry
from clicktrail.runtime.checkpoints import Periodic, write_atomically
from clicktrail.runtime.pipeline import Pipeline

log = structlog.get_logger(__name__)

MAGIC = b"clicktrail-state\n"
FORMAT = 1
SNAPSHOT_EVERY_SECONDS = 60.0
PR_SET_PDEATHSIG = 1
MAX_SHARE = 0.05
"""At most this share of the time goes to snapshots: a state that takes 4 s to write is
written every 80 s however short the interval asked for (the child takes a core)."""


class SnapshotError(Exception):
    """A snapshot exists and cannot be used."""


@dataclass
class RuntimeState:
    offset: int
    """The last log record this state reflects."""
    pipeline: Pipeline
    processed: int
    learned: datetime
    last: tuple[str, int] | None
    alert_state: dict[str, Any] = field(default_factory=dict)


def fingerprint(registry: Registry) -> str:
    return hashlib.sha256(registry.model_dump_json().encode()).hexdigest()[:16]


class Snapshots(Periodic):
    """Saves a state now (:meth:`save`, at a stop) or in a child process (:meth:`start`,
    while running; :meth:`poll` says when it is on disk)."""

    every_default = SNAPSHOT_EVERY_SECONDS
    _child: tuple[int, int, float] | None = None
    saved = 0
    last_seconds = 0.0
    """How long the last snapshot took to write."""
    pause_seconds = 0.0
    """How long processing waited for the last one (the fork, for one in a child)."""

    def due(self) -> bool:
        if self._child is not None:
            return False
        interval = max(self.every_seconds, self.last_seconds / MAX_SHARE)
        return self.since_saved() >= interval

    def save(self, state: RuntimeState) -> None:
        """Write ``state`` now, on this thread (nothing else may change it meanwhile)."""
        self.wait()
        started = time.perf_counter()
        self._write(state)
        self._saved_now()
        self.saved += 1
        self.last_seconds = self.pause_seconds = time.perf_counter() - started
        log.debug("state.snapshot_saved", offset=state.offset, seconds=round(self.last_seconds, 3))

    def start(self, state: RuntimeState) -> None:
        """Write ``state`` from a forked child, as Redis does: the child sees the state as it
        is at the fork (copy-on-write) while this process goes on changing it, so neither
        processing nor, through the GIL, the event loop waits for the pickling, and no other
        thread can change the state under the pickler. The child dies with this process and
        keeps none of its locks. :meth:`poll` reports the offset once the file is renamed."""
        started = time.perf_counter()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: write and leave, running nothing of the parent's
            code = 1
            try:
                _die_with(parent)
                self._write(state)
                code = 0
            finally:
                os._exit(code)
        self.pause_seconds = time.perf_counter() - started
        self._child = (pid, state.offset, time.monotonic())

    def poll(self, block: bool = False) -> int | None:
        """The offset of a snapshot the child has finished since the last call, if any."""
        if self._child is None:
            return None
        pid, offset, started = self._child
        done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        if done == 0:
            return None
        self._child = None
        self._saved_now()
        self.last_seconds = time.monotonic() - started
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            log.warning("state.snapshot_failed", offset=offset, exit_code=code)
            return None
        self.saved += 1
        log.debug("state.snapshot_saved", offset=offset, seconds=round(self.last_seconds, 3))
        return offset

    def wait(self) -> int | None:
        """Wait for a child under way (at a stop); its offset if it succeeded."""
        return self.poll(block=True)

    def _write(self, state: RuntimeState) -> None:
        payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        header = {
            "format": FORMAT,
            "offset": state.offset,
            "registry": fingerprint(state.pipeline.registry),
            "sha256": hashlib.sha256(payload).hexdigest(),
        }
        write_atomically(self.path, MAGIC + json.dumps(header).encode() + b"\n" + payload)

    def load(self, registry: Registry) -> RuntimeState | None:
        """The saved state (None: there is none), under ``registry``."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise SnapshotError(f"cannot read {self.path}: {error}") from None
        header, payload = _split(data, self.path)
        if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
            raise SnapshotError(f"{self.path} is damaged (checksum mismatch)")
        try:
            state = pickle.loads(payload)
        except Exception as error:  # an old or foreign pickle: say which file and why
            raise SnapshotError(f"{self.path} cannot be restored: {error}") from None
        if not isinstance(state, RuntimeState):
            raise SnapshotError(f"{self.path} does not hold a runtime state")
        if header.get("registry") != fingerprint(registry):
            log.warning("state.registry_changed", path=str(self.path), offset=state.offset)
            state.pipeline = state.pipeline.under(registry)
        log.info("state.restored", path=str(self.path), offset=state.offset)
        return state


def _split(data: bytes, path: Path) -> tuple[dict[str, Any], bytes]:
    if not data.startswith(MAGIC):
        raise SnapshotError(f"{path} is not a clicktrail state snapshot")
    line, _, payload = data[len(MAGIC) :].partition(b"\n")
    try:
        header = json.loads(line)
    except ValueError:
        raise SnapshotError(f"{path} has an unreadable header") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SnapshotError(f"{path} is in a format this version does not read")
    return header, payload


def _die_with(parent: int) -> None:
    """In a forked child: be killed when the parent dies (Linux), so a SIGKILLed service
    leaves no writer behind that could put an older snapshot over a newer one."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)
