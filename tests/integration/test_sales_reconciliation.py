"""Reconciliation with sales, end to end: a simulated day through the embedded runtime into
a real chDB store, then the advertiser's own order export, planted with known
differences, through ``POST /v1/sales``."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from clicktrail.config import parse_registry
from clicktrail.edge.app import EdgeApp, build_app
from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.runtime.replay import replay
from clicktrail.simulate.runner import simulate
from clicktrail.simulate.scenarios import Options
from clicktrail.sinks.migrations import migrate
from clicktrail.sinks.store import Store

ADVERTISER = "northwind"
KEYS = {"northwind": "northwind-sales-key-0123456789", "bluefin": "bluefin-sales-key-0123456789"}
OPERATOR = "sales-operator-token-0123456789"


@dataclass
class World:
    runtime: EmbeddedRuntime
    store: Store
    app: EdgeApp
    registry_file: Path
    exports: list[bytes] = field(default_factory=list)

    def post(
        self,
        body: bytes,
        *,
        key: str | None = KEYS[ADVERTISER],
        content_type: str = "text/csv",
        query: str = "",
    ) -> tuple[int, Any]:
        headers = [(b"content-type", content_type.encode())]
        if key is not None:
            headers.append((b"authorization", f"Bearer {key}".encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/sales",
            "raw_path": b"/v1/sales",
            "root_path": "",
            "query_string": query.encode(),
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8080),
        }
        incoming = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return incoming.pop(0) if incoming else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        asyncio.run(self.app(scope, receive, send))
        body_out = b"".join(m.get("body", b"") for m in sent[1:])
        return int(sent[0]["status"]), orjson.loads(body_out)

    def settle(self) -> None:
        """What ``clicktrail run`` does in the background: process the bus, write it out."""
        self.runtime.process()
        self.runtime.flush()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.store.rows(sql.replace("{db}", self.store.database))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, chdb_dsn: str) -> Iterator[World]:
    out = tmp_path_factory.mktemp("sales") / "sim"
    simulate(Options(out=out, events=3_000, seed=3, days=1.0))
    data = yaml.safe_load((out / "registry.yaml").read_text(encoding="utf-8"))
    for name, key in KEYS.items():
        data["advertisers"][name]["api_keys"] = [key]
    data.setdefault("security", {})["operator_token"] = OPERATOR
    registry = parse_registry(data)
    store = Store(chdb_dsn, f"t_{uuid.uuid4().hex[:12]}")
    migrate(store)
    runtime = EmbeddedRuntime(registry, store)
    replay(runtime, [str(out / "events.jsonl")])
    runtime.bus.begin_source(f"run:{uuid.uuid4().hex[:8]}")  # the service, after a backfill
    yield World(runtime, store, build_app(runtime, query_token=OPERATOR), out / "registry.yaml")
    store.command(f"DROP DATABASE IF EXISTS {store.database}")


@dataclass
class Conversion:
    conversion_id: str
    txid: str
    ts: str
    status: str
    revenue: float
    payout: float
    currency: str
    partner: str


@dataclass
class Plan:
    """The export and what each partner's summary must say about it."""

    csv: bytes
    refunded: list[Conversion]
    changed: dict[str, float]
    expected: dict[str, Counter[str]] = field(default_factory=dict)
    at_risk: Counter[str] = field(default_factory=Counter)


def tracked(world: World) -> list[Conversion]:
    rows = world.rows(
        "SELECT conversion_id, txid, toString(toDate(min(conversion_ts))), "
        "toString(min(conversion_ts)), argMax(status, version), sum(toFloat64(revenue)), "
        "sum(toFloat64(payout)), any(currency), argMax(partner_id, weight) "
        "FROM {db}.attributed_latest WHERE advertiser_id = 'northwind' AND action = 'purchase' "
        "GROUP BY conversion_id, txid ORDER BY txid"
    )
    return [Conversion(r[0], r[1], r[3], r[4], r[5], r[6], r[7], r[8]) for r in rows]


WORDS = {"approved": "Paid", "pending": "processing", "rejected": "Cancelled"}


def plan(conversions: list[Conversion]) -> Plan:
    """Three removed (tracked, never sold), three sold for 5 more, two refunded, one in
    another currency, two orders nothing tracked; the rest as tracked."""
    inner = sorted(conversions, key=lambda c: c.ts)[1:-1]  # inside the export's days
    live = [c for c in inner if c.status != "rejected"]
    removed, changed, refunded, other = live[:3], live[3:6], live[6:8], live[8]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Order ID", "Created_At", "Total", "Currency", "Status", "Note"])
    expected: dict[str, Counter[str]] = {}
    at_risk: Counter[str] = Counter()
    for c in conversions:
        count = expected.setdefault(c.partner, Counter())
        if c in removed:
            count["tracked_not_sold"] += 1
            at_risk[c.partner] += c.payout
            continue
        amount, currency, status = c.revenue, c.currency, WORDS[c.status]
        if c in changed:
            amount += 5
            count["amount_differences"] += 1
            count["matched"] += 1
        elif c in refunded or c.status == "rejected":
            status = "refunded" if c in refunded else status
            count["refunded"] += 1
            if c.status != "rejected":
                at_risk[c.partner] += c.payout
        elif c is other:
            currency = "GBP"
            count["currency_mismatches"] += 1
            count["matched"] += 1
        else:
            count["matched"] += 1
        writer.writerow([c.txid, c.ts[:10], f"{amount:.2f}", currency, status, "x"])
    for n in (1, 2):
        writer.writerow([f"EXTRA-{n}", inner[0].ts[:10], "19.99", "EUR", "shipped", ""])
    expected.setdefault("", Counter())["sold_not_tracked"] += 2
    return Plan(
        out.getvalue().encode(),
        refunded,
        {c.conversion_id: round(c.revenue + 5, 2) for c in changed},
        expected,
        at_risk,
    )


def summary(world: World) -> tuple[dict[str, Counter[str]], Counter[str]]:
    rows = world.rows(
        "SELECT partner_id, matched, refunded, tracked_not_sold, sold_not_tracked, "
        "amount_differences, currency_mismatches, toFloat64(payout_at_risk) "
        "FROM {db}.reconciliation_summary WHERE advertiser_id = 'northwind'"
    )
    names = (
        "matched",
        "refunded",
        "tracked_not_sold",
        "sold_not_tracked",
        "amount_differences",
        "currency_mismatches",
    )
    counts: dict[str, Counter[str]] = {}
    risk: Counter[str] = Counter()
    for partner, *values, payout in rows:
        count = counts.setdefault(partner, Counter())
        for name, value in zip(names, values, strict=True):
            if value:
                count[name] += value
        risk[partner] += payout
    return counts, risk


def state(world: World) -> list[tuple[Any, ...]]:
    return world.rows(
        "SELECT conversion_id, status, version, toFloat64(revenue), toFloat64(payout) "
        "FROM {db}.attributed_latest WHERE advertiser_id = 'northwind' ORDER BY conversion_id"
    )


def rollups_agree(world: World) -> None:
    """The hourly rollups, fed by the versions' differences, equal the latest rows."""
    latest = world.rows(
        "SELECT partner_id, round(sum(weight * (status = 'approved')), 6), "
        "round(sum(toFloat64(revenue)), 4) FROM {db}.attributed_latest "
        "WHERE action = 'purchase' GROUP BY partner_id ORDER BY partner_id"
    )
    rolled = world.rows(
        "SELECT partner_id, round(sum(approved), 6), round(sum(toFloat64(revenue)), 4) "
        "FROM {db}.agg_hourly WHERE action = 'purchase' GROUP BY partner_id "
        "HAVING sum(conversions) != 0 OR sum(approved) != 0 ORDER BY partner_id"
    )
    assert rolled == latest


def test_an_export_is_matched_and_updates_conversions_once(world: World) -> None:
    conversions = tracked(world)
    assert len(conversions) >= 20
    planted = plan(conversions)
    world.exports.append(planted.csv)
    before = {row[0]: row for row in state(world)}

    status, answer = world.post(planted.csv)
    assert status == 200, answer
    assert answer["accepted"] == len(conversions) - 3 + 2
    assert answer["rejected"] == []
    world.settle()

    counts, risk = summary(world)
    assert counts == {p: c for p, c in planted.expected.items() if c}
    for partner, payout in planted.at_risk.items():
        assert risk[partner] == pytest.approx(payout, abs=1e-6)

    after = {row[0]: row for row in state(world)}
    for c in planted.refunded:
        assert after[c.conversion_id][1] == "rejected"
        assert after[c.conversion_id][2] == before[c.conversion_id][2] + 1
    for conversion_id, amount in planted.changed.items():
        assert after[conversion_id][3] == pytest.approx(amount, abs=1e-6)
        assert after[conversion_id][4] == pytest.approx(before[conversion_id][4], abs=1e-6)
    rollups_agree(world)

    # the same file again, rows in another order: nothing moves
    lines = planted.csv.decode().splitlines()
    shuffled = "\n".join([lines[0], *reversed(lines[1:])]).encode()
    raw_before = world.rows("SELECT count() FROM {db}.conversions")
    again_status, again = world.post(shuffled)
    world.settle()
    assert again_status == 200
    assert again["updates"] == 0
    assert again["import_id"] == answer["import_id"]
    assert again["outcomes"] == answer["outcomes"]
    assert summary(world) == (counts, risk)
    assert {row[0]: row for row in state(world)} == after
    assert world.rows("SELECT count() FROM {db}.conversions") == raw_before
    pairs = world.rows("SELECT count() FROM {db}.reconciliation FINAL")[0][0]
    assert pairs == len(conversions) + 2
    rollups_agree(world)


BAD = (
    "order_id,date,amount,currency,status\n"
    "GOOD-1,2026-03-01,10.00,EUR,paid\n"
    "BAD-AMOUNT,2026-03-01,ten,EUR,paid\n"
    "BAD-STATUS,2026-03-01,10.00,EUR,teleported\n"
    "BAD-DATE,yesterday,10.00,EUR,paid\n"
    ",2026-03-01,10.00,EUR,paid\n"
    "BAD-CURRENCY,2026-03-01,10.00,EURO,paid\n"
)


def dead_letters(world: World) -> list[tuple[Any, ...]]:
    return world.rows(
        "SELECT reason, message, payload FROM {db}.dead_letters "
        "WHERE source = 'edge:/v1/sales' ORDER BY received_at, message"
    )


def test_bad_rows_are_refused_with_reasons_and_dead_lettered(world: World) -> None:
    before = len(dead_letters(world))
    status, answer = world.post(BAD.encode())
    assert status == 200
    assert answer["accepted"] == 1
    rejected = {r["row"]: r for r in answer["rejected"]}
    assert sorted(rejected) == [3, 4, 5, 6, 7]
    assert rejected[3]["column"] == "amount"
    assert "teleported" in rejected[4]["message"]
    assert rejected[5]["column"] == "date"
    assert rejected[6]["column"] == "order_id"
    assert rejected[7]["column"] == "currency"
    world.settle()
    letters = dead_letters(world)[before:]
    assert len(letters) == 5
    assert any("BAD-AMOUNT" in payload for _, _, payload in letters)

    only_bad = "\n".join(BAD.splitlines()[:1] + BAD.splitlines()[2:]).encode()
    status, answer = world.post(only_bad)
    assert status == 400
    assert answer["error"] == "no_order_accepted"
    assert len(answer["rejected"]) == 5

    status, answer = world.post(b"id;when;how much\n1;2;3\n")
    assert status == 400
    assert answer["error"] == "invalid_sales_file"
    assert "amount" in answer["message"]
    world.settle()
    assert dead_letters(world)[-1][0] == "invalid_sales_file"

    status, answer = world.post(b"order_id,date,amount,currency,status\n")
    assert (status, answer["error"]) == (400, "empty_sales_file")
    status, answer = world.post(b"[1, {}]", content_type="application/json")
    assert status == 400
    assert [r["row"] for r in answer["rejected"]] == [1, 2]


def test_an_advertiser_imports_only_its_own_sales(world: World) -> None:
    mine = tracked(world)[0]
    export = f"order_id,date,amount,currency,status\n{mine.txid},{mine.ts[:10]},1,EUR,refunded\n"
    before = state(world)

    status, answer = world.post(export.encode(), key=None)
    assert status == 401
    status, answer = world.post(export.encode(), key="not-a-key")
    assert status == 403
    status, answer = world.post(export.encode(), key=KEYS["bluefin"], query="advertiser=northwind")
    assert (status, answer["error"]) == (403, "not_owned")
    rows = [{"order_id": mine.txid, "date": mine.ts[:10], "amount": 1, "currency": "EUR",
             "status": "refunded", "advertiser": "northwind"}]  # fmt: skip
    status, answer = world.post(
        orjson.dumps(rows), key=KEYS["bluefin"], content_type="application/json"
    )
    assert status == 400
    assert answer["rejected"][0]["error"] == "not_owned"

    # bluefin's key with northwind's order id: matched only within bluefin's conversions
    status, answer = world.post(export.encode(), key=KEYS["bluefin"])
    assert status == 200
    assert answer["advertiser"] == "bluefin"
    assert answer["updates"] == 0
    world.settle()
    assert state(world) == before

    # the operator names the advertiser it imports for
    status, answer = world.post(export.encode(), key=OPERATOR)
    assert (status, answer["error"]) == (400, "missing_param")
    status, answer = world.post(export.encode(), key=OPERATOR, query="advertiser=ghost")
    assert (status, answer["error"]) == (400, "unknown_advertiser")


def test_cli_reads_the_export_before_sending(tmp_path: Path) -> None:
    from clicktrail.cli.sales import ImportFailed, read_export

    with pytest.raises(ImportFailed, match="cannot read"):
        read_export(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("id;when\n1;2\n", encoding="utf-8")
    with pytest.raises(ImportFailed, match="header lacks"):
        read_export(bad)


def test_an_order_without_txid_matches_its_user_and_updates_by_conversion_id(
    world: World, store: Store
) -> None:
    """A conversion reported without a txid (a pixel, say) meets the order by user and
    time; the update names the conversion by its id."""
    registry = world.runtime.registry
    campaign = next(k for k, c in registry.campaigns.items() if c.advertiser == ADVERTISER)
    runtime = EmbeddedRuntime(registry, store)
    runtime.bus.begin_source("replay:pixel")
    runtime.submit(
        {
            "type": "conversion",
            "event_id": "pixel-sale-1",
            "ts": "2026-03-01T23:30:00Z",
            "action": "purchase",
            "campaign_id": campaign,
            "advertiser_id": ADVERTISER,
            "revenue": 80.0,
            "payout": 8.0,
            "currency": "EUR",
            "user": {"user_id": "u-sales-1"},
        },
        "test",
    )
    runtime.close(end_of_input=True)  # the wait for the user's touches is over
    runtime.bus.begin_source("run:pixel")
    service = World(runtime, store, build_app(runtime), world.registry_file)
    export = (
        "order_id,date,amount,currency,status,user_id\n"
        "SHOP-77,2026-03-01T23:10:00Z,80.00,EUR,refunded,u-sales-1\n"
    )
    status, answer = service.post(export.encode())
    assert status == 200, answer
    assert (answer["outcomes"], answer["updates"]) == ({"refunded": 1}, 1)
    service.settle()
    pair = service.rows(
        "SELECT outcome, match, order_id FROM {db}.reconciliation FINAL "
        "WHERE conversion_id = 'pixel-sale-1'"
    )
    assert pair == [("refunded", "user_time", "SHOP-77")]
    latest = service.rows(
        "SELECT status, version FROM {db}.attributed_latest WHERE conversion_id = 'pixel-sale-1'"
    )
    assert latest == [("rejected", 2)]


def test_a_restarted_service_records_the_pairs_but_counts_nothing_again(world: World) -> None:
    """The embedded runtime keeps its attribution state in memory: after a restart an
    update would be a new conversion, so it is held back."""
    live = next(c for c in tracked(world) if c.status == "approved")
    restarted = EmbeddedRuntime(world.runtime.registry, world.store)
    restarted.bus.begin_source(f"run:{uuid.uuid4().hex[:8]}")
    after_restart = World(restarted, world.store, build_app(restarted), world.registry_file)
    before = state(world)
    export = f"order_id,date,amount,currency,status\n{live.txid},{live.ts[:10]},1,EUR,refunded\n"
    status, answer = after_restart.post(export.encode())
    assert status == 200
    assert (answer["updates"], answer["not_updated"]) == (0, 1)
    after_restart.settle()
    assert state(world) == before
    updated = world.rows(
        "SELECT updated FROM {db}.reconciliation FINAL "
        f"WHERE conversion_id = '{live.conversion_id}'"
    )
    assert updated == [(False,)]


def test_the_commands_import_and_summarise_in_plain_words(
    world: World, tmp_path: Path, chdb_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Last in this module: serving starts the runtime's processing and closes it after."""
    from clicktrail.cli.main import main
    from clicktrail.edge.serve import free_port, serve_in_thread

    export = tmp_path / "orders.csv"
    export.write_bytes(world.exports[0] if world.exports else plan(tracked(world)).csv)
    assert main(["import-sales", str(tmp_path / "nope.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err
    down = f"http://127.0.0.1:{free_port()}"
    key = ["--api-key", KEYS[ADVERTISER]]
    assert main(["import-sales", str(export), "--url", down, *key]) == 1
    assert "did not answer" in capsys.readouterr().err

    with serve_in_thread(world.app) as base:
        assert main(["import-sales", str(export), "--url", base, *key]) == 0
    out = capsys.readouterr().out
    assert f"orders for {ADVERTISER} from {export}" in out
    assert " conversions updated; import sales-" in out
    assert "payout at risk" in out and "not tracked" in out
    assert "sold but never tracked: a tracking gap" in out

    database = ["--store", chdb_dsn, "--database", world.store.database]
    assert main(["reconcile", *database, "--advertiser", ADVERTISER]) == 0
    view = capsys.readouterr().out
    assert view.startswith(f"advertiser {ADVERTISER}\n")
    assert "of payouts at risk" in view
    assert main(["reconcile", *database, "--advertiser", "no one"]) == 2


def test_offline_the_pairs_are_recorded_and_no_conversion_moves(
    world: World, tmp_path: Path, chdb_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from clicktrail.cli.main import main

    live = next(c for c in tracked(world) if c.status == "approved")
    export = tmp_path / "refund.csv"
    export.write_text(
        f"order_id,date,amount,currency,status\n{live.txid},{live.ts[:10]},1,EUR,refunded\n",
        encoding="utf-8",
    )
    before = state(world)
    place = ["--store", chdb_dsn, "--database", world.store.database]
    registry = ["--config", str(world.registry_file)]
    args = ["import-sales", str(export), "--offline", *place, *registry]
    assert main([*args, "--advertiser", "ghost"]) == 2
    assert "--advertiser must name one" in capsys.readouterr().err
    assert main([*args, "--advertiser", ADVERTISER]) == 0
    out = capsys.readouterr().out
    assert "offline: 1 conversions to update were left as they are" in out
    assert "refunded 1" in out and "payout at risk" in out
    assert state(world) == before
    updated = world.rows(
        "SELECT outcome, updated FROM {db}.reconciliation FINAL "
        f"WHERE conversion_id = '{live.conversion_id}'"
    )
    assert updated == [("refunded", False)]
