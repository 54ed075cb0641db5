"""The fraud stage: every rule over clicks and resolved conversions, one verdict per subject.

Called from the click stage (keyed by ``click_id``): ``on_click`` for each Click and
``on_conversion`` for each :class:`ResolvedConversion` that stage emits; a conversion
matched by user id only can be judged again once the user stage has credited a click
(``credited_touch`` builds the Touch from its row): judge each conversion once, either
there or here, or its partner counts it twice. ``close_windows`` closes partners'
windows at the watermark, ``expire`` bounds the state. Verdicts are emitted only for
subjects with reasons, and again whenever a subject gains one (latest wins); a
conversion gains the reasons its click gains after it was judged (see ``inheritance``).

State (``FRAUD_STATE``): ``fraud_ip``, ``fraud_ip_burst``, ``fraud_device`` (sliding
counts), ``fraud_network``, ``fraud_network_devices`` (see ``networks``),
``fraud_flagged`` (flagged clicks' reasons, so conversions inherit them),
``fraud_txids`` (transactions seen), ``fraud_partners`` (partner windows),
``fraud_click_conversions`` (conversions judged per click). Counts are
per partition: see :mod:`clicktrail.processors.fraud.windows`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from clicktrail.config import Registry
from clicktrail.contracts import AttributedConversion, Click, FraudVerdict, StateStore
from clicktrail.contracts.internal import ResolvedConversion, Touch
from clicktrail.processors.fraud.addresses import DatacenterRule
from clicktrail.processors.fraud.agents import BotAgentRule
from clicktrail.processors.fraud.anomaly import PartnerAnomaly
from clicktrail.processors.fraud.ctit import InjectionRule, ctit_seconds
from clicktrail.processors.fraud.flooding import ClickFloodRule
from clicktrail.processors.fraud.hits import Hit, ordered
from clicktrail.processors.fraud.inheritance import InheritedReasons
from clicktrail.processors.fraud.mismatch import mismatch_rule
from clicktrail.processors.fraud.networks import DedicatedNetworkRule
from clicktrail.processors.fraud.partners import PartnerMonitor, PartnerWindow
from clicktrail.processors.fraud.postbacks import ClickIdRule, ReplayRule
from clicktrail.processors.fraud.unknown_ids import UnknownIdRule
from clicktrail.processors.fraud.verdicts import Combiner, combined_score

FRAUD_STATE = (
    "fraud_ip",
    "fraud_ip_burst",
    "fraud_device",
    "fraud_network",
    "fraud_network_devices",
    "fraud_flagged",
    "fraud_txids",
    "fraud_partners",
    "fraud_click_conversions",
)
RETENTION = timedelta(days=31)
BOT_REASONS = frozenset({"bot_user_agent", "empty_user_agent"})


class FraudDetector:
    def __init__(
        self,
        registry: Registry,
        stores: Callable[[str], StateStore],
        *,
        on_window: Callable[[PartnerWindow], None] | None = None,
        seed: int = 7,
        anomaly: PartnerAnomaly | None = None,
    ) -> None:
        """``anomaly``: the partner anomaly model restored from a checkpoint (one of
        another feature set or threshold is not used: a fresh one starts instead)."""
        settings = registry.fraud
        self.combine = Combiner(settings)
        partners = registry.partners
        self.bots = BotAgentRule(
            settings, frozenset(k for k, p in partners.items() if p.traffic == "s2s")
        )
        self.datacenter = DatacenterRule(settings)
        self.flood = ClickFloodRule(
            stores("fraud_ip"), stores("fraud_ip_burst"), stores("fraud_device"), settings
        )
        self.networks = DedicatedNetworkRule(
            stores("fraud_network"), stores("fraud_network_devices"), settings
        )
        self.injection = InjectionRule(registry.actions, settings)
        self.click_ids = ClickIdRule(
            registry.security.click_id_key,
            frozenset(k for k, p in partners.items() if p.click_ids == "partner"),
        )
        self.replays = ReplayRule(stores("fraud_txids"), RETENTION.total_seconds())
        self.unknown_ids = UnknownIdRule(registry)
        self.flagged = stores("fraud_flagged")
        self.inherited = InheritedReasons(stores("fraud_click_conversions"), self.combine)
        model = PartnerAnomaly(threshold=settings.anomaly_threshold, seed=seed)
        if anomaly is not None and anomaly.compatible(model):
            model = anomaly
        self.partners = PartnerMonitor(stores("fraud_partners"), settings, model)
        self.on_window = on_window

    def __call__(self, item: Click | ResolvedConversion) -> list[FraudVerdict]:
        """The processor contract: one input in, the verdicts it causes out."""
        if isinstance(item, Click):
            return self.on_click(item)
        return self.on_conversion(item)

    def on_click(self, click: Click) -> list[FraudVerdict]:
        return self.judge_click(click)[0]

    def judge_click(self, click: Click) -> tuple[list[FraudVerdict], dict[str, int]]:
        """The click's verdicts, and its flood-window counts (model features)."""
        hits = [*self.bots(click), *self.datacenter(click)]
        bot = any(h.reason in BOT_REASONS for h in hits)
        hits += self.unknown_ids(click.partner_id, click.campaign_id)
        flood_hits, counts = self.flood.count(click)
        hits += flood_hits
        hits += self.networks(click)
        out, newly = self._judge_clicks(
            click.click_id, click.campaign_id, click.partner_id, click.ts, hits
        )
        self.partners.record(
            click.partner_id,
            click.ts,
            flagged=len(newly),
            mechanisms=newly,
            click_ip=click.user.ip,
            is_click=True,
            bot=bot,
        )
        return out, counts

    def on_conversion(self, resolved: ResolvedConversion) -> list[FraudVerdict]:
        conversion, click = resolved.conversion, resolved.click
        repeat = self.replays.is_repeat(conversion)
        hits = [
            *self.click_ids(resolved),
            *self.replays(conversion),
            *self.unknown_ids(conversion.partner_id, conversion.campaign_id),
        ]
        ctit = None
        if click is not None:
            ctit = None if repeat else ctit_seconds(conversion, click)
            hits += [*self.injection(conversion, click), *mismatch_rule(conversion, click)]
        own = {h.reason for h in hits if h.subject_id is None}
        if click is not None and (inherited := self.flagged.get(click.touch_id)):
            own.update(inherited[1])
        partner = click.partner_id if click else conversion.partner_id
        campaign = click.campaign_id if click else conversion.campaign_id
        out: list[FraudVerdict] = []
        flagged: list[str] = []
        if own or resolved.lookup in ("rejoined", "retouched"):  # revised, even to ok
            verdict = self.combine(
                "conversion",
                conversion.event_id,
                conversion.ts,
                own,
                partner_id=partner,
                campaign_id=campaign,
            )
            out.append(verdict)
            if verdict.action != "ok":
                flagged.append(verdict.reasons[0])
        if click is not None:
            on_click = [h for h in hits if h.subject_id == click.touch_id]
            verdicts, newly = self._judge_clicks(
                click.touch_id, click.campaign_id, click.partner_id, conversion.ts, on_click
            )
            out += verdicts
            flagged += newly
            self.inherited.remember(
                click.touch_id,
                conversion.event_id,
                conversion.ts,
                own,
                partner=partner,
                campaign=campaign,
            )
        if partner:
            self.partners.record(
                partner,
                conversion.ts,
                flagged=len(flagged),
                mechanisms=flagged,
                ctit=ctit,
                conversion=not repeat,
                action=conversion.action,
            )
        return out

    def _judge_clicks(
        self, click_id: str, campaign: str, partner: str, ts: datetime, hits: list[Hit]
    ) -> tuple[list[FraudVerdict], list[str]]:
        """Merge hits into each click's stored reasons; a verdict per click that changed,
        and for each conversion judged on it that gains a reason. Also the mechanism (the
        first reason) of each click or conversion this convicted, for its partner."""
        by_click: dict[str, tuple[set[str], str, str]] = {}
        for hit in hits:
            subject = hit.subject_id or click_id
            entry = by_click.setdefault(
                subject, (set(), hit.campaign_id or campaign, hit.partner_id or partner)
            )
            entry[0].add(hit.reason)
        out: list[FraudVerdict] = []
        newly: list[str] = []
        for subject, (reasons, subject_campaign, subject_partner) in by_click.items():
            before: list[Any] = self.flagged.get(subject) or [ts.timestamp(), []]
            merged = set(before[1]) | reasons
            if merged == set(before[1]):
                continue
            self.flagged[subject] = [before[0], sorted(merged)]
            verdict = self.combine(
                "click",
                subject,
                ts,
                merged,
                partner_id=subject_partner,
                campaign_id=subject_campaign,
            )
            was_ok = self.combine.action(combined_score(ordered(before[1]))) == "ok"
            mechanism = verdict.reasons[0] if verdict.reasons else ""
            if was_ok and verdict.action != "ok":
                newly.append(mechanism)
            out.append(verdict)
            revised, convicted = self.inherited.revise(subject, merged)
            out += revised
            newly += [mechanism] * convicted
        return out, newly

    def close_windows(self, watermark: datetime) -> list[FraudVerdict]:
        """Partner windows that ended before the watermark (run with the stage's tick): a
        verdict for each window with reasons, and a clean one (``ok``, no reasons) for a
        window that ends a flagged run, so the alerting can resolve what it announced."""
        out = []
        for window in self.partners.close_until(watermark):
            if self.on_window is not None:
                self.on_window(window)
            if window.reasons or window.cleared:
                out.append(
                    self.combine(
                        "partner",
                        window.partner_id,
                        window.end,
                        window.reasons,
                        partner_id=window.partner_id,
                    )
                )
        return out

    def expire(self, watermark: datetime) -> int:
        """Drop expired counters, transactions and flagged clicks (a sweep: run rarely)."""
        horizon = (watermark - RETENTION).timestamp()
        stale = [k for k, v in self.flagged.items() if v[0] < horizon]
        for key in stale:
            del self.flagged[key]
        return (
            len(stale)
            + self.flood.expire(watermark.timestamp())
            + self.networks.expire(watermark.timestamp())
            + self.replays.expire(watermark)
            + self.inherited.expire(watermark - RETENTION)
        )


def credited_touch(row: AttributedConversion) -> Touch | None:
    """The click a user-stage row credits, as a Touch, to judge a user-matched conversion."""
    if row.touch != "click" or not row.click_id or row.click_ts is None:
        return None
    return Touch.model_construct(
        kind="click",
        touch_id=row.click_id,
        event_id=row.click_id,
        ts=row.click_ts,
        campaign_id=row.campaign_id or "",
        advertiser_id=row.advertiser_id,
        partner_id=row.partner_id or "",
        channel=row.channel,
        country=row.country,
        device_type=row.device_type,
    )
