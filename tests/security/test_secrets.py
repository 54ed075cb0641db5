"""Shipped, empty and short secrets never serve beyond loopback; secrets come from env or files."""

from __future__ import annotations

import gc
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from clicktrail.cli.devmode import broker_hosts, is_loopback, require_safe_secrets
from clicktrail.cli.main import main
from clicktrail.config import ConfigError, Registry, load_registry, parse_registry
from clicktrail.config.secrets import EXAMPLE_SECRETS, judge, weak_secrets
from clicktrail.sinks.store import Store, StoreError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "clicktrail.example.yaml"
CLI = [sys.executable, "-m", "clicktrail.cli.main"]
SECRET_VARIABLES = (
    "CLICKTRAIL_CLICK_KEY",
    "ACME_POSTBACK_SECRET",
    "ACME_API_KEY",
    "CLICKTRAIL_DEV",
)
STRONG = "Zk3q9vN2xL7pR4tW8yB1cD6fH0jM5sQa"


@pytest.fixture(autouse=True)
def _no_secrets_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The outcome must not depend on what the shell running the tests exports; and
    ``main`` retunes the collector for a service, which a test process should not keep."""
    for name in SECRET_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(SECRET_VARIABLES) and k != "CLICKTRAIL_CONFIG"
    }
    return {**env, **extra}


def strong_registry(**changes: Any) -> dict[str, Any]:
    """A registry with a secret in every place one can be, all of them real."""
    data: dict[str, Any] = {
        "advertisers": {
            "acme": {
                "postback_secret": STRONG + "-pb",
                "api_keys": [STRONG + "-adv-new", STRONG + "-adv-old"],
            }
        },
        "partners": {"feed": {}},
        "sources": {"net": {"partner": "feed", "api_keys": [STRONG + "-src"]}},
        "privacy": {"ip_mode": "hash", "ip_hash_key": STRONG + "-ip"},
        "security": {"click_id_key": STRONG + "-click", "operator_token": STRONG + "-op"},
        "alerts": {
            "destinations": {
                "hook": {"kind": "webhook", "url": "https://h.example/", "secret": STRONG}
            }
        },
    }
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return data


# ------------------------------------------------------------------ the pure check


class TestWeakSecrets:
    def test_a_registry_of_real_secrets_passes(self) -> None:
        assert weak_secrets(parse_registry(strong_registry())) == []

    def test_the_example_registry_names_each_of_its_shipped_secrets(self) -> None:
        assert weak_secrets(load_registry(EXAMPLE)) == [
            "security.click_id_key is a shipped example secret",
            "advertisers.acme.postback_secret is a shipped example secret",
            "advertisers.acme.api_keys[0] is a shipped example secret",
        ]

    def test_the_code_default_click_key_is_shipped(self) -> None:
        assert weak_secrets(Registry()) == ["security.click_id_key is a shipped example secret"]

    @pytest.mark.parametrize(
        ("change", "value", "expected"),
        [
            ("security__click_id_key", "prod-click-key-CHANGE_ME-2026", "is a shipped"),
            ("security__click_id_key", "clicktrail-dev-click-key-change-me", "is a shipped"),
            ("advertisers__acme__postback_secret", "acme-dev-secret-change-me", "is a shipped"),
            ("advertisers__acme__postback_secret", "a-long-secret-changeme", "is a shipped"),
            ("advertisers__acme__api_keys__1", "old-key-change-me-please", "is a shipped"),
            ("sources__net__api_keys__0", "feed-key-Change-Me-0000", "is a shipped"),
            ("alerts__destinations__hook__secret", "", "is empty"),
            ("alerts__destinations__hook__secret", "short-secret", "is shorter than 16"),
            ("alerts__destinations__hook__secret", "change-me", "is a shipped"),
            ("privacy__ip_hash_key", "ip-hash-key-change-me", "is a shipped"),
            ("security__operator_token", "letmein", "is shorter than 16"),
        ],
    )
    def test_each_place_a_secret_lives_is_checked(
        self, change: str, value: str, expected: str
    ) -> None:
        key = re.sub(r"__(\d+)$", r"[\1]", change).replace("__", ".")
        found = weak_secrets(parse_registry(strong_registry(**{change: value})))
        assert len(found) == 1 and found[0].startswith(f"{key} {expected}"), found

    def test_an_absent_operator_token_or_webhook_secret_is_no_weak_secret(self) -> None:
        data = strong_registry(security__operator_token="")
        del data["alerts"]["destinations"]["hook"]["secret"]
        data["privacy"] = {"ip_mode": "truncate", "ip_hash_key": ""}
        assert weak_secrets(parse_registry(data)) == []

    def test_every_default_of_the_example_file_is_known_as_shipped(self) -> None:
        def strings(node: object) -> Iterator[str]:
            if isinstance(node, dict):
                node = list(node.values())
            if isinstance(node, list):
                for item in node:
                    yield from strings(item)
            elif isinstance(node, str):
                yield node

        data = yaml.safe_load(EXAMPLE.read_text("utf-8"))
        defaults = [d for s in strings(data) for d in re.findall(r"\$\{[A-Z0-9_]+:-([^}]*)\}", s)]
        assert defaults, "the example has no defaults any more: update EXAMPLE_SECRETS"
        assert set(defaults) == set(EXAMPLE_SECRETS)
        assert all(judge(value) == "is a shipped example secret" for value in defaults)


# ------------------------------------------------------------------ ${NAME} from $NAME_FILE


class TestSecretFiles:
    def test_name_file_supplies_the_value_when_name_is_unset(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        secret = tmp_path / "click_key"
        secret.write_text(STRONG + "\n", encoding="utf-8")
        monkeypatch.setenv("CLICKTRAIL_CLICK_KEY_FILE", str(secret))
        registry = load_registry(EXAMPLE)
        assert registry.security.click_id_key == STRONG
        assert weak_secrets(registry) == [
            "advertisers.acme.postback_secret is a shipped example secret",
            "advertisers.acme.api_keys[0] is a shipped example secret",
        ]
        monkeypatch.setenv("CLICKTRAIL_CLICK_KEY", "from-the-variable-0123456789")
        assert load_registry(EXAMPLE).security.click_id_key == "from-the-variable-0123456789"

    def test_only_one_newline_is_dropped(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (tmp_path / "k").write_bytes(f"{STRONG}\n\n".encode())
        monkeypatch.setenv("CLICKTRAIL_CLICK_KEY_FILE", str(tmp_path / "k"))
        assert load_registry(EXAMPLE).security.click_id_key == STRONG + "\n"

    def test_a_reference_without_default_resolves_from_the_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (tmp_path / "pb").write_text(STRONG, encoding="utf-8")
        monkeypatch.setenv("PB_SECRET_FILE", str(tmp_path / "pb"))
        data = {"advertisers": {"a": {"postback_secret": "${PB_SECRET}"}}}
        assert parse_registry(data).advertisers["a"].postback_secret == STRONG

    def test_an_unreadable_file_is_a_config_error_naming_it(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        missing = tmp_path / "absent"
        monkeypatch.setenv("CLICKTRAIL_CLICK_KEY_FILE", str(missing))
        with pytest.raises(ConfigError) as caught:
            load_registry(EXAMPLE)
        message = str(caught.value)
        assert "security.click_id_key" in message
        assert f"CLICKTRAIL_CLICK_KEY_FILE {missing}" in message


# ------------------------------------------------------------------ the CLI refuses


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("clicktrail: error: ")
    return lines[0]


class TestTheCliRefuses:
    def test_run_with_the_example_and_no_dev_exits_2_naming_each_key(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        store = tmp_path / "store"
        code = main(["run", "--config", str(EXAMPLE), "--store", f"chdb://{store}"])
        line = one_error_line(capsys)
        assert code == 2
        assert (
            "security.click_id_key is a shipped example secret, set CLICKTRAIL_CLICK_KEY "
            "(or CLICKTRAIL_CLICK_KEY_FILE)" in line
        )
        assert "advertisers.acme.postback_secret is a shipped example secret, set " in line
        assert line.endswith("or pass --dev on loopback")
        assert not store.exists(), "refused before the store was opened"

    @pytest.mark.parametrize("command", ["edge", "worker"])
    def test_edge_and_worker_refuse_the_example_too(
        self, command: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # an unreachable broker: the refusal comes before Kafka is touched
        code = main([command, "--config", str(EXAMPLE), "--broker", "127.0.0.1:9"])
        assert code == 2
        assert "security.click_id_key is a shipped example secret" in one_error_line(capsys)

    def test_dev_on_every_interface_is_refused(self, capsys: pytest.CaptureFixture[str]) -> None:
        code = main(["run", "--host", "0.0.0.0", "--dev", "--config", str(EXAMPLE)])
        assert code == 2
        assert "--dev (CLICKTRAIL_DEV) is only allowed on loopback" in one_error_line(capsys)

    def test_dev_from_the_environment_is_refused_beyond_loopback(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("CLICKTRAIL_DEV", "1")
        code = main(["edge", "--host", "10.1.2.3", "--config", str(EXAMPLE)])
        assert code == 2
        assert "not on 10.1.2.3" in one_error_line(capsys)

    def test_a_worker_in_dev_mode_needs_a_loopback_broker(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code = main(["worker", "--dev", "--broker", "kafka:9092", "--config", str(EXAMPLE)])
        assert code == 2
        assert "not on kafka" in one_error_line(capsys)

    def test_real_secrets_pass_without_dev_on_any_host(self) -> None:
        registry = parse_registry(strong_registry())
        require_safe_secrets(registry, config=None, dev=False, hosts=["0.0.0.0"], role="t")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback_means_this_machine_only(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_broker_hosts_are_read_from_the_bootstrap_list() -> None:
    assert broker_hosts("127.0.0.1:9092, [::1]:9093,kafka") == ["127.0.0.1", "[::1]", "kafka"]


def test_the_store_never_prints_the_clickhouse_password() -> None:
    with pytest.raises(StoreError) as caught:
        Store("http://clicktrail:pw-0123456789abcdef@127.0.0.1:9")
    assert "pw-0123456789abcdef" not in str(caught.value)
    assert "clicktrail:***@127.0.0.1:9" in str(caught.value)


# ------------------------------------------------------------------ as a process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_until_healthy(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Start ``clicktrail run`` on a free loopback port, wait for /healthz, SIGTERM it;
    its exit code and stderr."""
    port = free_port()
    service = subprocess.Popen(
        [*CLI, "run", "--port", str(port), "--store", f"chdb://{cwd / 'store'}", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert service.poll() is None, service.communicate()[1]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the service did not start"
                time.sleep(0.2)
    finally:
        service.send_signal(signal.SIGTERM)
        _, stderr = service.communicate(timeout=30)
    return service.returncode, stderr


def test_dev_on_loopback_starts_and_says_so_loudly(tmp_path: Path) -> None:
    code, stderr = serve_until_healthy(["--dev", "--config", str(EXAMPLE)], tmp_path, clean_env())
    assert code == 0, stderr
    assert '"event": "security.dev_mode"' in stderr
    assert "clicktrail: WARNING: dev mode:" in stderr
    warning = next(line for line in stderr.splitlines() if "WARNING: dev mode" in line)
    assert "security.click_id_key, advertisers.acme.postback_secret" in warning


def test_secrets_from_files_start_without_dev_and_without_warning(tmp_path: Path) -> None:
    files = {}
    for name in ("CLICKTRAIL_CLICK_KEY", "ACME_POSTBACK_SECRET", "ACME_API_KEY"):
        path = tmp_path / name.lower()
        path.write_text(f"{STRONG}-{name.lower()}\n", encoding="utf-8")
        files[f"{name}_FILE"] = str(path)
    code, stderr = serve_until_healthy(["--config", str(EXAMPLE)], tmp_path, clean_env(**files))
    assert code == 0, stderr
    assert "dev mode" not in stderr and "security.dev_mode" not in stderr
