"""``/v1/query`` on a real chDB store: refusals are 4xx with a reason, limits hold, shutdown
does not wait for a query, and only the operator token opens it to anyone but loopback."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.conftest import EXAMPLE_CONFIG

from clicktrail.config import Registry, load_registry
from clicktrail.edge.app import EdgeApp, build_app
from clicktrail.edge.serve import free_port, serve_in_thread
from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.sinks.store import QueryLimits, Store

TOKEN = "operator-token-for-tests-0123456789"
SLOW = (
    "SELECT count() FROM numbers(100000) AS a, numbers(100000) AS b "
    "WHERE sipHash64(a.number, b.number) = 0"
)
"""Ten billion hashes from two hundred thousand rows read: within the read limits, slow."""


def app_for(store: Store, *, proxies: list[str] | None = None, token: str | None = None) -> EdgeApp:
    registry = load_registry(EXAMPLE_CONFIG)
    if proxies is not None:
        edge = registry.edge.model_copy(update={"trusted_proxies": proxies})
        registry = registry.model_copy(update={"edge": edge})
    return build_app(EmbeddedRuntime(registry, store), query_token=token)


def call(
    app: EdgeApp, sql: str, *, peer: str = "127.0.0.1", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """One request straight into the ASGI app, from any peer address."""
    sent: list[dict[str, Any]] = []
    body = sql.encode()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/query",
        "raw_path": b"/v1/query",
        "query_string": b"format=csv",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": (peer, 40000),
        "server": ("127.0.0.1", 8080),
    }
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def error_of(body: bytes) -> str:
    return str(json.loads(body)["error"])


class TestRefusals:
    def test_into_outfile_writes_nothing(self, store: Store, tmp_path: Path) -> None:
        target = tmp_path / "leak.txt"
        app = app_for(store)
        for sql in (
            f"SELECT 'owned' INTO OUTFILE '{target}'",
            f"SELECT 'owned' INTO OUTFILE '{target}' APPEND",
            f"SELECT 1; SELECT 'owned' INTO OUTFILE '{target}'",
        ):
            status, body = call(app, sql)
            assert status == 400 and error_of(body) in ("into_outfile", "multiple_statements")
        assert not target.exists()

    @pytest.mark.parametrize(
        ("sql", "reason"),
        [
            ("SELECT 1; SELECT 2", "multiple_statements"),
            ("SELECT 1; DROP DATABASE {db}", "multiple_statements"),
            ("SELECT * FROM file('/etc/hostname', 'LineAsString')", "table_function_not_allowed"),
            ("SELECT * FROM url('http://127.0.0.1:9/', 'CSV')", "table_function_not_allowed"),
            ("SELECT file('/etc/hostname')", "function_not_allowed"),
            ("SELECT 1 SETTINGS max_execution_time = 0", "settings_not_allowed"),
            ("SELECT 1 FORMAT Native", "format_not_allowed"),
            ("DROP TABLE {db}.clicks", "not_a_select"),
        ],
    )  # fmt: skip
    def test_each_refusal_is_a_4xx_with_its_reason(
        self, store: Store, sql: str, reason: str
    ) -> None:
        status, body = call(app_for(store), sql.format(db=store.database))
        assert (status, error_of(body)) == (400, reason)
        status, body = call(app_for(store), f"SELECT count() FROM {store.database}.clicks")
        assert (status, body) == (200, b'"count()"\n0\n'), "nothing was dropped"


class TestLimits:
    def test_a_trillion_rows_is_refused_at_once_and_the_next_query_works(
        self, store: Store
    ) -> None:
        app = app_for(store)
        started = time.monotonic()
        status, body = call(app, "SELECT count() FROM numbers(1e12)")
        assert (status, error_of(body)) == (400, "query_limit")
        assert time.monotonic() - started < store.limits.max_execution_time
        assert call(app, "SELECT 41 + 1 AS answer") == (200, b'"answer"\n42\n')

    def test_a_slow_query_stops_at_the_time_limit_and_leaves_no_trace(self, store: Store) -> None:
        store.limits = QueryLimits(max_execution_time=1)
        app = app_for(store)
        started = time.monotonic()
        status, body = call(app, SLOW)
        assert (status, error_of(body)) == (400, "query_limit")
        assert time.monotonic() - started < 5
        # a failed chDB session would prefix this answer with the slow query's header
        assert call(app, "SELECT 7 AS n") == (200, b'"n"\n7\n')

    def test_a_huge_result_is_refused(self, store: Store) -> None:
        store.limits = QueryLimits(max_result_rows=1000)
        status, body = call(app_for(store), "SELECT number FROM numbers(100000)")
        assert (status, error_of(body)) == (400, "query_limit")


class TestAuthorization:
    def test_loopback_without_a_proxy_needs_no_token(self, store: Store) -> None:
        assert call(app_for(store), "SELECT 1 AS one")[0] == 200

    def test_a_remote_peer_needs_the_token(self, store: Store) -> None:
        app = app_for(store, token=TOKEN)
        status, body = call(app, "SELECT 1", peer="203.0.113.9")
        assert (status, error_of(body)) == (401, "missing_token")
        wrong = {"authorization": "Bearer not-the-token"}
        status, body = call(app, "SELECT 1", peer="203.0.113.9", headers=wrong)
        assert (status, error_of(body)) == (403, "bad_token")
        right = {"authorization": f"Bearer {TOKEN}"}
        assert call(app, "SELECT 1 AS one", peer="203.0.113.9", headers=right) == (
            200,
            b'"one"\n1\n',
        )

    def test_a_remote_peer_is_refused_when_no_token_is_configured(
        self, store: Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("CLICKTRAIL_OPERATOR_TOKEN", raising=False)
        monkeypatch.delenv("CLICKTRAIL_QUERY_TOKEN", raising=False)
        app = app_for(store)
        status, body = call(
            app, "SELECT 1", peer="198.51.100.7", headers={"authorization": "Bearer "}
        )
        assert (status, error_of(body)) == (401, "missing_token")
        status, body = call(
            app, "SELECT 1", peer="198.51.100.7", headers={"authorization": "Bearer x"}
        )
        assert (status, error_of(body)) == (403, "bad_token")

    def test_behind_a_trusted_proxy_loopback_is_not_trusted(self, store: Store) -> None:
        app = app_for(store, proxies=["127.0.0.1/32"], token=TOKEN)
        forwarded = {"x-forwarded-for": "203.0.113.50"}
        status, body = call(app, "SELECT 1", headers=forwarded)
        assert (status, error_of(body)) == (401, "missing_token")
        status, body = call(app, "SELECT 1", headers={})
        assert (status, error_of(body)) == (401, "missing_token"), "the proxy itself is loopback"
        with_token = {**forwarded, "authorization": f"Bearer {TOKEN}"}
        assert call(app, "SELECT 1 AS one", headers=with_token)[0] == 200

    @pytest.mark.parametrize("variable", ["CLICKTRAIL_OPERATOR_TOKEN", "CLICKTRAIL_QUERY_TOKEN"])
    def test_the_token_comes_from_the_environment(
        self, store: Store, variable: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("CLICKTRAIL_OPERATOR_TOKEN", raising=False)
        monkeypatch.delenv("CLICKTRAIL_QUERY_TOKEN", raising=False)
        monkeypatch.setenv(variable, TOKEN)
        app = app_for(store)
        bearer = {"authorization": f"Bearer {TOKEN}"}
        assert call(app, "SELECT 1", peer="203.0.113.9", headers=bearer)[0] == 200


class TestOverHttp:
    def test_refusals_over_a_real_socket(self, store: Store) -> None:
        with serve_in_thread(app_for(store)) as base:
            host, port = base.removeprefix("http://").split(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            conn.request("POST", "/v1/query?format=csv", body=b"SELECT 1; SELECT 2")
            response = conn.getresponse()
            assert (response.status, error_of(response.read())) == (400, "multiple_statements")
            conn.request("POST", "/v1/query?format=csv", body=b"SELECT 3 AS n")
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, b'"n"\n3\n')
            conn.close()


def service_config(tmp_path: Path) -> Path:
    """The example registry behind a proxy on this host: loopback is no longer trusted."""
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data.setdefault("edge", {})["trusted_proxies"] = ["127.0.0.1/32"]
    path = tmp_path / "behind-proxy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    Registry.model_validate(data)
    return path


@pytest.mark.slow
def test_the_service_stops_promptly_during_a_slow_query(tmp_path: Path) -> None:
    """SIGTERM answers the in-flight query and the process exits within seconds; meanwhile
    ``clicktrail query`` reached the service with the operator token from the environment."""
    config = service_config(tmp_path)
    env = {**os.environ, "CLICKTRAIL_CONFIG": str(config), "CLICKTRAIL_OPERATOR_TOKEN": TOKEN}
    env.pop("CLICKTRAIL_QUERY_TOKEN", None)
    port = free_port()
    cli = [sys.executable, "-m", "clicktrail.cli.main"]
    service = subprocess.Popen(
        [*cli, "run", "--dev", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the service did not become ready"
                time.sleep(0.2)

        query = subprocess.run(
            [*cli, "query", "SELECT 40 + 2 AS n", "--format", "csv"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert (query.returncode, query.stdout) == (0, '"n"\n42\n'), query.stderr
        anonymous = {k: v for k, v in env.items() if k != "CLICKTRAIL_OPERATOR_TOKEN"}
        refused = subprocess.run(
            [*cli, "query", "SELECT 1"],
            cwd=tmp_path, env=anonymous, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert refused.returncode == 1 and "operator token" in refused.stderr

        answers: list[object] = []

        def slow() -> None:
            request = urllib.request.Request(
                f"{base}/v1/query", data=SLOW.encode(), headers={"authorization": f"Bearer {TOKEN}"}
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    answers.append(response.status)
            except urllib.error.HTTPError as error:
                answers.append((error.code, json.loads(error.read())["error"]))
            except OSError as error:
                answers.append(error)

        asker = threading.Thread(target=slow, daemon=True)
        asker.start()
        time.sleep(1.5)  # the query is running now
        stopped = time.monotonic()
        service.send_signal(signal.SIGTERM)
        _, stderr = service.communicate(timeout=20)
        took = time.monotonic() - stopped
        asker.join(5)
    finally:
        if service.poll() is None:
            service.kill()
            service.communicate()
    assert service.returncode == 0, stderr
    assert took < 5, f"SIGTERM took {took:.1f} s"
    assert answers == [(503, "shutting_down")]
