"""The per-action models on local disk: restored at start, saved on a clock and at stop.

A checkpoint is written to a temporary file, flushed to disk and renamed over the
old one, so a crash mid-write leaves the previous checkpoint intact. One that cannot
be used (corrupt, another feature-set version, another model kind) is logged with
the reason and the models start fresh: the pipeline keeps running either way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import structlog

from clicktrail.processors.models import ActionModels, Restored, dumps, loads
from clicktrail.processors.models.estimators import DEFAULT_MODEL

log = structlog.get_logger(__name__)

SAVE_EVERY_SECONDS = 60.0


class Periodic:
    """A file rewritten on a clock: where it is, and how long since it was last written."""

    every_default = SAVE_EVERY_SECONDS

    def __init__(
        self,
        path: Path,
        *,
        every_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.every_seconds = self.every_default if every_seconds is None else every_seconds
        self.clock = clock
        self._saved_at = clock()

    def since_saved(self) -> float:
        return self.clock() - self._saved_at

    def _saved_now(self) -> None:
        self._saved_at = self.clock()


class ModelCheckpoint(Periodic):
    def load(
        self,
        actions: Iterable[str],
        kind: str = DEFAULT_MODEL,
        priors: Mapping[str, float] | None = None,
    ) -> Restored:
        """The learned state of the last checkpoint, or fresh models (the log says why);
        ``priors``: base rates fresh models start from."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        except OSError as error:
            log.warning("models.checkpoint_unreadable", path=str(self.path), error=str(error))
            data = b""
        restored = loads(data, actions, kind=kind, priors=priors)
        if restored.fresh and restored.reason != "empty":
            log.warning(
                "models.fresh_start",
                path=str(self.path),
                reason=restored.reason,
                detail=restored.message,
            )
        elif not restored.fresh:
            examples = sum(q.examples for q in restored.models.quality.values())
            log.info("models.restored", path=str(self.path), examples=examples)
        return restored

    def save(self, models: ActionModels, extras: Mapping[str, object] | None = None) -> None:
        """Serialize and write (see :meth:`write`)."""
        self.write(dumps(models, extras))

    def write(self, data: bytes) -> None:
        """Write serialized state atomically; a failed write is logged and the old
        checkpoint kept. Serialize where the models are learned (``dumps``); only this
        file I/O may run on another thread."""
        self._saved_now()
        try:
            write_atomically(self.path, data)
        except OSError as error:
            log.warning("models.checkpoint_failed", path=str(self.path), error=str(error))

    def save_if_due(self, models: ActionModels, extras: Mapping[str, object] | None = None) -> bool:
        if self.since_saved() < self.every_seconds:
            return False
        self.save(models, extras)
        return True


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file, fsync it, rename it over ``path`` and fsync the
    directory: after a crash the file is the old one or the new one, whole. Readable by
    the owner only (a state snapshot holds the registry, secrets included)."""
    temporary = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
