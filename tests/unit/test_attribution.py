"""The processors of the attribution path, called with plain inputs and dict state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clicktrail.config import parse_registry
from clicktrail.contracts import EVENT_ADAPTER, AnyEvent, AttributedConversion
from clicktrail.processors.dedup import Dedup
from clicktrail.processors.weights import credit
from clicktrail.runtime.pipeline import Pipeline

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REGISTRY = parse_registry(
    {
        "advertisers": {
            "acme": {"postback_secret": "s" * 16},
            "other": {"postback_secret": "o" * 16},
        },
        "campaigns": {
            "last": {"advertiser": "acme", "landing_url": "https://acme.example/"},
            "linear": {
                "advertiser": "acme",
                "landing_url": "https://acme.example/",
                "attribution": {"model": "linear", "click_window_days": 7},
            },
            "rival": {"advertiser": "other", "landing_url": "https://other.example/"},
        },
        "actions": {
            "purchase": {"txid_policy": "update"},
            "lead": {"txid_policy": "ignore"},
            "add_to_cart": {"txid_policy": "new"},
        },
        # the clock at each event's time, so waits end exactly where a test says
        "event_time": {"allowed_lateness_seconds": 0, "confirmations": 1},
    }
)


def at(seconds: float) -> int:
    return int((T0 + timedelta(seconds=seconds)).timestamp() * 1000)


def click(
    n: int, seconds: float, campaign: str = "last", user: str | None = "u1", partner: str = "p1"
) -> AnyEvent:
    return EVENT_ADAPTER.validate_python(
        {
            "type": "click",
            "event_id": f"c{n}",
            "ts": at(seconds),
            "click_id": f"clk{n}",
            "campaign_id": campaign,
            "partner_id": partner,
            "impression_id": f"imp{n}",
            "user": {"user_id": user} if user else {},
        }
    )


def impression(n: int, seconds: float, campaign: str = "last", user: str = "u1") -> AnyEvent:
    return EVENT_ADAPTER.validate_python(
        {
            "type": "impression",
            "event_id": f"i{n}",
            "ts": at(seconds),
            "impression_id": f"imp{n}",
            "campaign_id": campaign,
            "partner_id": "p9",
            "user": {"user_id": user},
        }
    )


def conversion(n: int, seconds: float, **fields: Any) -> AnyEvent:
    return EVENT_ADAPTER.validate_python(
        {
            "type": "conversion",
            "event_id": f"v{n}",
            "ts": at(seconds),
            "action": "purchase",
            "revenue": 100.0,
            "payout": 10.0,
            **fields,
        }
    )


class Run:
    """Feed events through both stages like the embedded runtime does."""

    def __init__(self) -> None:
        self.pipeline = Pipeline(REGISTRY)
        self.rows: list[AttributedConversion] = []
        self.offset = 0

    def send(self, *events: AnyEvent) -> list[AttributedConversion]:
        start = len(self.rows)
        for event in events:
            self.offset += 1
            origin = f"test@{self.offset}"
            result = self.pipeline.on_event(event, origin)
            self._forward(result.forwarded, origin)
        return self.rows[start:]

    def _forward(self, records: list[Any], origin: str) -> None:
        for n, record in enumerate(records):  # each a message of its own, as on the topic
            out = self.pipeline.on_forwarded(record, f"{origin}/{n}")  # type: ignore[arg-type]
            self.rows.extend(r for r in out if isinstance(r, AttributedConversion))

    def tick(self) -> list[AttributedConversion]:
        start = len(self.rows)
        self._forward(self.pipeline.tick(), "test@tick")
        self._forward(self.pipeline.tick_users(), "test@tick-users")
        return self.rows[start:]

    def drain(self) -> list[AttributedConversion]:
        start = len(self.rows)
        self._forward(self.pipeline.drain(), "test@drain")
        return self.rows[start:]


class TestLastClick:
    def test_postback_click_id_gets_full_credit_and_ctit(self) -> None:
        run = Run()
        rows = run.send(click(1, 0), click(2, 60), conversion(1, 660, click_id="clk1"))
        assert len(rows) == 1
        row = rows[0]
        assert (row.click_id, row.touch, row.model, row.weight) == (
            "clk1",
            "click",
            "last_click",
            1,
        )
        assert row.ctit_seconds == 660
        assert (row.campaign_id, row.partner_id, row.revenue, row.payout) == ("last", "p1", 100, 10)

    def test_user_match_credits_the_latest_click_in_window(self) -> None:
        run = Run()
        assert run.send(click(1, 0), click(2, 60), conversion(1, 120, user={"user_id": "u1"})) == []
        rows = run.drain()  # a user-only match waits for the grace period first
        assert [(r.click_id, r.weight, r.ctit_seconds) for r in rows] == [("clk2", 1.0, 60)]

    def test_clicks_outside_the_window_do_not_count(self) -> None:
        run = Run()
        late = 31 * 86_400
        assert run.send(click(1, 0), conversion(1, late, user={"user_id": "u1"})) == []
        assert [r.touch for r in run.drain()] == ["none"]

    def test_other_advertisers_clicks_are_not_credited(self) -> None:
        run = Run()
        run.send(
            click(1, 0),
            click(2, 50, campaign="rival"),
            conversion(1, 100, user={"user_id": "u1"}, advertiser_id="acme"),
        )
        assert [r.click_id for r in run.drain()] == ["clk1"]


class TestMultiTouchAndViews:
    def test_linear_spreads_credit_over_the_path(self) -> None:
        run = Run()
        rows = run.send(
            click(1, 0, campaign="linear"),
            click(2, 100, campaign="linear"),
            click(3, 200, campaign="linear"),
            conversion(1, 300, click_id="clk3"),
        )
        assert [r.click_id for r in rows] == ["clk1", "clk2", "clk3"]
        assert [r.weight for r in rows] == pytest.approx([1 / 3] * 3)
        assert sum(r.revenue for r in rows) == pytest.approx(100)
        assert [r.ctit_seconds for r in rows] == [300, 200, 100]

    def test_unclicked_impression_gets_view_through_credit(self) -> None:
        run = Run()
        run.send(
            impression(1, 0),
            impression(2, 10),
            click(2, 20, user="u1"),
            conversion(9, 3600, user={"user_id": "u1"}),
        )
        assert [(r.touch, r.click_id) for r in run.drain()] == [("click", "clk2")]
        run2 = Run()
        run2.send(impression(1, 0), impression(2, 10), conversion(9, 3600, user={"user_id": "u1"}))
        assert [(r.touch, r.impression_id, r.ctit_seconds) for r in run2.drain()] == [
            ("view", "imp2", 3590)
        ]

    @pytest.mark.parametrize("first", [1, 2])
    def test_impressions_of_one_millisecond_credit_the_same_one_in_any_order(
        self, first: int
    ) -> None:
        run = Run()
        second = 3 - first
        run.send(impression(first, 10), impression(second, 10))
        run.send(conversion(9, 3600, user={"user_id": "u1"}))
        assert [(r.touch, r.impression_id) for r in run.drain()] == [("view", "imp2")]

    def test_view_window_is_one_day_by_default(self) -> None:
        run = Run()
        assert run.send(impression(1, 0), conversion(9, 2 * 86_400, user={"user_id": "u1"})) == []
        assert [r.touch for r in run.drain()] == ["none"]


class TestOutOfOrder:
    def test_an_orphan_rejoins_its_click_when_it_comes_after_all(self) -> None:
        run = Run()
        run.send(conversion(1, 100, click_id="clk1"), click(5, 500, user="u5"))
        [orphan] = run.tick()
        assert (orphan.touch, orphan.version, orphan.weight) == ("none", 1, 1)
        rows = run.send(click(1, 50))  # the click, delivered after the grace ran out
        moved = {(r.touch, r.click_id): r for r in rows}
        credited, left = moved["click", "clk1"], moved["none", None]
        assert (credited.version, credited.weight, credited.previous_weight) == (2, 1, 0)
        assert (credited.partner_id, credited.payout, credited.previous_payout) == ("p1", 10, 0)
        assert (left.version, left.weight, left.previous_weight) == (2, 0, 1)
        assert (left.payout, left.previous_payout) == (0, 10)
        conversions = sum(r.weight - r.previous_weight for r in [orphan, *rows])
        payout = sum(r.payout - r.previous_payout for r in [orphan, *rows])
        assert (conversions, payout) == (1, 10), "the rollups count it once, on the click"
        assert run.send(click(1, 50)) == [], "a duplicate click moves nothing again"

    def test_a_click_read_after_its_users_conversion_was_credited_takes_the_credit(
        self,
    ) -> None:
        """A partition that ran behind: the user's conversion settled (with a view) before
        the click that preceded it was read; that click gets it in a new version."""
        run = Run()
        run.send(impression(1, 0), conversion(1, 100, user={"user_id": "u1"}))
        run.send(click(9, 1000, user="u2"))  # the watermark passes the grace
        [first] = run.tick()
        assert (first.touch, first.impression_id, first.version) == ("view", "imp1", 1)
        rows = run.send(click(1, 50, user="u1"))
        moved = {(r.touch, r.click_id or r.impression_id): r for r in rows}
        credited, left = moved["click", "clk1"], moved["view", "imp1"]
        assert (credited.version, credited.weight, credited.previous_weight) == (2, 1, 0)
        assert (left.version, left.weight, left.previous_weight) == (2, 0, 1)
        assert credited.ctit_seconds == 50
        assert run.send(click(1, 50, user="u1")) == [], "a duplicate click moves nothing"
        assert run.send(click(2, 150, user="u1")) == [], "a click after the conversion neither"

    def test_conversion_before_its_click_waits_for_it(self) -> None:
        run = Run()
        assert run.send(conversion(1, 100, click_id="clk1")) == []
        rows = run.send(click(1, 90))
        assert [(r.click_id, r.ctit_seconds) for r in rows] == [("clk1", 10)]

    def test_grace_period_ends_in_an_orphan(self) -> None:
        run = Run()
        run.send(conversion(1, 100, click_id="clk-never"))
        run.send(click(5, 300))  # watermark 300 s: still inside the 300 s grace
        assert run.tick() == []
        run.send(click(6, 401))
        rows = run.tick()
        assert [(r.touch, r.conversion_id) for r in rows] == [("none", "v1")]

    def test_end_of_input_settles_waiting_conversions(self) -> None:
        run = Run()
        run.send(conversion(1, 100, click_id="clk-never"))
        assert [r.touch for r in run.drain()] == ["none"]

    def test_cookie_conversion_waits_for_a_click_from_another_partition(self) -> None:
        run = Run()
        assert run.send(conversion(1, 100, user={"user_id": "u1"})) == []
        assert run.send(click(1, 90)) == []
        assert [(r.click_id, r.ctit_seconds) for r in run.drain()] == [("clk1", 10)]

    def test_a_status_update_leaves_with_the_waiting_conversion_it_updates(self) -> None:
        """A live stream may not reach the update's own deadline for hours: it must not
        hold the approval back once the conversion it updates is credited."""
        run = Run()
        update = {"txid": "T1", "user": {"user_id": "u1"}}
        run.send(click(1, 0), conversion(1, 100, **update))
        run.send(conversion(2, 5000, status="approved", **update))
        rows = run.tick()
        assert [(r.conversion_id, r.version, r.status, r.click_id) for r in rows] == [
            ("v1", 1, "pending", "clk1"),
            ("v1", 2, "approved", "clk1"),
        ]

    def test_a_late_click_beats_an_older_one_it_preceded(self) -> None:
        run = Run()
        run.send(click(1, 0), conversion(1, 100, user={"user_id": "u1"}), click(2, 95))
        assert [r.click_id for r in run.drain()] == ["clk2"]

    def test_cookie_conversion_settles_after_the_grace_period(self) -> None:
        run = Run()
        run.send(conversion(1, 100, user={"user_id": "u1"}))
        run.send(click(7, 350, user="u2"))
        assert run.tick() == [], "grace (300 s) not over at 350 s"
        run.send(click(8, 401, user="u3"))
        assert [(r.touch, r.conversion_id) for r in run.tick()] == [("none", "v1")]


class TestTransactions:
    def test_status_update_keeps_original_status_and_adds_a_version(self) -> None:
        run = Run()
        first = run.send(click(1, 0), conversion(1, 60, click_id="clk1", txid="T1"))
        update = run.send(
            conversion(
                2, 600, click_id="clk1", txid="T1", status="approved", revenue=80.0, payout=8.0
            )
        )
        assert first[0].version == 1 and first[0].status == "pending"
        row = update[0]
        assert (row.conversion_id, row.version, row.status, row.original_status) == (
            "v1",
            2,
            "approved",
            "pending",
        )
        assert (row.revenue, row.previous_revenue, row.previous_status) == (80, 100, "pending")

    def test_late_pending_does_not_undo_a_decision(self) -> None:
        run = Run()
        run.send(click(1, 0), conversion(1, 60, click_id="clk1", txid="T1", status="approved"))
        rows = run.send(conversion(2, 70, click_id="clk1", txid="T1", status="pending"))
        assert rows[0].status == "approved"

    def test_ignore_policy_drops_repeats(self) -> None:
        run = Run()
        run.send(click(1, 0), conversion(1, 60, click_id="clk1", txid="L", action="lead"))
        assert run.send(conversion(2, 70, click_id="clk1", txid="L", action="lead")) == []

    def test_new_policy_counts_repeats(self) -> None:
        run = Run()
        run.send(click(1, 0), conversion(1, 60, click_id="clk1", txid="C", action="add_to_cart"))
        rows = run.send(conversion(2, 70, click_id="clk1", txid="C", action="add_to_cart"))
        assert [(r.conversion_id, r.version) for r in rows] == [("v2", 1)]


class TestDedup:
    def test_resent_event_is_dropped_but_redelivery_passes(self) -> None:
        dedup = Dedup({})
        assert dedup.admit("e1", T0, "clicks/0@5")
        assert not dedup.admit("e1", T0, "clicks/0@9"), "same id, another message: duplicate"
        assert dedup.admit("e1", T0, "clicks/0@5"), "the same message again: redelivery"
        assert dedup.dropped == 1

    def test_window_expiry(self) -> None:
        dedup = Dedup({}, window=timedelta(days=1))
        dedup.admit("e1", T0, "a@1")
        assert dedup.expire(T0 + timedelta(hours=23)) == 0
        assert dedup.expire(T0 + timedelta(days=2)) == 1
        assert dedup.admit("e1", T0, "a@2")

    def test_pipeline_drops_duplicate_conversions(self) -> None:
        run = Run()
        rows = run.send(
            click(1, 0), conversion(1, 60, click_id="clk1"), conversion(1, 60, click_id="clk1")
        )
        assert len(rows) == 1


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("last_click", [0, 0, 0, 1]),
        ("first_click", [1, 0, 0, 0]),
        ("linear", [0.25] * 4),
        ("position_based", [0.4, 0.1, 0.1, 0.4]),
    ],
)
def test_models_weights(model: str, expected: list[float]) -> None:
    times = [T0 + timedelta(days=d) for d in range(4)]
    assert credit(model, times, T0 + timedelta(days=4)) == pytest.approx(expected)


def test_time_decay_halves_per_week() -> None:
    weights = credit("time_decay", [T0, T0 + timedelta(days=7)], T0 + timedelta(days=7))
    assert weights == pytest.approx([1 / 3, 2 / 3])


def test_an_older_report_arriving_late_does_not_override_the_newer() -> None:
    run = Run()
    run.send(click(1, 0))
    run.send(conversion(5, 600, click_id="clk1", txid="T1", status="approved", revenue=90.0))
    rows = run.send(conversion(1, 60, click_id="clk1", txid="T1", status="pending"))
    row = rows[0]
    assert (row.status, row.original_status, row.revenue, row.version) == (
        "approved",
        "pending",
        90,
        2,
    )
