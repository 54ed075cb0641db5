"""The ``clicktrail`` command as a user runs it: separate processes, real chDB store."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from clicktrail.cli import main
from clicktrail.config import load_registry
from clicktrail.edge.app import build_app
from clicktrail.edge.serve import serve_in_thread
from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.sinks.store import Store

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "clicktrail.example.yaml"

CLI = [sys.executable, "-m", "clicktrail.cli.main"]
COMMANDS = [
    "run",
    "replay",
    "import-insights",
    "import-sales",
    "reconcile",
    "query",
    "migrate",
    "schemas",
    "check-config",
]

MIXED = [
    '{"type":"impression","event_id":"i1","ts":"2026-03-01T10:00:00Z","impression_id":"imp-1",'
    '"campaign_id":"acme-brand-search","partner_id":"agency-search","channel":"search",'
    '"keyword":"acme shoes","user":{"ip":"203.0.113.77","country":"DE"}}',
    '{"type":"click","event_id":"c1","ts":"2026-03-01T10:00:05Z","click_id":"clk-1",'
    '"campaign_id":"acme-brand-search","partner_id":"agency-search","user":{"user_id":"u1"}}',
    '{"type":"click","event_id":"c2","ts":1772359210000,"click_id":"clk-2",'
    '"campaign_id":"acme-brand-search","partner_id":"aff-coupons"}',
    '{"type":"conversion","event_id":"v1","ts":"2026-03-01T10:10:00Z","click_id":"clk-1",'
    '"action":"purchase","revenue":49.9,"payout":5}',
    "this is not json",
    '{"type":"refund","event_id":"x1"}',
    '{"type":"click","event_id":"c3","ts":"2026-03-01T10:00:05Z","campaign_id":"c"}',
    "",
    '{"type":"click","event_id":"c4","ts":"2099-01-01T00:00:00Z","click_id":"k",'
    '"campaign_id":"c","partner_id":"p"}',
]


def cli(
    *args: str, cwd: Path, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "CLICKTRAIL_CONFIG": str(EXAMPLE_CONFIG)},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}: {result.stderr}")
    return result


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, tmp_path: Path) -> None:
    result = cli(command, "--help", cwd=tmp_path)
    assert "usage: clicktrail" in result.stdout
    assert "--store" in result.stdout or command in (
        "schemas",
        "check-config",
        "import-insights",
        "import-sales",
    )


def test_replay_lands_valid_events_and_dead_letters_the_rest(tmp_path: Path) -> None:
    events = tmp_path / "mixed.jsonl"
    events.write_text("\n".join(MIXED) + "\n", encoding="utf-8")
    result = cli("replay", str(events), cwd=tmp_path)
    assert result.stdout.startswith("read 8, accepted 4, dead-lettered 4")
    assert "invalid_json: 1" in result.stdout and "future_timestamp: 1" in result.stdout

    clicks = cli("query", "SELECT count() FROM clicktrail.clicks", "--format", "csv", cwd=tmp_path)
    assert clicks.stdout.splitlines() == ['"count()"', "2"]
    letters = cli(
        "query",
        "SELECT reason, source FROM clicktrail.dead_letters ORDER BY source",
        "--format",
        "json",
        cwd=tmp_path,
    )
    rows = [json.loads(line) for line in letters.stdout.splitlines()]
    assert rows == [
        {"reason": "invalid_json", "source": "replay:mixed.jsonl:5"},
        {"reason": "unknown_type", "source": "replay:mixed.jsonl:6"},
        {"reason": "invalid_field", "source": "replay:mixed.jsonl:7"},
        {"reason": "future_timestamp", "source": "replay:mixed.jsonl:9"},
    ]
    ip = cli("query", "SELECT ip FROM clicktrail.impressions", "--format", "csv", cwd=tmp_path)
    assert ip.stdout.splitlines()[1] == '"203.0.113.0"', "raw IPs never reach a table"
    table = cli("query", "SELECT event_id FROM clicktrail.clicks ORDER BY event_id", cwd=tmp_path)
    assert table.stdout.splitlines() == ["event_id", "--------", "c1", "c2", "(2 rows)"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["replay", "absent.jsonl"], 2, "no such file: absent.jsonl"),
        (["replay", "x.jsonl", "--config", "bad.yaml"], 2, "brands.acme.advertiser"),
        (["query", "SELECT 1", "--store", "http://127.0.0.1:9"], 1, "cannot open store"),
        (["query", "SELECT nonsense("], 1, "store error: cannot parse the statement"),
        (["query", "DROP DATABASE default"], 1, "only SELECT statements are served, not DROP"),
        (["query", "SELECT 1; DROP DATABASE default"], 1, "without ';' between two"),
        (["migrate", "--store", "mysql://db"], 1, "unsupported store"),
        (["check-config", "bad.yaml"], 2, "unknown advertiser 'ghost'"),
    ],
)
def test_mistakes_get_one_clear_line(
    args: list[str], code: int, message: str, tmp_path: Path
) -> None:
    (tmp_path / "x.jsonl").write_text(MIXED[1] + "\n", encoding="utf-8")
    (tmp_path / "bad.yaml").write_text(
        "advertisers: {a: {postback_secret: 0123456789abcdef}}\n"
        "brands: {acme: {advertiser: ghost, terms: [acme]}}\n",
        encoding="utf-8",
    )
    result = cli(*args, cwd=tmp_path, check=False)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


API_KEY = "acme-dev-api-key-change-me"


def post(url: str, body: bytes, content_type: str) -> tuple[int, dict[str, object]]:
    headers = {"content-type": content_type, "authorization": f"Bearer {API_KEY}"}
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_run_serves_intake_and_query_goes_through_it(tmp_path: Path) -> None:
    port = free_port()
    service = subprocess.Popen(
        [*CLI, "run", "--dev", "--port", str(port), "--config", str(EXAMPLE_CONFIG)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert service.stdout is not None
        banner = service.stdout.readline()
        assert f"listening on http://127.0.0.1:{port}" in banner
        assert "curl" in service.stdout.readline() + service.stdout.readline()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:
                    assert response.read() == b"ready"
                    break
            except OSError:
                assert time.monotonic() < deadline, "service did not become ready"
                time.sleep(0.2)

        body = "\n".join(MIXED[:3] + MIXED[6:7]).encode()
        status, answer = post(f"{base}/v1/events", body, "application/x-ndjson")
        assert status == 200
        assert answer["accepted"] == 3
        assert answer["rejected"] == [
            {
                "index": 3,
                "error": "invalid_field",
                "message": "click_id: Field required; partner_id: Field required",
            }
        ]
        status, answer = post(f"{base}/v1/events", b"[{", "application/json")
        assert (status, answer["error"]) == (400, "invalid_json")
        status, answer = post(f"{base}/v1/events", b"a=b", "application/x-www-form-urlencoded")
        assert (status, answer["error"]) == (415, "unsupported_media_type")

        deadline = time.monotonic() + 10
        while True:  # the sink flushes on a short timer
            result = cli(
                "query", "SELECT count() FROM clicktrail.clicks", "--format", "csv", cwd=tmp_path
            )
            if result.stdout.splitlines()[1] == "2":
                break
            assert time.monotonic() < deadline, result.stdout
            time.sleep(0.3)
        letters = cli(
            "query",
            "SELECT reason FROM clicktrail.dead_letters ORDER BY reason",
            "--format",
            "csv",
            cwd=tmp_path,
        )
        assert letters.stdout.splitlines()[1:] == ['"invalid_field"', '"invalid_json"']
        refused = cli("query", "DROP TABLE clicktrail.clicks", cwd=tmp_path, check=False)
        assert refused.returncode == 1 and "only SELECT statements" in refused.stderr
    finally:
        service.send_signal(signal.SIGTERM)
        _, stderr = service.communicate(timeout=30)
    assert service.returncode == 0, stderr
    assert not (tmp_path / "var" / "clicktrail" / "clicktrail-service.json").exists()


EXPORT = (
    "date,account,campaign,keyword,display_domain,impression_share,overlap_rate,"
    "position_above_rate,outranking_share\n"
    "2026-03-01,acme-google-ads,acme-brand-search,acme shoes,acme.example,0.3,0.4,0.2,0.6\n"
    "2026-03-01,acme-google-ads,acme-brand-search,acme shoes,rival-shoes.example,0.5,0.5,--,0.5\n"
)
MALFORMED = EXPORT + "2026-03-02,acme-google-ads,acme-brand-search,acme,acme.example,0.3,lots,,\n"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["absent.csv"], 2, "cannot read absent.csv"),
        (["bad.csv"], 2, "bad.csv: row 4, column 'overlap_rate': 'lots' is not a number"),
        (["latin1.csv"], 2, "latin1.csv is not UTF-8 text"),
        (["header.csv"], 2, "header.csv has a header and no rows"),
        (["good.csv", "--url", "ftp://127.0.0.1"], 2, "--url must be http(s)://HOST[:PORT]"),
        (["good.csv", "--url", "http://127.0.0.1:9"], 2, "an API key is needed"),
        (["good.csv", "--url", "http://127.0.0.1:9", "--api-key", "k" * 32], 1, "did not answer"),
    ],
)
def test_import_insights_mistakes_get_one_clear_line(
    args: list[str], code: int, message: str, tmp_path: Path
) -> None:
    (tmp_path / "good.csv").write_text(EXPORT, encoding="utf-8")
    (tmp_path / "bad.csv").write_text(MALFORMED, encoding="utf-8")
    (tmp_path / "latin1.csv").write_bytes(EXPORT.replace("shoes", "chaussures à").encode("latin-1"))
    (tmp_path / "header.csv").write_text(EXPORT.splitlines()[0] + "\n", encoding="utf-8")
    result = cli("import-insights", *args, cwd=tmp_path, check=False)
    assert result.returncode == code, result.stderr
    assert result.stderr == f"clicktrail: error: {message}\n" or message in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_import_insights_posts_to_a_running_edge(tmp_path: Path, store: Store) -> None:
    """The command against the embedded service: the rows arrive; a malformed file never does."""
    (tmp_path / "good.csv").write_text(EXPORT, encoding="utf-8")
    (tmp_path / "bad.csv").write_text(MALFORMED, encoding="utf-8")
    runtime = EmbeddedRuntime(load_registry(EXAMPLE_CONFIG), store)
    with serve_in_thread(build_app(runtime)) as base:
        key = ("--api-key", API_KEY)
        result = cli("import-insights", "good.csv", "--url", base, *key, cwd=tmp_path)
        assert result.stdout == f"accepted 2 auction-insights rows from good.csv ({base})\n"
        published = runtime.bus.published
        refused = cli("import-insights", "bad.csv", "--url", base, *key, cwd=tmp_path, check=False)
        assert refused.returncode == 2 and "row 4, column 'overlap_rate'" in refused.stderr
        assert runtime.bus.published == published
    rows = store.rows(
        f"SELECT offender_id, signal, insight_rows FROM {store.database}.brand_conflicts FINAL"
    )
    assert rows == [("acme.example", "auction_insights", 1)]


def test_replay_takes_a_simulate_directory_and_exports(tmp_path: Path) -> None:
    """A directory is its events.jsonl then its auction_insights.csv; a bad export stops it."""
    sim = tmp_path / "sim"
    sim.mkdir()
    (sim / "events.jsonl").write_text("\n".join(MIXED[:4]) + "\n", encoding="utf-8")
    (sim / "auction_insights.csv").write_text(EXPORT, encoding="utf-8")
    (tmp_path / "bad.csv").write_text(MALFORMED, encoding="utf-8")

    refused = cli("replay", "bad.csv", cwd=tmp_path, check=False)
    assert refused.returncode == 2
    assert refused.stderr == (
        "clicktrail: error: bad.csv: row 4, column 'overlap_rate': 'lots' is not a number\n"
    )
    empty = cli("replay", str(tmp_path), cwd=tmp_path, check=False)
    assert empty.returncode == 2 and "without events.jsonl or auction_insights.csv" in empty.stderr

    result = cli("replay", "sim", cwd=tmp_path)
    assert result.stdout == "read 4, accepted 4, dead-lettered 0; 2 auction-insights rows\n"
    conflicts = cli(
        "query",
        "SELECT offender_id, signal FROM clicktrail.brand_conflicts FINAL "
        "WHERE offender_kind = 'domain'",
        "--format",
        "csv",
        cwd=tmp_path,
    )
    assert conflicts.stdout.splitlines()[1:] == ['"acme.example","auction_insights"']


def without_config(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CLICKTRAIL_CONFIG"}
    return subprocess.run(
        [*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False, env=env
    )


def test_a_replay_without_a_registry_says_so_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text(MIXED[1] + "\n", encoding="utf-8")
    alone = without_config("replay", "x.jsonl", cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr
    warnings = [line for line in alone.stderr.splitlines() if "warning" in line]
    assert warnings == [main.NO_REGISTRY]
    assert main.NO_REGISTRY.startswith("clicktrail: warning: no registry (--config or ")
    configured = cli("replay", "x.jsonl", cwd=tmp_path)  # $CLICKTRAIL_CONFIG names one
    assert "warning" not in configured.stderr


@pytest.mark.parametrize(
    ("argv", "handler"),
    [
        (["run"], "clicktrail.cli.commands.run"),
        (["replay", "x.jsonl"], "clicktrail.cli.commands.replay"),
        (["worker"], "clicktrail.cli.main._guarded_worker"),
        (["edge"], "clicktrail.edge.cli.edge"),
    ],
)
def test_every_command_that_takes_a_registry_warns_once_without_one(
    argv: list[str],
    handler: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """In-process, the command's work replaced by a stub: what it is handed, what it says."""
    seen: list[object] = []
    monkeypatch.setattr(handler, lambda args: seen.append(args.config) or 0)
    monkeypatch.delenv("CLICKTRAIL_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.jsonl").write_text(MIXED[1] + "\n", encoding="utf-8")
    assert main.main(argv) == 0
    assert seen == [None]
    assert capsys.readouterr().err.splitlines().count(main.NO_REGISTRY) == 1

    monkeypatch.setenv("CLICKTRAIL_CONFIG", str(EXAMPLE_CONFIG))
    assert main.main(argv) == 0
    assert seen[-1] == str(EXAMPLE_CONFIG)
    assert main.NO_REGISTRY not in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["migrate"], ["check-config", str(EXAMPLE_CONFIG)]])
def test_commands_that_need_no_registry_do_not_warn(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = without_config(*argv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr


def test_a_simulate_directory_brings_its_registry(tmp_path: Path) -> None:
    """Its registry.yaml is the world its events were made in: it goes before
    $CLICKTRAIL_CONFIG, and --config still goes before it."""
    sim = tmp_path / "sim"
    sim.mkdir()
    (sim / "events.jsonl").write_text(SIM_CLICK + "\n", encoding="utf-8")
    (sim / "registry.yaml").write_text(SIM_REGISTRY, encoding="utf-8")

    own = cli("replay", "sim", cwd=tmp_path)  # $CLICKTRAIL_CONFIG names the example
    assert own.stdout.startswith("read 1, accepted 1, dead-lettered 0"), own.stdout
    assert own.stderr.splitlines()[0] == (
        "clicktrail: registry sim/registry.yaml (the simulation's; --config names another)"
    )
    named = cli(
        "replay", "--config", str(EXAMPLE_CONFIG), "sim", "--store", "chdb://s2", cwd=tmp_path
    )
    assert "registry sim/registry.yaml" not in named.stderr
    unknown = "SELECT count() FROM clicktrail.fraud_verdicts WHERE has(reasons, 'unknown_partner')"
    for store, flagged in (("chdb://var/clicktrail", "0"), ("chdb://s2", "1")):
        answer = cli("query", unknown, "--store", store, "--format", "tsv", cwd=tmp_path)
        assert answer.stdout.split()[-1] == flagged, "the example registry lists no sim-aff"

    other = tmp_path / "other"
    other.mkdir()
    (other / "events.jsonl").write_text(SIM_CLICK + "\n", encoding="utf-8")
    (other / "registry.yaml").write_text(SIM_REGISTRY + "# another world\n", encoding="utf-8")
    both = cli("replay", "sim", "other", cwd=tmp_path, check=False)
    assert both.returncode == 2
    assert both.stderr.startswith("clicktrail: error: the directories hold different registries")


SIM_REGISTRY = (
    "advertisers: {sim-shop: {postback_secret: sim-shop-secret-0123456789}}\n"
    "campaigns: {sim-search: {advertiser: sim-shop, landing_url: 'https://shop.example/'}}\n"
    "partners: {sim-aff: {}}\n"
)
SIM_CLICK = (
    '{"type":"click","event_id":"s1","ts":"2026-03-01T10:00:05Z","click_id":"sim-clk-1",'
    '"campaign_id":"sim-search","partner_id":"sim-aff","user":{"user_id":"u1"}}'
)
