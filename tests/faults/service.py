"""A ``clicktrail run`` service in a process of its own, a client that resends what was not
acknowledged, and a store read the way the metamorphic tests read it (in another process:
chDB serves one data directory per process)."""

from __future__ import annotations

import http.client
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.metamorphic.store_snapshot import Snapshot

CLI = [sys.executable, "-m", "clicktrail.cli.main"]
TOKEN = "operator-token-faults-0123456789abcdef"
READ_SNAPSHOT = """
import pickle, sys
from tests.metamorphic.store_snapshot import snapshot
from clicktrail.sinks.store import Store
store = Store(sys.argv[1], "clicktrail")
sys.stdout.buffer.write(pickle.dumps(snapshot(store, sys.argv[2:])))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """``clicktrail run`` on a store and data directory of its own."""

    def __init__(self, root: Path, registry: Path, *, snapshot_seconds: float = 2.0) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.store = f"chdb://{root / 'store'}"
        self.port = free_port()
        self.log = root / "service.log"
        self.args = [
            *CLI, "run", "--port", str(self.port), "--store", self.store,
            "--config", str(registry), "--data-dir", str(root / "state"),
            "--snapshot-seconds", str(snapshot_seconds),
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> Service:
        env = {**os.environ, "CLICKTRAIL_OPERATOR_TOKEN": TOKEN}
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(self.args, env=env, stdout=handle, stderr=handle)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"service did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=120)
        assert code == 0, self.log.read_text()[-3000:]

    def snapshot_offset(self) -> int:
        """The last log record the saved state reflects (0: none saved yet)."""
        try:
            data = (self.root / "state" / "state.snapshot").read_bytes()
        except FileNotFoundError:
            return 0
        header = data.split(b"\n", 2)[1]
        return int(json.loads(header)["offset"])

    def wait_for_snapshot(self, offset: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.snapshot_offset() < offset:
            assert time.monotonic() < deadline, f"no snapshot reached record {offset}"
            time.sleep(0.1)

    def snapshot(self) -> Snapshot:
        result = subprocess.run(
            [sys.executable, "-c", READ_SNAPSHOT, self.store],
            capture_output=True,
            check=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        snapshot: Snapshot = pickle.loads(result.stdout)
        return snapshot


class Client:
    """Posts batches to ``/v1/events`` and remembers which were acknowledged; a batch that
    got no answer is owed and is sent again (the events keep their ids)."""

    def __init__(self, batches: list[bytes]) -> None:
        self.batches = batches
        self.acknowledged: set[int] = set()

    def send(self, service: Service, until: int | None = None) -> int:
        """Send the batches not yet acknowledged, in order, up to batch ``until``; stops at
        the first one without an answer. Returns how many were acknowledged now."""
        done = 0
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
        headers = {"content-type": "application/x-ndjson", "authorization": f"Bearer {TOKEN}"}
        try:
            for n, body in enumerate(self.batches[:until]):
                if n in self.acknowledged:
                    continue
                try:
                    connection.request("POST", "/v1/events", body=body, headers=headers)
                    response = connection.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException):
                    return done
                assert response.status == 200, response.status
                self.acknowledged.add(n)
                done += 1
        finally:
            connection.close()
        return done

    @property
    def owed(self) -> int:
        return len(self.batches) - len(self.acknowledged)
