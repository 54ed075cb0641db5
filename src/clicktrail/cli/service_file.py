"""Where a running service can be found, so other commands can talk to it.

An embedded (chDB) store can be opened by one process only; ``clicktrail run``
records its URL beside the data so ``clicktrail query`` can go through it.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

SERVICE_FILE = "clicktrail-service.json"


def write(store_dir: Path, url: str) -> Path:
    path = store_dir / SERVICE_FILE
    path.write_text(json.dumps({"pid": os.getpid(), "url": url}), encoding="utf-8")
    return path


def remove(store_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (store_dir / SERVICE_FILE).unlink()


def running_service(store_dir: Path) -> str | None:
    """URL of a live service holding this store, else ``None`` (stale files are ignored)."""
    try:
        info = json.loads((store_dir / SERVICE_FILE).read_text(encoding="utf-8"))
        pid, url = int(info["pid"]), str(info["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return url
