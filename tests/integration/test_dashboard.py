"""The dashboard at /ui/ over a simulated week in a real embedded ClickHouse.

One small simulation (``clicktrail simulate``: planted fraud and brand bidding, with the
truth beside it) is replayed once for the module; every test reads the same store through
the edge app ``clicktrail run`` serves.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from tests.unit.test_edge_app import Recorder

from clicktrail.config import Registry, parse_registry
from clicktrail.edge.app import build_app, build_edge
from clicktrail.edge.backend import BusBackend
from clicktrail.edge.serve import free_port
from clicktrail.runtime.replay import expand, replay, replay_runtime
from clicktrail.simulate import Options, simulate
from clicktrail.sinks.migrations import migrate
from clicktrail.sinks.store import Store
from clicktrail.ui import dashboard_app
from clicktrail.ui.auth import COOKIE

TOKEN = "dashboard-test-operator-token-0123"
EVENTS = 14_000
PERIOD = {"from": "2026-03-01", "to": "2026-03-07"}
QS = "from=2026-03-01&to=2026-03-07"
GOAL_CAMPAIGN = "northwind-affiliates"
PAGES = [
    "/ui/",
    "/ui/advice",
    "/ui/partners",
    "/ui/partners/net-flood",
    "/ui/funnel",
    "/ui/funnel?segment=partner",
    "/ui/funnel?segment=country&campaign=bluefin-affiliates",
    "/ui/funnel?segment=os",
    "/ui/funnel?segment=sub&sub=sub1&campaign=bluefin-affiliates",
    "/ui/conflicts",
    "/ui/targeting",
    "/ui/sales",
]


@dataclass
class World:
    store: Store
    registry: Registry
    app: Any
    fraud: set[str]
    """Partners the simulation planted fraud on."""
    bidders: set[str]
    """Partners the simulation made bid on a brand."""
    honest: set[str]


@pytest.fixture(scope="module")
def world(chdb_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    out = tmp_path_factory.mktemp("dashboard") / "sim"
    simulate(
        Options(out=out, events=EVENTS, days=2, seed=4, start=datetime(2026, 3, 1, tzinfo=UTC))
    )
    data = yaml.safe_load((out / "registry.yaml").read_text(encoding="utf-8"))
    # a goal the campaign cannot meet, so the advice has a goal to speak of
    data["campaigns"][GOAL_CAMPAIGN]["goals"] = {"purchase": {"target_cpa": 1.0}}
    registry = parse_registry(data)
    store = Store(chdb_dsn, f"ui_{uuid.uuid4().hex[:10]}")
    migrate(store)
    runtime = replay_runtime(registry, store)
    replay(runtime, expand([str(out)]))
    partners = [
        json.loads(line)
        for line in (out / "truth.jsonl").read_text(encoding="utf-8").splitlines()
        if '"kind":"partner"' in line
    ]
    fraud = {p["partner_id"] for p in partners if p["fraud"]}
    bidders = {p["partner_id"] for p in partners if p["offenses"]}
    honest = {p["partner_id"] for p in partners} - fraud - bidders
    app = build_app(runtime, query_token=TOKEN)
    yield World(store, registry, app, fraud, bidders, honest)
    store.command(f"DROP DATABASE IF EXISTS {store.database}")


def fetch(
    app: Any,
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    data: dict[str, str] | None = None,
    client: tuple[str, int] = ("198.51.100.7", 40000),
) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://dash.test") as c:
            return await c.request(method, url, headers=headers, data=data)

    return asyncio.run(go())


def session(app: Any) -> dict[str, str]:
    answer = fetch(app, "/ui/login", method="POST", data={"token": TOKEN, "next": "/ui/"})
    assert answer.status_code == 303
    value = answer.cookies[COOKIE]
    return {"cookie": f"{COOKIE}={value}"}


def page(world: World, url: str) -> str:
    answer = fetch(world.app, url, headers=session(world.app))
    assert answer.status_code == 200, (url, answer.text[-500:])
    return answer.text


def text_of(body: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">([^<]*)<', body)
    assert found, element_id
    return html.unescape(found.group(1))


def number(text: str) -> float:
    return float(re.sub(r"[^0-9.\-]", "", text))


def test_every_page_needs_the_operator_token(world: World) -> None:
    for url in PAGES:
        anonymous = fetch(world.app, url)
        assert anonymous.status_code == 303, url
        assert anonymous.headers["location"].startswith("/ui/login?next=%2Fui%2F")
    wrong = fetch(world.app, "/ui/", headers={"authorization": "Bearer not-the-token"})
    assert wrong.status_code == 403
    assert fetch(world.app, "/ui/", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    forged = fetch(world.app, "/ui/", headers={"cookie": f"{COOKIE}=9999999999.{'0' * 64}"})
    assert forged.status_code == 303


def test_login_sets_a_strict_session_cookie_and_logout_clears_it(world: World) -> None:
    login = fetch(world.app, "/ui/login")
    assert login.status_code == 200 and 'name="token"' in login.text
    refused = fetch(world.app, "/ui/login", method="POST", data={"token": "guess"})
    assert refused.status_code == 403 and "not valid" in refused.text
    accepted = fetch(world.app, "/ui/login", method="POST", data={"token": TOKEN})
    cookie = accepted.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
    assert TOKEN not in accepted.headers["set-cookie"]
    back = fetch(
        world.app, "/ui/login", method="POST", data={"token": TOKEN, "next": f"/ui/partners?{QS}"}
    )
    assert back.headers["location"] == f"/ui/partners?{QS}", "back to the page asked for"
    elsewhere = {"token": TOKEN, "next": "//evil.example/"}
    sent = fetch(world.app, "/ui/login", method="POST", data=elsewhere)
    assert sent.headers["location"] == "/ui/", "never redirected off the dashboard"
    other_site = {"origin": "https://evil.example"}
    forged = fetch(world.app, "/ui/login", method="POST", data={"token": TOKEN}, headers=other_site)
    assert forged.status_code == 403 and "set-cookie" not in forged.headers
    out = fetch(world.app, "/ui/logout", method="POST", headers=session(world.app))
    assert out.status_code == 303 and "max-age=0" in out.headers["set-cookie"].lower()
    assert fetch(world.app, "/ui/logout").status_code == 405, "logout is a POST"


def test_without_a_token_only_this_machine_may_look(world: World) -> None:
    open_app = dashboard_app(world.store, world.registry, None)
    assert fetch(open_app, f"/ui/?{QS}", client=("127.0.0.1", 5000)).status_code == 200
    far = fetch(open_app, "/ui/", client=("203.0.113.9", 5000))
    assert far.status_code == 403 and "operator token" in far.text
    proxied = dashboard_app(world.store, world.registry, None, ["10.0.0.0/8"])
    assert fetch(proxied, "/ui/", client=("127.0.0.1", 5000)).status_code == 403


def test_every_page_renders_with_its_own_assets_only(world: World) -> None:
    for url in PAGES:
        joined = f"{url}{'&' if '?' in url else '?'}{QS}"
        answer = fetch(world.app, joined, headers=session(world.app))
        assert answer.status_code == 200, (url, answer.text[-500:])
        assert "default-src 'none'" in answer.headers["content-security-policy"]
        assert "http://" not in answer.text and "https://" not in answer.text, url
    plain = fetch(world.app, "/ui/", headers=session(world.app))
    assert plain.status_code == 200, "the default period is the last week of data"
    css = fetch(world.app, "/ui/static/dashboard.css")
    assert css.status_code == 200 and "@media" in css.text


def test_overview_numbers_are_the_rollups(world: World) -> None:
    body = page(world, f"/ui/?{QS}")
    db = world.store.database
    clicks, withheld = world.store.rows(
        f"SELECT sum(clicks), toFloat64(sum(rejected_payout)) FROM {db}.agg_hourly_flagged "
        "WHERE hour >= '2026-03-01 00:00:00' AND hour < '2026-03-08 00:00:00'"
    )[0]
    assert clicks > 0 and withheld > 0
    assert number(text_of(body, "clicks")) == clicks
    assert number(text_of(body, "withheld")) == pytest.approx(withheld, abs=0.006)
    assert "CPA over goal" in body, "the campaign's goal is measured"


def test_partner_figures_are_the_rollups_and_verdicts(world: World) -> None:
    body = page(world, f"/ui/partners?{QS}")
    db = world.store.database
    for partner in ("net-flood", "aff-coupons"):
        row = re.search(rf'<tr data-partner="{partner}"[^>]*>(.*?)</tr>', body, re.S)
        assert row, partner
        cells = [
            html.unescape(re.sub(r"<[^>]+>", " ", c)).strip() for c in row.group(1).split("<td")
        ]
        [(clicks,)] = world.store.rows(
            f"SELECT sum(clicks) FROM {db}.agg_hourly WHERE partner_id = {{p:String}}",
            {"p": partner},
        )
        assert number(cells[2]) == clicks, partner
    flood = re.search(r'<tr data-partner="net-flood"[^>]*>.*?</tr>', body, re.S)
    assert flood and "reject" in flood.group(0)
    detail = page(world, f"/ui/partners/net-flood?{QS}")
    assert 'id="evidence"' in detail and "click_flood" in detail
    assert 'id="subids"' in detail and 'id="ctit"' in detail
    injected = page(world, f"/ui/partners/net-inject?{QS}")
    first = re.search(r"<td>&lt; 10 s</td><td>.*?</svg> ([\d,]+)</td>", injected, re.S)
    [(fast,)] = world.store.rows(
        f"SELECT countIf(ctit_seconds < 10) FROM {db}.attributed_conversions "
        "WHERE partner_id = 'net-inject' AND version = 1"
    )
    assert first and number(first.group(1)) == fast > 0, "injected installs come within 10 s"


def test_advice_names_the_planted_cheats_and_bidders_and_no_honest_partner(world: World) -> None:
    body = html.unescape(page(world, f"/ui/advice?{QS}"))
    stop = set(re.findall(r"Stop paying ([\w.-]+):", body))
    notices = {name for name in re.findall(r'<p class="say">([\w.-]+) [^<]*send the notice', body)}
    assert stop <= world.fraud, stop - world.fraud
    assert len(stop) >= len(world.fraud) - 1, world.fraud - stop
    assert notices <= world.bidders, notices - world.bidders
    assert len(notices) >= len(world.bidders) - 1, world.bidders - notices
    accused = stop | notices
    assert not accused & world.honest
    assert f"{GOAL_CAMPAIGN}: purchase CPA is" in body
    assert "See the evidence" in body


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("/ui/?from=2026-13-01", "not a calendar date"),
        ("/ui/?from=2026-03-01'%20OR%201=1%20--", "not a date"),
        ("/ui/?from=2026-03-07&to=2026-03-01", "is after"),
        ("/ui/?from=2020-01-01&to=2026-03-01", "longer than"),
        ("/ui/funnel?segment=country;DROP%20TABLE%20clicks", "is not one of"),
        ("/ui/funnel?campaign=x'%20OR%20'1'='1", "not a valid id"),
        ("/ui/partners/a'b", "not a valid id"),
        ("/ui/partners/net-flood?sub=sub1']%20OR%201", "not a sub-id name"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(world: World, url: str, reason: str) -> None:
    answer = fetch(world.app, url, headers=session(world.app))
    assert answer.status_code == 400, answer.text[-300:]
    assert reason in html.unescape(answer.text)
    assert world.store.rows(f"SELECT count() FROM {world.store.database}.clicks")[0][0] > 0


def test_an_unknown_partner_or_campaign_is_an_empty_page(world: World) -> None:
    assert "No clicks in this period" in page(world, f"/ui/partners/nobody?{QS}")
    assert "0" in page(world, f"/ui/funnel?campaign=nothing-here&{QS}")


def test_the_package_ships_its_templates_and_stylesheet() -> None:
    root = Path(__file__).resolve().parents[2]
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    assert "ui/templates/*.html" in text and "ui/static/*" in text
    assert "Jinja2" in text


def test_conflicts_page_shows_the_alert_history(world: World) -> None:
    body = page(world, f"/ui/conflicts?{QS}")
    [(alerts,)] = world.store.rows(
        f"SELECT count() FROM {world.store.database}.alerts WHERE kind = 'brand_conflict'"
    )
    assert alerts > 0
    assert body.count("<tr><td>20") >= min(alerts, 30) and 'id="alerts"' in body


def test_the_scale_out_edge_serves_the_dashboard_from_a_store(world: World) -> None:
    backend = BusBackend(world.registry, Recorder())
    plain = build_edge(backend)
    assert fetch(plain, "/ui/").status_code == 404
    board = dashboard_app(world.store, world.registry, TOKEN)
    edge = build_edge(backend, dashboard=board)
    answer = fetch(edge, f"/ui/partners?{QS}", headers={"authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and "net-flood" in answer.text


def test_an_empty_store_renders_every_page(store: Store) -> None:
    app = dashboard_app(store, parse_registry({}), TOKEN)
    bearer = {"authorization": f"Bearer {TOKEN}"}
    for url in PAGES:
        answer = fetch(app, url, headers=bearer)
        assert answer.status_code == 200, (url, answer.text[-400:])
    missing = fetch(app, "/ui/nothing", headers=bearer)
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]


SHOTS = [
    ("overview", f"/ui/?{QS}"),
    ("advice", f"/ui/advice?{QS}"),
    ("partners", f"/ui/partners?{QS}"),
    ("partner", f"/ui/partners/net-flood?{QS}"),
    ("funnel", f"/ui/funnel?campaign=northwind-affiliates&segment=partner&{QS}"),
    ("conflicts", f"/ui/conflicts?{QS}"),
    ("targeting", f"/ui/targeting?{QS}"),
    ("sales", f"/ui/sales?{QS}"),
]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (apt-get install chromium); none is downloaded",
)
def test_a_real_browser_logs_in_and_sees_every_page(world: World, tmp_path: Path) -> None:
    """Debian's chromium through Playwright, against the dashboard on a real port.
    ``CLICKTRAIL_SCREENSHOTS=docs/images`` keeps the screenshots for docs/dashboard.md."""
    chromium = str(CHROMIUM)
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (it drives the system chromium)"
    )
    out = Path(os.environ.get("CLICKTRAIL_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    app = dashboard_app(world.store, world.registry, TOKEN)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, headless=True, args=["--no-sandbox"]
            )
            tab = browser.new_page(viewport={"width": 1280, "height": 900})
            tab.goto(f"{base}/ui/advice?{QS}")
            assert "/ui/login" in tab.url, "login is required"
            tab.fill("input[name=token]", TOKEN)
            tab.click("button[type=submit]")
            tab.wait_for_url(f"**/ui/advice?{QS}")
            assert "Stop paying" in tab.content()
            for name, url in SHOTS:
                answer = tab.goto(base + url)
                assert answer is not None and answer.status == 200, name
                assert tab.locator("h1").first.is_visible(), name
                tab.screenshot(path=str(out / f"dashboard-{name}.png"), full_page=True)
            tab.set_viewport_size({"width": 390, "height": 844})
            tab.goto(f"{base}/ui/advice?{QS}")
            tab.screenshot(path=str(out / "dashboard-advice-phone.png"), full_page=True)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
    assert all((out / f"dashboard-{name}.png").stat().st_size > 0 for name, _ in SHOTS)


def test_the_funnel_split_by_os_starts_from_the_campaigns_clicks(world: World) -> None:
    body = page(world, f"/ui/funnel?campaign=northwind-affiliates&segment=os&{QS}")
    [(clicks,)] = world.store.rows(
        f"SELECT count() FROM {world.store.database}.clicks "
        "WHERE campaign_id = 'northwind-affiliates' AND ts < '2026-03-08 00:00:00'"
    )
    cells = re.findall(r'<td class="n[^"]*">([\d,]+)', body)
    assert number(cells[1]) == clicks, "the 'all' row's clicks are the campaign's clicks"
    assert "read from the raw tables" in body


def test_sales_page_speaks_the_reconciliation_of_an_import(world: World) -> None:
    """An export with two of a partner's tracked purchases (one at another amount) and an
    order nothing tracked: the page says what the reconciliation view holds, in words."""
    from clicktrail.processors.sales import parse_sales_csv
    from clicktrail.runtime.reconcile import SalesLedger

    empty = page(world, f"/ui/sales?{QS}")
    assert "No sales imported yet" in empty
    db = world.store.database
    rows = world.store.rows(
        f"SELECT txid, toDate(conversion_ts), toFloat64(revenue), currency, partner_id "
        f"FROM {db}.attributed_conversions FINAL WHERE advertiser_id = 'northwind' "
        "AND action = 'purchase' AND txid != '' AND weight > 0 ORDER BY conversion_ts LIMIT 2"
    )
    assert len(rows) == 2
    (t1, d1, r1, c1, _), (t2, d2, r2, c2, _) = rows
    text = (
        "order_id,date,amount,currency,status\n"
        f"{t1},{d1},{r1},{c1},paid\n{t2},{d2},{r2 + 5},{c2},paid\n"
        f"NEVER-TRACKED-1,{d1},42.5,{c1},paid\n"
    )
    ledger = SalesLedger(world.registry, world.store)
    result = ledger.reconcile("northwind", parse_sales_csv(text).orders)
    ledger.record(result.records)
    summary = ledger.summary("northwind")
    body = page(world, f"/ui/sales?{QS}")
    assert "No sales imported yet" not in body
    gap = next(r for r in summary if r.partner_id == "")
    assert gap.sold_not_tracked == 1 and "a tracking gap" in body
    for row in summary:
        line = re.search(rf'<li data-partner="{re.escape(row.partner_id)}">(.*?)</li>', body, re.S)
        assert line, row.partner_id
        said = html.unescape(re.sub(r"<[^>]+>", "", line.group(1)))
        if row.partner_id:
            assert f"{row.matched:,} sold and tracked" in said
            if row.tracked_not_sold:
                assert f"{row.tracked_not_sold:,} tracked but not sold" in said
                assert f"{row.payout_at_risk:,.2f} of payouts at risk" in said
            if row.amount_differences:
                assert f"{row.amount_differences:,} with another amount" in said
    assert sum(r.matched for r in summary) == 2
    assert sum(r.amount_differences for r in summary) == 1
