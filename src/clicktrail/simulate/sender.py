"""Send a scenario to a running clicktrail service: NDJSON batches to ``/v1/events`` at a rate.

Lines arrive as they are generated; a batch goes out when it is full, no
earlier than the target rate allows, over one kept-alive connection. The
service answers ``{"accepted": n, "rejected": [...]}`` (status 400 when it
accepted none), which is counted; transport errors and 5xx are retried a
few times, then the run stops with an error instead of hanging.
"""

from __future__ import annotations

import http.client
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

MAX_BODY_BYTES = 1_000_000
"""Well under the service's default body limit (64 x max_event_bytes)."""
RETRIES = 3


class SendError(Exception):
    """The service cannot take the events; the message says why."""


@dataclass
class SendStats:
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    batches: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def describe(self) -> str:
        line = (
            f"sent {self.sent:,} events in {self.batches:,} batches: "
            f"{self.accepted:,} accepted, {self.rejected:,} rejected"
        )
        if self.reasons:
            line += " (" + ", ".join(f"{r}: {n}" for r, n in self.reasons.most_common()) + ")"
        return line


def default_batch(rate: float) -> int:
    """About ten requests a second, within 1..1000 events each."""
    return max(1, min(1000, int(rate / 10)))


class Sender:
    def __init__(
        self,
        url: str,
        rate: float,
        *,
        batch: int | None = None,
        api_key: str = "",
        timeout: float = 30.0,
        sleep: Any = time.sleep,
        clock: Any = time.monotonic,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"--send needs an http(s) URL such as http://127.0.0.1:8080, not {url!r}"
            )
        if rate <= 0:
            raise ValueError("--rate must be a positive number of events per second")
        if not api_key:
            raise ValueError(
                "--send needs the operator token (or an API key): --api-key or "
                "$CLICKTRAIL_OPERATOR_TOKEN"
            )
        self._auth = {"authorization": f"Bearer {api_key}"}
        if batch is not None and batch < 1:
            raise ValueError("--batch must be at least 1")
        connection = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        self._connection = connection(parts.hostname, parts.port, timeout=timeout)
        self.path = parts.path.rstrip("/") + "/v1/events"
        self.target = f"{parts.scheme}://{parts.netloc}{self.path}"
        self.rate = rate
        self.batch = batch or default_batch(rate)
        self.stats = SendStats()
        self._lines: list[bytes] = []
        self._size = 0
        self._sleep = sleep
        self._clock = clock
        self._started: float | None = None

    def add(self, line: bytes) -> None:
        self._lines.append(line)
        self._size += len(line)
        if len(self._lines) >= self.batch or self._size >= MAX_BODY_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        now = self._clock()
        if self._started is None:
            self._started = now
        wait = self._started + self.stats.sent / self.rate - now
        if wait > 0:
            self._sleep(wait)
        lines, self._lines, self._size = self._lines, [], 0
        answer = self._post(b"".join(lines))
        self.stats.sent += len(lines)
        self.stats.batches += 1
        self.stats.accepted += int(answer.get("accepted", 0))
        rejected = answer.get("rejected", [])
        self.stats.rejected += len(rejected)
        self.stats.reasons.update(str(r.get("error", "unknown")) for r in rejected)

    def close(self) -> SendStats:
        try:
            self.flush()
        finally:
            self._connection.close()
        return self.stats

    def _post(self, body: bytes) -> dict[str, Any]:
        headers = {"content-type": "application/x-ndjson", **self._auth}
        problem = ""
        for attempt in range(RETRIES + 1):
            if attempt:
                self._sleep(0.5 * 2 ** (attempt - 1))
            try:
                self._connection.request("POST", self.path, body=body, headers=headers)
                response = self._connection.getresponse()
                status, payload = response.status, response.read()
            except (OSError, http.client.HTTPException) as error:
                self._connection.close()
                problem = f"{self.target} did not answer: {error}"
                continue
            if status >= 500 or status == 429:
                problem = f"{self.target} answered {status}"
                continue
            try:
                answer = orjson.loads(payload)
            except orjson.JSONDecodeError:
                answer = None
            if isinstance(answer, dict) and "accepted" in answer:
                return answer
            detail = answer.get("message", "") if isinstance(answer, dict) else ""
            raise SendError(f"{self.target} refused the batch with {status}: {detail}".strip())
        raise SendError(f"{problem} (gave up after {RETRIES} retries)")
