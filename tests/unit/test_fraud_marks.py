"""A conversion's fraud verdict on its attributed rows: set once, kept by its updates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from clicktrail.config import parse_registry
from clicktrail.contracts import EVENT_ADAPTER, AttributedConversion, FraudVerdict
from clicktrail.processors.signing import ClickIdSigner
from clicktrail.runtime.pipeline import Pipeline

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY = "marks-click-key-0123456789"
REGISTRY = parse_registry(
    {
        "security": {"click_id_key": KEY},
        "advertisers": {"acme": {"postback_secret": "s" * 16}},
        "campaigns": {"cmp": {"advertiser": "acme", "landing_url": "https://acme.example/"}},
        "actions": {"purchase": {"txid_policy": "update"}},
    }
)
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"


class Run:
    """Both stages in a row, each forwarded record a message of its own."""

    def __init__(self) -> None:
        self.pipeline = Pipeline(REGISTRY)
        self.rows: list[AttributedConversion] = []
        self.verdicts: list[FraudVerdict] = []
        self.offset = 0

    def send(self, data: dict[str, Any]) -> None:
        self.offset += 1
        result = self.pipeline.on_event(EVENT_ADAPTER.validate_python(data), f"t@{self.offset}")
        self.verdicts += [r for r in result.stored if isinstance(r, FraudVerdict)]
        self.forward(result.forwarded)

    def forward(self, records: list[Any]) -> None:
        for n, record in enumerate(records):
            for out in self.pipeline.on_forwarded(record, f"t@{self.offset}/{n}"):
                if isinstance(out, AttributedConversion):
                    self.rows.append(out)
                elif isinstance(out, FraudVerdict):
                    self.verdicts.append(out)

    def settle(self) -> None:
        self.offset += 1
        self.forward(self.pipeline.drain())

    def marks(self) -> list[tuple[int, str, str, str | None]]:
        return [(r.version, str(r.status), r.fraud_action, r.fraud_reason) for r in self.rows]

    def differences(self) -> list[tuple[str | None, str]]:
        """Each row's verdict change: (previous, current)."""
        return [(r.previous_fraud_action, r.fraud_action) for r in self.rows]

    def verdict_of(self, event_id: str) -> tuple[str, list[str]] | None:
        found = [v for v in self.verdicts if v.subject_id == event_id]
        return (str(found[-1].action), list(found[-1].reasons)) if found else None


def at(seconds: float) -> int:
    return int((T0 + timedelta(seconds=seconds)).timestamp() * 1000)


def click(
    click_id: str, seconds: float, agent: str = BROWSER, user: str = "u1", ip: str = "81.2.3.0"
) -> dict[str, Any]:
    return {
        "type": "click",
        "event_id": f"c-{click_id}",
        "ts": at(seconds),
        "click_id": click_id,
        "campaign_id": "cmp",
        "partner_id": "p1",
        "user": {"user_id": user, "user_agent": agent, "ip": ip},
    }


def purchase(event_id: str, seconds: float, **fields: Any) -> dict[str, Any]:
    return {
        "type": "conversion",
        "event_id": event_id,
        "ts": at(seconds),
        "txid": "T1",
        "action": "purchase",
        "revenue": 50.0,
        "payout": 5.0,
        "user": {"user_id": "u1"},
        **fields,
    }


SIGNER = ClickIdSigner(KEY)


class TestMarks:
    def test_a_verdict_given_in_the_user_stage_stays_on_updates_from_the_click_stage(
        self,
    ) -> None:
        """Matched by cookie to a crawler's click: rejected there; the approval that names
        the click is judged in the click stage, and its rows still carry the rejection."""
        run = Run()
        bot_click = SIGNER.mint(at(0))
        run.send(click(bot_click, 0, agent="Mozilla/5.0 (compatible; bingbot/2.0)"))
        run.send(purchase("v1", 600))
        run.settle()
        run.send(purchase("v2", 7200, click_id=bot_click, status="approved"))
        assert run.marks() == [
            (1, "pending", "reject", "bot_user_agent"),
            (2, "approved", "reject", "bot_user_agent"),
        ]

    def test_an_updates_own_verdict_leaves_the_conversion_as_it_was(self) -> None:
        """The same postback sent again is a replay, rejected on its own; the purchase it
        repeats (a version of it under the update policy) stays clean."""
        run = Run()
        run.send(click(SIGNER.mint(at(0)), 0))
        run.send(purchase("v1", 600))
        run.settle()
        run.send(purchase("v1-again", 900))
        run.settle()
        assert run.verdict_of("v1-again") == ("reject", ["replayed_postback"])
        assert run.marks() == [(1, "pending", "ok", None), (2, "pending", "ok", None)]

    def test_a_verdict_revised_later_reaches_the_rows_as_a_new_version(self) -> None:
        """A postback read before the flood that convicts its click (a backlog of two
        topics): judged clean first, then revised, in a version that says what changed."""
        run = Run()
        flood = [SIGNER.mint(at(i)) for i in range(6)]
        for i, click_id in enumerate(flood[:5]):
            run.send(click(click_id, i * 3, user=f"u{i}", ip="192.0.2.0"))
        run.send(purchase("v1", 7200, click_id=flood[1], user={"user_id": "u1"}))
        run.send(click(flood[5], 15, user="u5", ip="192.0.2.0"))
        assert run.verdict_of("v1") == ("reject", ["click_flood_ip"])
        assert run.marks() == [
            (1, "pending", "ok", None),
            (2, "pending", "reject", "click_flood_ip"),
        ]
        assert run.differences() == [(None, "ok"), ("ok", "reject")]
