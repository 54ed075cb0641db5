"""The sender: NDJSON batches at a rate, answers counted, failures retried then reported."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clicktrail.simulate.sender import Sender, SendError, default_batch

KEY = "operator-token-0123456789abcdef"


class Service:
    """A stand-in for the batch endpoint, scripted with the statuses to answer."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.types: list[str] = []
        self.auth: list[str] = []
        self.paths: list[str] = []
        self.script: list[int] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                service.bodies.append(body)
                service.types.append(self.headers["content-type"])
                service.auth.append(self.headers["authorization"])
                service.paths.append(self.path)
                status = service.script.pop(0) if service.script else 200
                lines = body.splitlines()
                bad = [i for i, line in enumerate(lines) if b"bad" in line]
                answer: dict[str, object] = {
                    "accepted": len(lines) - len(bad),
                    "rejected": [{"index": i, "error": "invalid_field"} for i in bad],
                }
                if status == 413:
                    answer = {"error": "payload_too_large", "message": "too big"}
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/base/"


@pytest.fixture
def service() -> Iterator[Service]:
    running = Service()
    thread = threading.Thread(target=running.server.serve_forever, daemon=True)
    thread.start()
    yield running
    running.server.shutdown()
    running.server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_batches_go_out_as_ndjson_at_the_rate(service: Service) -> None:
    clock = Clock()
    sender = Sender(service.url, rate=100, batch=10, api_key=KEY, sleep=clock.sleep, clock=clock)
    for i in range(25):
        sender.add(b'{"n":%d}\n' % i if i != 7 else b'{"bad":1}\n')
    stats = sender.close()
    assert (stats.sent, stats.batches, stats.accepted, stats.rejected) == (25, 3, 24, 1)
    assert stats.reasons == {"invalid_field": 1}
    assert service.paths == ["/base/v1/events"] * 3
    assert service.types == ["application/x-ndjson"] * 3
    assert service.auth == [f"Bearer {KEY}"] * 3
    assert [len(b.splitlines()) for b in service.bodies] == [10, 10, 5]
    assert clock.slept == pytest.approx([0.1, 0.1]), "10 events at 100/s take 0.1 s"
    assert "24 accepted, 1 rejected (invalid_field: 1)" in stats.describe()


def test_server_errors_are_retried(service: Service) -> None:
    service.script = [503, 502]
    clock = Clock()
    sender = Sender(service.url, rate=1e6, batch=5, api_key=KEY, sleep=clock.sleep, clock=clock)
    for i in range(5):
        sender.add(b'{"n":%d}\n' % i)
    assert sender.close().accepted == 5
    assert len(service.bodies) == 3


def test_a_refused_batch_stops_the_run(service: Service) -> None:
    service.script = [413]
    sender = Sender(service.url, rate=1e6, batch=2, api_key=KEY)
    sender.add(b"{}\n")
    with pytest.raises(SendError, match="refused the batch with 413: too big"):
        sender.add(b"{}\n")


def test_an_absent_service_is_reported_after_retries() -> None:
    clock = Clock()
    sender = Sender(
        "http://127.0.0.1:9", rate=10, batch=1, api_key=KEY, sleep=clock.sleep, clock=clock
    )
    with pytest.raises(SendError, match=r"did not answer.*gave up after 3 retries"):
        sender.add(b"{}\n")
    assert clock.slept == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    ("url", "rate", "message"),
    [("ftp://host", 10, "http"), ("127.0.0.1:8080", 10, "http"), ("http://h", 0, "--rate")],
)
def test_bad_targets_are_refused_up_front(url: str, rate: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Sender(url, rate, api_key=KEY)


def test_sending_needs_a_key() -> None:
    with pytest.raises(ValueError, match="operator token"):
        Sender("http://127.0.0.1:8080", 10)


def test_default_batch_is_about_ten_requests_a_second() -> None:
    assert default_batch(5) == 1
    assert default_batch(2_000) == 200
    assert default_batch(1e6) == 1000
