"""Whatever a client sends, the edge answers below 500, and every refusal is explained."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.unit.test_edge_app import API_KEY, Edge, make_edge

from clicktrail.config.registry import Campaign
from clicktrail.edge.landing import LandingPolicy

PATHS = [
    "/i.gif",
    "/cv.gif",
    "/postback",
    "/c/acme-affiliates",
    "/c/acme-brand-search",
    "/c/ghost",
    "/c/",
    "/v1/events",
    "/healthz",
    "/readyz",
    "/metrics",
    "/nope",
]
NAMES = [
    "cid", "pid", "campaign_id", "partner_id", "impression_id", "kw", "cost", "cpc_bid",
    "position", "channel", "country", "device", "os", "sub1", "sub10", "gclid", "url", "to",
    "lp", "click_id", "clickid", "subid", "txid", "event", "goal", "status", "revenue",
    "payout", "sum", "currency", "adv", "advertiser", "key", "sig", "ts", "uid",
]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(
        ["acme-affiliates", "acme-brand-search", "aff-coupons", "acme", "purchase", "lead",
         "1", "-1", "1e309", "nan", "https://www.acme.example/x", "https://evil.example/",
         "//evil.example", "approved", "EUR", "", "{click_id}", "%00", "%ff%fe"]
    ),
    st.text(max_size=40),
)  # fmt: skip
PAIRS = st.lists(
    st.tuples(st.one_of(st.sampled_from(NAMES), st.text(max_size=8)), VALUES), max_size=12
)
RAW_QUERY = st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode))
HEADER_NAMES = st.sampled_from(
    [b"cookie", b"user-agent", b"referer", b"x-forwarded-for", b"content-type", b"content-length"]
)
HEADERS = st.lists(st.tuples(HEADER_NAMES, st.binary(max_size=60)), max_size=5)
METHODS = st.sampled_from(["GET", "POST", "HEAD", "PUT"])

EDGE = make_edge(trusted_proxies=["127.0.0.0/8"], country_header="cf-ipcountry")
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(edge: Edge, answer_status: int, body: bytes, content_type: str | None) -> None:
    assert answer_status < 500, body[:300]
    if answer_status >= 400 and content_type == "application/json":
        error = orjson.loads(body)
        assert isinstance(error["error"], str) and error["error"]
        assert isinstance(error["message"], str) and error["message"]


def query_of(pairs: list[tuple[str, str]]) -> bytes:
    from urllib.parse import urlencode

    return urlencode(pairs).encode()


@FUZZ
@given(path=st.sampled_from(PATHS), pairs=PAIRS, headers=HEADERS, method=METHODS)
def test_plausible_requests_never_fail_the_server(
    path: str, pairs: list[tuple[str, str]], headers: list[tuple[bytes, bytes]], method: str
) -> None:
    answer = EDGE.call(method, path, query_of(pairs), headers=headers, client=("127.0.0.1", 9))
    check(EDGE, answer.status, answer.body, answer.header("content-type"))
    if answer.status in (301, 302, 303, 307, 308):
        host = urlsplit(answer.header("location") or "").hostname
        assert host in ("www.acme.example", "acme.example"), answer.header("location")


@FUZZ
@given(
    path=st.one_of(st.sampled_from(PATHS), st.text(max_size=30).map(lambda s: "/" + s)),
    query=RAW_QUERY,
    headers=HEADERS,
    body=st.binary(max_size=400),
    method=METHODS,
)
def test_arbitrary_bytes_never_fail_the_server(
    path: str, query: bytes, headers: list[tuple[bytes, bytes]], body: bytes, method: str
) -> None:
    answer = EDGE.call(method, path, query, headers=headers, body=body)
    check(EDGE, answer.status, answer.body, answer.header("content-type"))


@FUZZ
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.one_of(st.none(), st.booleans(), st.integers(-(2**60), 2**60), st.text(max_size=20)),
            lambda inner: st.one_of(
                st.lists(inner, max_size=4),
                st.dictionaries(st.text(max_size=10), inner, max_size=4),
            ),
            max_leaves=12,
        ).map(orjson.dumps),
    ),
    kind=st.sampled_from([b"application/json", b"application/x-ndjson", b"text/plain"]),
)
def test_batch_bodies_never_fail_the_server(body: bytes, kind: bytes) -> None:
    answer = EDGE.call("POST", "/v1/events", headers=[API_KEY, (b"content-type", kind)], body=body)
    check(EDGE, answer.status, answer.body, answer.header("content-type"))
    if answer.status == 200:
        result = answer.json()
        assert set(result) == {"accepted", "rejected"}


POLICY = LandingPolicy(
    "c",
    Campaign(
        advertiser="a",
        landing_url="https://shop.example/p?cid={click_id}&s={sub1}&x={anything}",
        landing_domains=["www.shop.example"],
    ),
)


@settings(max_examples=500, deadline=None)
@example(override=None, sub1="", anything="\n")  # "$" once let a final newline through
@given(
    override=st.one_of(st.none(), st.text(max_size=80), st.sampled_from(
        ["https://shop.example/{sub1}", "https://www.shop.example/?u={url}", "https://shop.example:8443/"]
    )),
    sub1=st.text(max_size=40),
    anything=st.text(max_size=40),
)  # fmt: skip
def test_redirect_targets_stay_on_the_allowed_hosts(
    override: str | None, sub1: str, anything: str
) -> None:
    params = {"sub1": sub1, "anything": anything}
    if override is not None:
        params["url"] = override
    try:
        url = POLICY.target(params, {"click_id": "k.1", "sub1": sub1})
    except Exception as error:  # only the typed refusal is allowed
        assert getattr(error, "reason", None) == "landing_domain_not_allowed"
        return
    parts = urlsplit(url)
    assert parts.scheme in ("http", "https")
    assert parts.hostname in ("shop.example", "www.shop.example")
    assert "@" not in parts.netloc and "\\" not in url
    assert all(0x21 <= ord(c) < 0x7F for c in url), url
    if override is None:
        assert parse_qs(parts.query, keep_blank_values=True)["s"] == [sub1] or not sub1
