"""docker-compose.yml stays valid for users even though no engine runs it here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from clicktrail.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
_MESSAGE = "set {} in .env (see deploy/.env.example)"


def _subcommands() -> set[str]:
    parser = build_parser()
    actions = [a for a in parser._actions if a.dest == "command"]
    return set(actions[0].choices)  # type: ignore[arg-type]


def test_compose_services_use_existing_commands_and_files() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"kafka", "clickhouse", "migrate", "edge", "worker"} <= set(services)
    known = _subcommands()
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        if service.get("image") == "clicktrail:latest":
            assert service["command"][0] in known, f"{name}: unknown command"
            build_parser().parse_args(service["command"])  # every flag exists and parses
            assert (ROOT / service["build"]["dockerfile"]).is_file()
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on missing {dependency}"
    for volume in (v.split(":")[0] for s in services.values() for v in s.get("volumes", [])):
        if not volume.startswith((".", "/", "$")):  # a bind mount is no named volume
            assert volume in compose["volumes"]


def test_dockerfile_copies_what_the_package_needs() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    for needed in ("pyproject.toml", "src", "schemas"):
        assert f"COPY {needed}" in dockerfile


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    return data


def test_compose_publishes_nothing_beyond_loopback() -> None:
    """A published port without an address listens on every interface of the host."""
    for name, service in _compose()["services"].items():
        for port in service.get("ports", []):
            assert isinstance(port, str), f"{name}: use the short form HOST_IP:PORT:PORT"
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_compose_gives_clickhouse_a_password_from_the_environment() -> None:
    services = _compose()["services"]
    clickhouse = services["clickhouse"]["environment"]
    assert clickhouse["CLICKHOUSE_USER"] not in ("", "default")
    assert re.fullmatch(r"\$\{CLICKHOUSE_PASSWORD:\?[^}]+\}", clickhouse["CLICKHOUSE_PASSWORD"])
    for name in ("migrate", "worker"):  # the services that write to ClickHouse use it
        dsn = services[name]["environment"]["CLICKTRAIL_STORE"]
        assert dsn.startswith(f"http://{clickhouse['CLICKHOUSE_USER']}:${{CLICKHOUSE_PASSWORD:?")
    assert "CLICKTRAIL_STORE" not in services["edge"]["environment"], "the edge needs no store"


def test_compose_takes_every_secret_from_the_environment_and_never_dev_mode() -> None:
    services = _compose()["services"]
    for name in ("edge", "worker"):
        service = services[name]
        assert "--dev" not in service["command"], f"{name} is not on loopback"
        environment = service["environment"]
        assert "CLICKTRAIL_DEV" not in environment
        for variable in ("CLICKTRAIL_CLICK_KEY", "ACME_POSTBACK_SECRET", "ACME_API_KEY"):
            assert environment[variable] == f"${{{variable}:?{_MESSAGE.format(variable)}}}"
    example = (ROOT / "deploy" / ".env.example").read_text("utf-8")
    for variable in (
        "CLICKHOUSE_PASSWORD",
        "CLICKTRAIL_CLICK_KEY",
        "ACME_POSTBACK_SECRET",
        "ACME_API_KEY",
    ):
        assert re.search(rf"^{variable}=\S*change-me", example, re.MULTILINE), variable
    assert "secrets.token_urlsafe(32)" in example


def test_dockerfile_runs_as_a_user_of_its_own_and_bakes_no_secret() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users, "the image runs as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert not re.search(r"^(ENV|ARG)\s.*(SECRET|KEY|PASSWORD|TOKEN)", dockerfile, re.M | re.I)


def test_dockerignore_keeps_local_state_out_of_the_build() -> None:
    patterns = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for needed in (".venv", "var", ".git", ".env", "tests"):
        assert needed in patterns, needed
