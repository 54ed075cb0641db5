"""docker-compose.yml stays valid for users even though no engine runs it here."""

from __future__ import annotations

import fnmatch
import os
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


# ------------------------------------------------------------ Prometheus and Grafana

GRAFANA = ROOT / "deploy" / "grafana"
METRIC_DEFINITION = re.compile(
    r'(?:counter|family|histogram|gauge)\(\s*"(clicktrail_\w+)"|# TYPE (clicktrail_\w+) '
)
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def _emitted_metrics() -> set[str]:
    """Every metric family the code defines (registry calls and the edge's own lines)."""
    names: set[str] = set()
    for path in (ROOT / "src" / "clicktrail").rglob("*.py"):
        for match in METRIC_DEFINITION.finditer(path.read_text("utf-8")):
            names.add(match.group(1) or match.group(2))
    return names


def _yaml(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text("utf-8"))
    return data


def _datasources() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((GRAFANA / "provisioning" / "datasources").glob("*.yaml")):
        for source in _yaml(path)["datasources"]:
            found[source["uid"]] = source
    return found


def _dashboard() -> dict[str, Any]:
    import json

    data: dict[str, Any] = json.loads((GRAFANA / "dashboards" / "clicktrail.json").read_text())
    return data


def _panels() -> list[dict[str, Any]]:
    return [p for p in _dashboard()["panels"] if p["type"] != "row"]


def _flag(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_compose_starts_prometheus_and_grafana_from_pinned_images() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        image = service.get("image", "")
        if service.get("build"):
            continue
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"
    grafana = services["grafana"]
    assert "grafana-clickhouse-datasource@" in grafana["environment"]["GF_PLUGINS_PREINSTALL"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    dashboards = _yaml(GRAFANA / "provisioning" / "dashboards" / "clicktrail.yaml")
    path = dashboards["providers"][0]["options"]["path"]
    assert (ROOT / mounts[path]).resolve() == (GRAFANA / "dashboards").resolve()
    assert re.fullmatch(
        r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}",
        grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"],
    )
    example = (ROOT / "deploy" / ".env.example").read_text("utf-8")
    assert re.search(r"^GRAFANA_ADMIN_PASSWORD=\S*change-me", example, re.MULTILINE)
    prometheus = services["prometheus"]
    assert any(v.startswith("./deploy/prometheus/prometheus.yml:") for v in prometheus["volumes"])


def test_prometheus_scrapes_the_edge_and_every_worker_where_they_listen() -> None:
    services = _compose()["services"]
    config = _yaml(ROOT / "deploy" / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    edge = jobs["clicktrail-edge"]["static_configs"][0]["targets"]
    assert edge == [f"edge:{_flag(services['edge']['command'], '--port')}"]
    worker = jobs["clicktrail-worker"]["dns_sd_configs"][0]
    workers = sorted(name for name in services if name.startswith("worker"))
    assert sorted(worker["names"]) == workers, "every worker service is scraped"
    for name in workers:
        command = services[name]["command"]
        assert str(worker["port"]) == _flag(command, "--metrics-port")
        assert _flag(command, "--metrics-host") == "0.0.0.0"  # reachable from prometheus
        assert "ports" not in services[name], "worker metrics stay on the compose network"


def test_grafana_datasources_point_at_compose_services() -> None:
    services = _compose()["services"]
    sources = _datasources()
    assert sources["prometheus"]["type"] == "prometheus"
    assert sources["prometheus"]["url"] == "http://prometheus:9090"
    clickhouse = sources["clickhouse"]
    assert clickhouse["type"] == "grafana-clickhouse-datasource"
    settings = clickhouse["jsonData"]
    assert settings["host"] in services and (settings["protocol"], settings["port"]) == (
        "http",
        8123,
    )
    assert settings["username"] == services["clickhouse"]["environment"]["CLICKHOUSE_USER"]
    assert clickhouse["secureJsonData"]["password"] == "$CLICKHOUSE_PASSWORD"
    assert "CLICKHOUSE_PASSWORD" in services["grafana"]["environment"]


def test_every_dashboard_panel_uses_a_provisioned_datasource() -> None:
    sources = _datasources()
    panels = _panels()
    assert len(panels) >= 15
    assert len({p["id"] for p in _dashboard()["panels"]}) == len(_dashboard()["panels"])
    for panel in panels:
        uids = [panel["datasource"]["uid"], *(t["datasource"]["uid"] for t in panel["targets"])]
        for uid in uids:
            assert uid in sources, f"{panel['title']}: no datasource {uid}"
            assert sources[uid]["type"] == panel["datasource"]["type"], panel["title"]
        assert panel["targets"], panel["title"]


def test_every_metric_the_dashboard_queries_is_one_the_code_emits() -> None:
    emitted = _emitted_metrics()
    assert {"clicktrail_stage_messages_total", "clicktrail_consumer_lag_messages"} <= emitted
    queried: set[str] = set()
    for panel in _panels():
        for target in panel["targets"]:
            if "expr" in target:
                expr = target["expr"]
                depth = 0
                for char in expr:  # PromQL brackets balance (no promtool here)
                    depth += {"(": 1, ")": -1}.get(char, 0)
                    assert depth >= 0, expr
                assert depth == 0 and expr.count("[") == expr.count("]"), expr
                queried |= set(re.findall(r"\bclicktrail_\w+", expr))
    assert queried
    for name in sorted(queried):
        base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), name)
        assert name in emitted or base in emitted, f"the dashboard queries unknown {name}"
    for family in (
        "clicktrail_intake_events_total",
        "clicktrail_dead_letters_total",
        "clicktrail_sink_rows_written_total",
        "clicktrail_sink_insert_seconds",
        "clicktrail_sink_buffered_rows",
        "clicktrail_pipeline_watermark_lag_seconds",
        "clicktrail_alert_deliveries_total",
        "clicktrail_model_examples_total",
    ):
        assert any(q == family or q.startswith(family + "_") for q in queried), family


def test_business_panels_read_tables_the_migrations_create() -> None:
    schemas = "\n".join(p.read_text("utf-8") for p in (ROOT / "schemas" / "clickhouse").glob("*"))
    created = set(re.findall(r"CREATE .*?\{db\}\.(\w+)", schemas))
    business = [p for p in _panels() if p["datasource"]["uid"] == "clickhouse"]
    assert len(business) >= 3
    for panel in business:
        sql = panel["targets"][0]["rawSql"]
        tables = re.findall(r"\bclicktrail\.(\w+)", sql)
        assert tables, panel["title"]
        assert set(tables) <= created, panel["title"]


def test_operations_doc_lists_every_metric_the_code_emits() -> None:
    text = (ROOT / "docs" / "operations.md").read_text("utf-8")
    text += (ROOT / "docs" / "edge.md").read_text("utf-8")
    documented = set(re.findall(r"`(clicktrail_\w+)", text))
    emitted = _emitted_metrics()
    assert emitted - documented == set(), "metrics without a line in docs/operations.md"
    assert {n for n in documented if not n.endswith("_")} - emitted == set(), "stale docs"


def _seconds(duration: str) -> float:
    """A compose duration such as ``1m30s`` or ``45s``."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s|ms)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


def _workers() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in _compose()["services"].items()
        if service.get("command", [""])[0] == "worker"
    }


def _option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def _mounted_at(service: dict[str, Any], path: str) -> str:
    """The named volume a service mounts at ``path`` or above it."""
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if path == target or path.startswith(target.rstrip("/") + "/"):
            return str(source)
    raise AssertionError(f"nothing mounted at {path}")


def test_each_worker_keeps_its_state_on_a_volume_of_its_own() -> None:
    """Shared, the RocksDB tables of two workers and one model checkpoint overwritten by
    each; so workers are services of their own, and none can be scaled onto one volume."""
    workers = _workers()
    assert len(workers) >= 2, "the compose file shows how a second worker gets its state"
    volumes = []
    for name, service in workers.items():
        data_dir = _option(service["command"], "--data-dir")
        volume = _mounted_at(service, data_dir)
        assert volume in _compose()["volumes"], f"{name}: {data_dir} is not on a named volume"
        volumes.append(volume)
        assert service.get("container_name"), f"{name} could be run with --scale"
        assert "scale" not in service and "replicas" not in service.get("deploy", {})
    assert len(set(volumes)) == len(volumes), "two workers share a data volume"
    for name, service in _compose()["services"].items():
        for volume in service.get("volumes", []):
            writable = not volume.endswith(":ro")
            if name not in workers and volume.split(":")[0] in volumes:
                assert not writable, f"{name} writes into a worker's state"
    assert {_option(s["command"], "--partitions") for s in workers.values()} == {
        _option(_compose()["services"]["edge"]["command"], "--partitions")
    }, "the edge creates the topics with the partitions the workers expect"
    assert not any("--app-id" in s["command"] for s in workers.values()), "one group"


def test_kafka_keeps_its_topics_on_its_volume() -> None:
    kafka = _compose()["services"]["kafka"]
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"]
    assert _mounted_at(kafka, log_dirs) in _compose()["volumes"]
    assert kafka["environment"].get("CLUSTER_ID"), "formatted once, with one id"


def _python_check(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], test
    code = str(test[3])
    compile(code, "healthcheck", "exec")
    return code


def test_edge_and_workers_have_healthchecks_that_mean_something(tmp_path: Path) -> None:
    import subprocess
    import sys

    services = _compose()["services"]
    edge = services["edge"]
    port = _option(edge["command"], "--port")
    assert f"http://127.0.0.1:{port}/healthz" in _python_check(edge)
    from clicktrail.runtime.faust_app import ALIVE_FILE, ALIVE_SECONDS

    for name, worker in _workers().items():
        code = _python_check(worker)
        alive = f"{_option(worker['command'], '--data-dir')}/{ALIVE_FILE}"
        assert f"'{alive}'" in code, name
        stale_after = float(re.findall(r"> (\d+)", code)[0])
        assert stale_after >= 3 * ALIVE_SECONDS
        assert _seconds(worker["healthcheck"]["start_period"]) >= 60
        local = tmp_path / ALIVE_FILE
        run = [sys.executable, "-c", code.replace(alive, str(local))]
        assert subprocess.run(run, check=False).returncode != 0, "no file yet: unhealthy"
        local.touch()
        assert subprocess.run(run, check=False).returncode == 0, "fresh: healthy"
        old = local.stat().st_mtime - stale_after - 5
        os.utime(local, (old, old))
        assert subprocess.run(run, check=False).returncode != 0, "stale: unhealthy"


def test_stop_grace_outlasts_what_each_service_does_on_sigterm() -> None:
    """Docker sends SIGKILL after the grace (10 s unless set), the same 10 s the edge
    takes at most to ship or spool what it holds."""
    import inspect

    from clicktrail.bus.kafka import KafkaBus

    flush = inspect.signature(KafkaBus.close).parameters["timeout"].default
    services = _compose()["services"]
    assert _seconds(services["edge"]["stop_grace_period"]) >= flush + 10
    for name in _workers():
        assert _seconds(services[name]["stop_grace_period"]) > 10, name


def _ignored(patterns: list[str], path: str) -> bool:
    """Whether .dockerignore keeps ``path`` (or a directory above it) out of the context:
    the subset of Docker's pattern syntax the file uses (no ``!`` exceptions)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for line in patterns:
        assert not line.startswith("!"), "exceptions are not modelled here"
        pattern = line.rstrip("/")
        if pattern.startswith("**/"):
            tail = pattern[3:]
            if any(fnmatch.fnmatchcase(part, tail) for part in parts):
                return True
        elif any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            return True
    return False


def test_the_build_context_is_small_and_has_what_the_dockerfile_copies() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    copied = [m.split()[0] for m in re.findall(r"^COPY\s+(?!--)(.+)\s+\S+$", dockerfile, re.M)]
    for source in (s for line in copied for s in line.split()):
        assert not _ignored(patterns, source), f"{source} is copied but ignored"
    kept_out = [
        ".venv/bin/python",
        "var/x.yaml",
        ".git",
        ".env",
        "docs/images/a.png",
        "deploy/kafka/.cache/libs/kafka.jar",
        "src/clicktrail/__pycache__/a.pyc",
        ".mypy_cache/x",
        ".pytest_cache/x",
        ".ruff_cache/x",
        "tests/x.py",
    ]
    for path in kept_out:
        assert _ignored(patterns, path), path
    size = 0
    for directory, subdirs, files in os.walk(ROOT):
        here = os.path.relpath(directory, ROOT)
        here = "" if here == "." else here + "/"
        subdirs[:] = [d for d in subdirs if not _ignored(patterns, here + d)]
        size += sum(
            (Path(directory) / f).stat().st_size
            for f in files
            if not _ignored(patterns, here + f) and (Path(directory) / f).is_file()
        )
    assert size < 4_000_000, f"build context of {size / 1e6:.1f} MB"


# ------------------------------------------------------------ the cluster profile

CLUSTER_DIR = ROOT / "deploy" / "clickhouse-cluster"
DEFAULT_SERVICES = {
    "kafka",
    "clickhouse",
    "migrate",
    "edge",
    "worker",
    "worker-2",
    "prometheus",
    "grafana",
}


def _xml(path: Path) -> Any:
    from xml.etree import ElementTree

    return ElementTree.parse(path).getroot()


def _cluster_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in _compose()["services"].items()
        if "cluster" in service.get("profiles", [])
    }


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """container path -> host path (or volume) of a service's mounts."""
    return {v.split(":")[1]: v.split(":")[0] for v in service.get("volumes", [])}


def test_the_cluster_profile_leaves_the_default_services_as_they_were() -> None:
    services = _compose()["services"]
    default = {name for name, service in services.items() if "profiles" not in service}
    assert default == DEFAULT_SERVICES
    assert set(services) == DEFAULT_SERVICES | set(_cluster_services())
    for name in DEFAULT_SERVICES:
        for dependency in services[name].get("depends_on", {}):
            assert dependency in DEFAULT_SERVICES, f"{name} would start {dependency}"


def test_the_cluster_profile_has_keeper() -> None:
    services = _cluster_services()
    keeper = services["clickhouse-keeper"]
    assert keeper["image"].startswith("clickhouse/clickhouse-keeper:")
    keeper_config = _xml(ROOT / _mounts(keeper)["/etc/clickhouse-keeper/keeper_config.xml"])
    keeper_port = keeper_config.findtext("keeper_server/tcp_port")
    raft = keeper_config.findall("keeper_server/raft_configuration/server")
    assert [s.findtext("hostname") for s in raft] == ["clickhouse-keeper"]
    assert _mounted_at(keeper, str(keeper_config.findtext("keeper_server/log_storage_path")))
    assert _mounted_at(keeper, "/var/lib/clickhouse") in _compose()["volumes"]
    assert "9182" in " ".join(keeper["healthcheck"]["test"])
    assert keeper_config.findtext("keeper_server/http_control/port") == "9182"

    [zookeeper] = _xml(CLUSTER_DIR / "cluster.xml").findall("zookeeper/node")
    assert (zookeeper.findtext("host"), zookeeper.findtext("port")) == (
        "clickhouse-keeper",
        keeper_port,
    )


def test_the_cluster_has_two_shards_of_two_replicas_each_with_its_macros_and_volume() -> None:
    services = _cluster_services()
    nodes = {
        n: s
        for n, s in services.items()
        if s.get("image", "").startswith("clickhouse/clickhouse-server:")
    }
    assert len(nodes) == 4
    cluster_config = _xml(CLUSTER_DIR / "cluster.xml")
    migrate = services["migrate-cluster"]
    name = _option(migrate["command"], "--cluster")
    build_parser().parse_args(migrate["command"])
    [cluster] = cluster_config.findall(f"remote_servers/{name}")
    shards = cluster.findall("shard")
    assert len(shards) == 2
    seen: dict[str, tuple[str, str]] = {}
    for shard in shards:
        assert shard.findtext("internal_replication") == "true"
        replicas = shard.findall("replica")
        assert len(replicas) == 2
        for replica in replicas:
            host = replica.findtext("host")
            assert host in nodes and host not in seen, host
            assert replica.findtext("port") == "9000"
            assert replica.findtext("user") == nodes[host]["environment"]["CLICKHOUSE_USER"]
            assert replica.find("password").get("from_env") == "CLICKHOUSE_PASSWORD"  # type: ignore[union-attr]
            seen[host] = (str(shards.index(shard)), host)
    assert set(seen) == set(nodes)

    macros_by_shard: dict[str, set[str]] = {}
    volumes = set()
    for host, node in nodes.items():
        mounts = _mounts(node)
        assert mounts["/etc/clickhouse-server/config.d/cluster.xml"].endswith("/cluster.xml")
        assert mounts["/etc/clickhouse-server/users.d/cluster-profile.xml"].endswith("/profile.xml")
        macros_file = ROOT / mounts["/etc/clickhouse-server/config.d/macros.xml"]
        assert macros_file.parent == CLUSTER_DIR / "macros" and macros_file.stem == host
        macros = _xml(macros_file)
        shard_macro = macros.findtext("macros/shard")
        replica_macro = macros.findtext("macros/replica")
        assert shard_macro and replica_macro
        assert macros.findtext("interserver_http_host") == host == node["hostname"]
        # the replicas of one shard share its macro; no two replicas share a name
        shard_index = seen[host][0]
        macros_by_shard.setdefault(shard_index, set()).add(shard_macro)
        assert replica_macro == host
        volume = _mounted_at(node, "/var/lib/clickhouse")
        assert volume in _compose()["volumes"]
        volumes.add(volume)
        assert node["depends_on"]["clickhouse-keeper"]["condition"] == "service_healthy"
    assert volumes.isdisjoint(
        {_mounted_at(_compose()["services"]["clickhouse"], "/var/lib/clickhouse")}
    )
    assert len(volumes) == 4, "every node keeps its data on a volume of its own"
    assert all(len(m) == 1 for m in macros_by_shard.values())
    assert len({m for ms in macros_by_shard.values() for m in ms}) == 2


def test_the_cluster_migrate_runs_once_all_nodes_and_keeper_are_healthy() -> None:
    services = _cluster_services()
    migrate = services["migrate-cluster"]
    assert migrate["image"] == "clicktrail:latest" and migrate["restart"] == "no"
    assert migrate["command"][:2] == ["migrate", "--cluster"]
    waits_for = {n for n, d in migrate["depends_on"].items() if d["condition"] == "service_healthy"}
    assert waits_for == set(services) - {"migrate-cluster"}
    store = migrate["environment"]["CLICKTRAIL_STORE"]
    host = re.search(r"@([\w-]+):8123$", store)
    assert host and host[1] in services
    assert store.startswith("http://clicktrail:${CLICKHOUSE_PASSWORD:?")


def test_the_cluster_profile_settings_make_inserts_readable_at_once() -> None:
    """The sink reads back its high-water marks: an acknowledged insert is on the shards
    (foreground) and on both replicas (quorum) before the next read."""
    profile = _xml(CLUSTER_DIR / "profile.xml").find("profiles/default")
    assert profile is not None
    assert profile.findtext("distributed_foreground_insert") == "1"
    assert profile.findtext("insert_quorum") == "2"
