"""The embedded edge over real HTTP: requests in, rows in the embedded ClickHouse out."""

from __future__ import annotations

import http.client
import time
import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson
from tests.conftest import EXAMPLE_CONFIG

from clicktrail.config import Registry, load_registry
from clicktrail.edge.app import build_app
from clicktrail.edge.serve import serve_in_thread
from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.sinks.store import Store

API_KEY = "acme-dev-api-key-change-me"


class Client:
    """A keep-alive HTTP/1.1 client for one base URL (what a tracker's caller is)."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)

    def get(
        self, path: str, params: dict[str, str] | None = None, **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        target = f"{path}?{urlencode(params)}" if params else path
        return self.request("GET", target, b"", headers)

    def post(
        self, path: str, body: bytes, content_type: str, key: str = API_KEY
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {"content-type": content_type, "authorization": f"Bearer {key}"}
        return self.request("POST", path, body, headers)

    def request(
        self, method: str, target: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        try:
            self.conn.request(method, target, body=body or None, headers=headers)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # the server closed an idle keep-alive connection before reading the request
            self.conn.close()
            self.conn.request(method, target, body=body or None, headers=headers)
            response = self.conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def close(self) -> None:
        self.conn.close()


def registry() -> Registry:
    return load_registry(EXAMPLE_CONFIG)


def test_tracking_requests_land_in_the_store(store: Store) -> None:
    reg = registry()
    secret = reg.advertisers["acme"].postback_secret
    runtime = EmbeddedRuntime(reg, store)
    run = uuid.uuid4().hex[:8]
    with serve_in_thread(build_app(runtime)) as base:
        client = Client(base)
        status, headers, body = client.get(
            "/i.gif",
            {"cid": "acme-brand-search", "pid": "agency-search", "impression_id": f"imp-{run}"},
            **{"user-agent": "Mozilla/5.0", "x-forwarded-for": "198.51.100.9"},
        )
        assert status == 200 and headers["content-type"] == "image/gif"
        cookie = headers["set-cookie"].split(";")[0]
        status, headers, _ = client.get(
            "/c/acme-affiliates", {"pid": "aff-coupons", "sub1": run}, cookie=cookie
        )
        assert status == 302
        location = headers["location"]
        assert urlsplit(location).hostname == "www.acme.example"
        click_id = parse_qs(urlsplit(location).query)["cid"][0]
        status, _, body = client.get(
            "/postback",
            {"click_id": click_id, "txid": f"o-{run}", "event": "purchase", "revenue": "20",
             "key": secret},
        )  # fmt: skip
        assert status == 200 and orjson.loads(body)["duplicate"] is False
        status, _, body = client.get(
            "/postback", {"click_id": click_id + "x", "txid": "o-x", "key": secret}
        )
        assert (status, orjson.loads(body)["error"]) == (400, "forged_click_id")
        status, _, _ = client.get("/c/acme-affiliates", {"pid": "p", "to": "https://evil.example"})
        assert status == 400
        status, _, body = client.get("/metrics")
        assert b'clicktrail_edge_requests_total{endpoint="click",status="302"} 1' in body
        clock = {
            line.split()[0]: float(line.split()[1])
            for line in body.decode().splitlines()
            if line.startswith("clicktrail_pipeline_")
        }
        assert set(clock) == {
            "clicktrail_pipeline_watermark_seconds",
            "clicktrail_pipeline_watermark_delay_seconds",
            "clicktrail_pipeline_late_events",
            "clicktrail_pipeline_early_events",
        }
        assert clock["clicktrail_pipeline_late_events"] == 0
        client.close()
    # leaving the block shut the server down: the lifespan processed and flushed everything
    db = store.database
    assert store.rows(f"SELECT ip, user_id FROM {db}.impressions") == [
        ("127.0.0.0", cookie.split("=")[1])
    ], "the peer address, truncated; X-Forwarded-For from an untrusted peer is ignored"
    assert store.rows(f"SELECT click_id FROM {db}.clicks") == [(click_id,)]
    assert store.rows(f"SELECT txid, click_id FROM {db}.conversions") == [(f"o-{run}", click_id)]
    reasons = store.rows(f"SELECT reason, source FROM {db}.dead_letters ORDER BY reason")
    assert reasons == [
        ("forged_click_id", "edge:/postback"),
        ("landing_domain_not_allowed", "edge:/c"),
    ]


def test_processing_keeps_up_while_serving(store: Store) -> None:
    runtime = EmbeddedRuntime(registry(), store)
    with serve_in_thread(build_app(runtime)) as base:
        client = Client(base)
        for i in range(300):
            status, _, _ = client.get(
                "/i.gif", {"cid": "acme-brand-search", "pid": "p", "iid": f"i{i}"}
            )
            assert status == 200
        deadline = time.monotonic() + 10
        while runtime.bus.depth() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert runtime.bus.depth() == 0, "the processing task drains the bus while serving"
        client.close()
    assert store.rows(f"SELECT count() FROM {store.database}.impressions") == [(300,)]


EXPORT = (
    "date,account,campaign,keyword,display_domain,impression_share,overlap_rate,"
    "position_above_rate,outranking_share\n"
    "2026-03-01,acme-google-ads,acme-brand-search,acme shoes,acme.example,0.3,0.4,0.2,0.6\n"
    "2026-03-02,acme-google-ads,acme-brand-search,Acme Shoes,www.acme.example,0.2,0.3,0.1,0.7\n"
    "2026-03-01,acme-google-ads,acme-brand-search,acme shoes,rival-shoes.example,0.5,0.5,0.5,0.5\n"
)
CONFLICT_SQL = (
    "SELECT brand_id, offender_kind, offender_id, signal, keywords, insight_rows, impressions, "
    "clicks, head_to_head, toDate(first_seen), toDate(last_seen), length(evidence_ids) "
    "FROM {db}.brand_conflicts FINAL"
)


def import_export(runtime: EmbeddedRuntime, body: str) -> tuple[int, dict[str, object]]:
    """One serving session (the lifespan processes and flushes on the way out)."""
    with serve_in_thread(build_app(runtime)) as base:
        client = Client(base)
        status, _, answer = client.post("/v1/auction-insights", body.encode(), "text/csv")
        client.close()
    return status, orjson.loads(answer)


def test_auction_insights_become_a_conflict_counted_once(store: Store) -> None:
    runtime = EmbeddedRuntime(registry(), store)
    db = store.database
    assert import_export(runtime, EXPORT) == (202, {"accepted": 3})
    first = store.rows(CONFLICT_SQL.format(db=db))
    assert [row[:9] for row in first] == [
        ("acme", "domain", "acme.example", "auction_insights", ["acme shoes"], 2, 0, 0, True)
    ], "the brand's own domain on its brand keyword; the rival's domain is no conflict"
    assert [str(day) for day in first[0][9:11]] == ["2026-03-01", "2026-03-02"]
    versions = store.rows(f"SELECT count() FROM {db}.brand_conflicts")

    published = runtime.bus.published
    malformed = EXPORT + "2026-03-03,acme-google-ads,acme-brand-search,acme,acme.example,2,,,\n"
    status, answer = import_export(runtime, malformed)
    assert (status, answer["error"], answer["row"], answer["column"]) == (
        400,
        "invalid_export",
        5,
        "impression_share",
    )
    assert "row 5, column 'impression_share'" in str(answer["message"])
    assert runtime.bus.published == published, "a refused export publishes nothing"

    assert import_export(runtime, EXPORT) == (202, {"accepted": 3})
    assert store.rows(CONFLICT_SQL.format(db=db)) == first, "a re-import changes no count"
    assert store.rows(f"SELECT count() FROM {db}.brand_conflicts") == versions
    assert store.rows(f"SELECT count() FROM {db}.dead_letters") == [(0,)]
