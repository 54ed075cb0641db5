"""Delayed labels: which (click, action) pairs are learned, with which label, and when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clicktrail.config import Registry, parse_registry
from clicktrail.config.registry import DEFAULT_LABEL_HORIZON_HOURS
from clicktrail.contracts import AttributedConversion, Click
from clicktrail.processors.models import ActionModels, DelayedLabels, Learned
from clicktrail.processors.models.online import OnlineModels

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
ACTIONS = ("signup", "purchase")


def click(click_id: str, at: datetime = T0, fields: dict[str, object] | None = None) -> Click:
    base: dict[str, object] = {
        "event_id": f"e-{click_id}",
        "ts": at,
        "click_id": click_id,
        "campaign_id": "shop-affiliates",
        "partner_id": "aff-1",
        "channel": "affiliate",
        "user": {"user_id": "u1", "country": "DE", "device_type": "mobile", "os": "Android"},
    }
    return Click.model_validate(base | (fields or {}))


def conversion(
    click_id: str, action: str, at: datetime = T0, fraud: str = "ok"
) -> AttributedConversion:
    return AttributedConversion(
        conversion_id=f"c-{click_id}-{action}",
        action=action,
        status="pending",
        original_status="pending",
        revenue=10.0,
        payout=1.0,
        currency="EUR",
        conversion_ts=at,
        touch="click",
        click_id=click_id,
        fraud_action=fraud,
    )


def make(**options: object) -> tuple[DelayedLabels, dict[str, object], ActionModels]:
    pending: dict[str, object] = {}
    models = ActionModels(ACTIONS)
    labels = DelayedLabels(
        pending,
        models,
        actions_for=lambda _click: ACTIONS,
        window_for=lambda _click: timedelta(days=30),
        **options,  # type: ignore[arg-type]
    )
    return labels, pending, models


def pairs(learned: list[Learned]) -> list[tuple[str, str, bool]]:
    return [(e.click_id, e.action, e.label) for e in learned]


class TestDelayedLabels:
    def test_conversion_makes_a_positive_only_for_its_action(self) -> None:
        """A signup is a positive for signup and nothing else (at once, when not held)."""
        labels, pending, _ = make(hold_positives=False)
        labels.on_click(click("k1"))
        assert pairs(labels.on_conversion(conversion("k1", "signup"))) == [("k1", "signup", True)]
        assert list(pending["k1"]["open"]) == ["purchase"]  # type: ignore[index]

    def test_window_close_makes_negatives_for_actions_not_seen(self) -> None:
        """Past click ts + window every open action becomes a negative, and the entry goes."""
        labels, pending, _ = make(hold_positives=False)
        labels.on_click(click("k1"))
        labels.on_click(click("k2", T0 + timedelta(days=1)))
        labels.on_conversion(conversion("k1", "purchase"))
        assert labels.expire(T0 + timedelta(days=30) - timedelta(seconds=1)) == []
        learned = labels.expire(T0 + timedelta(days=30))
        assert pairs(learned) == [("k1", "signup", False)]
        assert "k1" not in pending and "k2" in pending
        assert pairs(labels.expire(T0 + timedelta(days=31))) == [
            ("k2", "purchase", False),
            ("k2", "signup", False),
        ]
        assert pending == {}

    def test_duplicates_do_not_learn_twice(self) -> None:
        """The same conversion again, and a click delivered twice, learn nothing new."""
        labels, _, models = make(hold_positives=False)
        labels.on_click(click("k1"))
        labels.on_click(click("k1"))
        assert len(labels.on_conversion(conversion("k1", "signup"))) == 1
        assert labels.on_conversion(conversion("k1", "signup")) == []
        labels.drain()
        assert labels.on_conversion(conversion("k1", "purchase")) == []
        assert models.quality["signup"].examples == 1
        assert models.quality["purchase"].examples == 1
        assert labels.unmatched == 2

    def test_fraud_flagged_clicks_are_excluded(self) -> None:
        """A reject verdict (marked, or on the conversion row) keeps a click out of training."""
        labels, pending, models = make()
        labels.on_click(click("k1"))
        labels.on_click(click("k2"))
        assert labels.mark_fraud("k1") is True
        assert labels.mark_fraud("nope") is False
        assert labels.on_conversion(conversion("k1", "signup")) == []
        assert labels.on_conversion(conversion("k2", "signup", fraud="reject")) == []
        assert labels.drain() == []
        assert models.quality["signup"].examples == 0
        assert pending == {}

    def test_label_horizon_and_held_positives(self) -> None:
        """A horizon decides sooner; held positives are learned at the deadline, once."""
        labels, _, models = make(label_horizon={"signup": timedelta(hours=1)})
        labels.on_click(click("k1"))
        labels.on_click(click("k2"))
        assert labels.on_conversion(conversion("k1", "signup")) == []
        assert labels.on_conversion(conversion("k1", "signup")) == []
        assert labels.on_conversion(conversion("k2", "purchase")) == []
        assert pairs(labels.expire(T0 + timedelta(hours=1))) == [
            ("k1", "signup", True),
            ("k2", "signup", False),
        ]
        assert labels.on_conversion(conversion("k1", "signup")) == []
        assert pairs(labels.drain()) == [("k1", "purchase", False), ("k2", "purchase", True)]
        assert models.quality["signup"].examples == models.quality["purchase"].examples == 2

    def test_a_conversion_after_its_horizon_is_no_positive_however_late_the_sweep(
        self,
    ) -> None:
        """The deadline is event time: a sweep that has not run yet changes nothing."""
        labels, _, _ = make(label_horizon={"signup": timedelta(hours=1)})
        labels.on_click(click("k1"))
        late = conversion("k1", "signup", at=T0 + timedelta(hours=2))
        assert labels.on_conversion(late) == [] and labels.unmatched == 1
        on_time = conversion("k1", "signup", at=T0 + timedelta(minutes=59))
        assert labels.on_conversion(on_time) == []  # held until the deadline
        assert pairs(labels.expire(T0 + timedelta(hours=2))) == [("k1", "signup", True)]

    def test_held_positive_of_a_click_found_fraudulent_later_is_not_learned(self) -> None:
        labels, _, models = make()
        labels.on_click(click("k1"))
        labels.on_conversion(conversion("k1", "signup"))
        labels.mark_fraud("k1")
        assert labels.drain() == []
        assert models.quality["signup"].examples == 0

    def test_view_touches_and_unknown_clicks_are_ignored(self) -> None:
        labels, _, _ = make()
        row = conversion("k9", "signup").model_copy(update={"touch": "view", "click_id": None})
        assert labels.on_conversion(row) == []
        assert labels.on_conversion(conversion("k9", "signup")) == []

    def test_scores_are_stored_json_friendly(self) -> None:
        """Pending examples hold only plain dicts, lists, floats: a changelog can carry them."""
        import json

        labels, pending, _ = make()
        scores = labels.on_click(click("k1"))
        assert set(scores) == set(ACTIONS)
        assert all(0 < p < 1 for p in scores.values())
        assert json.loads(json.dumps(pending)) == pending
        assert labels.on_click(click("k1")) == scores

    @pytest.mark.parametrize(
        "fields",
        [
            {"user": {}},
            {"keyword": "Brand Shoes", "placement": "top", "user": {"segments": ["new"]}},
            {"campaign_id": "never-seen", "partner_id": "never-seen"},
        ],
    )
    def test_missing_fields_and_unseen_categories_do_not_crash(
        self, fields: dict[str, object]
    ) -> None:
        labels, _, _ = make()
        labels.on_click(click("k1", fields=fields))
        labels.on_conversion(conversion("k1", "purchase"))
        assert pairs(labels.drain()) == [("k1", "purchase", True), ("k1", "signup", False)]


class TestDefaultHorizons:
    """An action without ``label_horizon_hours`` waits hours, not the 30-day click window."""

    def registry(self, **actions: dict[str, object]) -> Registry:
        return parse_registry(
            {
                "advertisers": {"shop": {"postback_secret": "s" * 16}},
                "campaigns": {
                    "shop-affiliates": {
                        "advertiser": "shop",
                        "landing_url": "https://shop.example/",
                    }
                },
                "partners": {"aff-1": {}},
                "actions": actions,
            }
        )

    def test_standard_actions_and_others_get_their_default(self) -> None:
        actions = self.registry(lead={}, purchase={}, deposit={}, signup={"label_horizon_hours": 1})
        hours = {name: a.horizon_hours(name) for name, a in actions.actions.items()}
        assert hours == {
            "lead": 2,
            "purchase": 6,
            "deposit": DEFAULT_LABEL_HORIZON_HOURS,
            "signup": 1,
        }

    def test_a_first_week_learns_before_it_ends(self) -> None:
        """Clicks of a replayed week are labelled hours after they happen (the click window
        would have left every one pending until the traffic was over)."""
        online = OnlineModels(self.registry(lead={}, purchase={}), {})
        online.on_click(click("k1"), rejected=False)
        learned = online.labels.expire(T0 + timedelta(hours=2))
        assert pairs(learned) == [("k1", "lead", False)]
        assert pairs(online.labels.expire(T0 + timedelta(hours=6))) == [("k1", "purchase", False)]

    def test_the_click_window_still_caps_the_default(self) -> None:
        registry = self.registry(purchase={})
        short = registry.campaigns["shop-affiliates"].attribution.model_copy(
            update={"click_window_days": 0.125}
        )
        campaign = registry.campaigns["shop-affiliates"].model_copy(update={"attribution": short})
        online = OnlineModels(
            registry.model_copy(update={"campaigns": {"shop-affiliates": campaign}}), {}
        )
        online.on_click(click("k1"), rejected=False)
        assert pairs(online.labels.expire(T0 + timedelta(hours=3))) == [("k1", "purchase", False)]
