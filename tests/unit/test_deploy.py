"""docker-compose.yml stays valid for users even though no engine runs it here."""

from __future__ import annotations

from pathlib import Path

import yaml

from clicktrail.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]


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
        assert volume in compose["volumes"]


def test_dockerfile_copies_what_the_package_needs() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    for needed in ("pyproject.toml", "src", "schemas"):
        assert f"COPY {needed}" in dockerfile
