"""What the spool and the event log share: a directory of numbered segment files that one
process owns."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import BinaryIO

LOCK_FILE = "lock"


def lock_directory(directory: Path, error: type[Exception], advice: str) -> BinaryIO:
    """Take the directory's lock or raise ``error``: two writers would interleave their
    frames. Held as long as the returned handle is open."""
    handle = (directory / LOCK_FILE).open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise error(f"{directory} is in use by another process; {advice}") from None
    return handle


def segment_numbers(directory: Path, suffix: str) -> list[int]:
    """The numbers naming the segment files (``NNN<suffix>``), in order."""
    numbers = []
    for path in directory.glob(f"*{suffix}"):
        stem = path.name.removesuffix(suffix)
        if stem.isdigit():
            numbers.append(int(stem))
    return sorted(numbers)


def sync_directory(directory: Path) -> None:
    """Make created, renamed and deleted files durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
