"""Plain-language advice, computed from the dashboard's figures and ranked by money at stake.

Pure functions of :mod:`clicktrail.ui.queries` results and the registry's
``dashboard`` settings: no SQL here, no names either. Each piece says what to do, why in
one sentence, how much money it concerns, how sure it is, and where the evidence is.
Accusations (stop paying, brand notices) need a verdict of the detectors behind them: a
partner is told off only when its partner-level fraud verdict is reject *and* most of its
traffic in the period was flagged; a brand bidder only when the conflict's severity is
warning or critical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import quote

from clicktrail.config.registry import DashboardSettings
from clicktrail.ui.queries import Conflict, Funnel, Overview, Partner, Segment

REASON_WORDS: dict[str, str] = {
    "click_flood_ip": "click flooding",
    "click_flood_network": "click flooding",
    "click_flood_device": "click flooding",
    "ctit_distribution": "click flooding",
    "late_ctit": "click flooding",
    "ctit_too_short": "click injection",
    "bot_user_agent": "bot traffic",
    "empty_user_agent": "bot traffic",
    "datacenter_ip": "data-centre traffic",
    "forged_click_id": "forged postbacks",
    "orphan_conversion": "conversions without a click",
    "replayed_postback": "replayed postbacks",
    "geo_mismatch": "geo mismatch between click and conversion",
    "device_mismatch": "device mismatch between click and conversion",
    "partner_fraud_share": "a high share of flagged traffic",
    "partner_anomaly": "anomalous traffic",
}
SEVERE = ("warning", "critical")
Z95 = 1.96
FUNNEL_MIN_EXPECTED = 5.0
"""Conversions the campaign's rate must predict for a partner before a shortfall is news."""
FUNNEL_Z = 2.0
"""Standard deviations (Poisson) a shortfall must reach: fewer is within chance."""
FUNNEL_MAX = 5
"""Funnel advice shown at most: the largest shortfalls in money."""


@dataclass(frozen=True)
class Advice:
    kind: str
    """stop_paying, brand_notice, cpa_over_goal, roas_under_goal, funnel_stage, segment."""
    subject: str
    text: str
    money: float
    confidence: str
    link: str
    link_label: str


def words(reason: str) -> str:
    return REASON_WORDS.get(reason, reason.replace("_", " "))


def wilson_low(hits: float, n: float) -> float:
    """Lower end of the 95 % Wilson interval of ``hits`` out of ``n``."""
    if n <= 0:
        return 0.0
    p = min(1.0, hits / n)
    centre = p + Z95 * Z95 / (2 * n)
    margin = Z95 * math.sqrt(p * (1 - p) / n + Z95 * Z95 / (4 * n * n))
    return max(0.0, (centre - margin) / (1 + Z95 * Z95 / n))


def money(amount: float, currency: str) -> str:
    return f"{currency} {amount:,.2f}"


def stop_paying(partners: list[Partner], settings: DashboardSettings, query: str) -> list[Advice]:
    out = []
    for p in partners:
        share = p.flagged_share
        if p.verdict != "reject" or share is None or share < settings.stop_paying_share:
            continue
        traffic = max(p.figures.clicks, p.figures.conversions + p.figures.rejected)
        if traffic < settings.min_partner_clicks:
            continue
        reasons = [r for r, _ in p.top_reasons(3) if r in REASON_WORDS] or p.verdict_reasons
        mechanisms = list(dict.fromkeys(words(r) for r in reasons))[:2]
        unit = p.flagged_unit
        low = wilson_low(share * p.volume, p.volume)
        held = (
            f"{money(p.figures.withheld, settings.currency)} of payouts are on hold"
            if p.figures.withheld > 0
            else "none of its payouts is on hold yet"
        )
        text = (
            f"Stop paying {p.partner_id}: {share:.0%} of its {unit} in this period were flagged "
            f"({', '.join(mechanisms)}); {held}"
        )
        if p.figures.payout > 0:
            text += f" and {money(p.figures.payout, settings.currency)} still counts as owed"
        out.append(
            Advice(
                "stop_paying",
                p.partner_id,
                text + ".",
                p.figures.withheld + p.figures.payout + p.figures.cost,
                f"High: the fraud detectors rejected this partner in {p.rejected_windows} "
                f"window(s), and at 95 % confidence at least {low:.0%} of its "
                f"{p.volume:,.0f} {unit} are flagged.",
                f"/ui/partners/{quote(p.partner_id, safe='')}?{query}",
                "flagged events",
            )
        )
    return out


def brand_notices(
    conflicts: list[Conflict], settings: DashboardSettings, query: str
) -> list[Advice]:
    out = []
    for c in conflicts:
        if c.severity not in SEVERE:
            continue
        keyword = c.keywords.split(", ")[0] if c.keywords else ""
        if "domain" in c.signals.split(", ") and c.kind == "partner":
            what = f"advertises under a lookalike of your domain on '{keyword}'"
        elif keyword and ("term" in c.signals or "misspelled_term" in c.signals):
            what = f"bids on '{keyword}'"
        elif keyword:
            what = f"sends clicks from paid search for '{keyword}'"
        else:
            what = f"sends brand traffic ({c.signals})"
        against = (
            f"against your {c.brand} brand campaign"
            + (f" {', '.join(c.official_campaigns)}" if c.official_campaigns else "")
            if c.head_to_head
            else f"on your {c.brand} brand"
        )
        text = f"{c.offender} {what} {against}"
        if c.cpc_inflation is not None:
            text += f"; your brand CPC is up about {c.cpc_inflation:.0%} in those auctions"
        if c.cost_impact:
            text += f" ({money(c.cost_impact, settings.currency)} extra spend so far)"
        action = "send the notice" if c.kind == "partner" else "report the ad"
        evidence = f"{c.impressions:,} impressions and {c.clicks:,} clicks"
        if c.insight_rows:
            evidence += f", {c.insight_rows} auction-insights rows"
        out.append(
            Advice(
                "brand_notice",
                c.offender,
                f"{text}: {action}.",
                c.cost_impact or 0.0,
                f"{'High' if c.severity == 'critical' else 'Medium'}: {evidence} since "
                f"{c.first_seen:%Y-%m-%d} ({c.signals}).",
                f"/ui/conflicts?{query}",
                "brand conflicts",
            )
        )
    return out


def goals(overview: Overview, settings: DashboardSettings, query: str) -> list[Advice]:
    out = []
    for row in overview.campaigns:
        cpa, roas = row.cpa, row.roas
        sure = "High" if row.conversions >= 30 else "Low" if row.conversions < 10 else "Medium"
        confidence = f"{sure}: {row.conversions:,.0f} {row.action} conversions in the period."
        link = f"/ui/funnel?campaign={quote(row.campaign_id, safe='')}&segment=partner&{query}"
        if row.target_cpa is not None and row.conversions <= 0 and row.spend > 0:
            out.append(
                Advice(
                    "cpa_over_goal",
                    row.campaign_id,
                    f"{row.campaign_id}: {money(row.spend, settings.currency)} spent and not one "
                    f"{row.action} conversion against a CPA goal of "
                    f"{money(row.target_cpa, settings.currency)}. Check its funnel and tracking.",
                    row.spend,
                    "Medium: no conversion of this action in the period.",
                    link,
                    "funnel by partner",
                )
            )
        if row.over_goal and cpa is not None and row.target_cpa is not None:
            over = (cpa - row.target_cpa) * row.conversions
            out.append(
                Advice(
                    "cpa_over_goal",
                    row.campaign_id,
                    f"{row.campaign_id}: {row.action} CPA is "
                    f"{money(cpa, settings.currency)} against a goal of "
                    f"{money(row.target_cpa, settings.currency)} "
                    f"({cpa / row.target_cpa - 1:.0%} over): {money(over, settings.currency)} "
                    "spent above goal. Check its funnel for the partners that cost most.",
                    over,
                    confidence,
                    link,
                    "funnel by partner",
                )
            )
        if row.under_goal and roas is not None and row.target_roas is not None:
            short = row.target_roas * row.spend - row.revenue
            out.append(
                Advice(
                    "roas_under_goal",
                    row.campaign_id,
                    f"{row.campaign_id}: {row.action} ROAS is {roas:.2f} against a goal of "
                    f"{row.target_roas:.2f}: {money(short, settings.currency)} of revenue short.",
                    short,
                    confidence,
                    link,
                    "funnel by partner",
                )
            )
    return out


def funnel_stages(
    funnels: list[Funnel],
    skip: set[str],
    value: dict[tuple[str, str], float],
    settings: DashboardSettings,
    query: str,
) -> list[Advice]:
    """Partner stages below their campaign's norm, beyond chance. ``value`` is the revenue
    of one conversion per (campaign, action), what each missing conversion is worth."""
    out = []
    for f in funnels:
        for partner, stages in f.segments:
            if partner in skip or not partner:
                continue
            clicks = stages[1].count
            for stage, norm in zip(stages[2:], f.overall[2:], strict=True):
                if not stage.below_norm or stage.rate is None or not norm.rate:
                    continue
                expected = norm.rate * clicks
                missing = expected - stage.count
                if expected < FUNNEL_MIN_EXPECTED or missing < FUNNEL_Z * math.sqrt(expected):
                    continue  # within chance of the campaign's rate
                worth = missing * value.get((f.campaign_id, stage.name), 0.0)
                low = wilson_low(norm.rate * clicks, clicks)
                out.append(
                    Advice(
                        "funnel_stage",
                        partner,
                        f"{stage.name} per click for {partner} on {f.campaign_id} is "
                        f"{1 - stage.rate / norm.rate:.0%} below the campaign "
                        f"({stage.rate:.1%} vs {norm.rate:.1%}): check the quality of its "
                        f"traffic; about {missing:,.0f} {stage.name} conversions are missing.",
                        worth,
                        f"{'High' if stage.rate < low else 'Medium'}: {clicks:,.0f} clicks; "
                        f"{stage.count:,.0f} conversions where the campaign's rate gives "
                        f"{norm.rate * clicks:,.0f}.",
                        f"/ui/funnel?campaign={quote(f.campaign_id, safe='')}&segment=partner&"
                        f"{query}",
                        "funnel by partner",
                    )
                )
    return sorted(out, key=lambda a: -a.money)[:FUNNEL_MAX]


def segments(
    found: dict[str, list[Segment]], settings: DashboardSettings, query: str
) -> list[Advice]:
    """The strongest country x device segment per action, when its rate is above the
    action's by ``segment_lift`` even at the low end of its interval."""
    out = []
    for action, rows in found.items():
        ranked = sorted(rows, key=lambda s: -wilson_low(s.conversions, s.clicks))
        for s in ranked[:1]:
            low = wilson_low(s.conversions, s.clicks)
            if s.conversions < settings.min_segment_conversions or not s.base_rate:
                continue
            if low < settings.segment_lift * s.base_rate:
                continue
            device = {"mobile": "Mobile", "desktop": "Desktop", "tablet": "Tablet"}.get(
                s.device, s.device or "Any device"
            )
            out.append(
                Advice(
                    "segment",
                    f"{s.country}/{s.device}",
                    f"{device} {s.country or '(unknown country)'} users are "
                    f"{s.rate / s.base_rate:.1f}x more likely to {action.replace('_', ' ')} "
                    f"than average ({s.rate:.1%} vs {s.base_rate:.1%} per click): shift "
                    "budget there.",
                    0.0,
                    f"Medium: {s.conversions:,.0f} conversions of {s.clicks:,.0f} clicks; at 95 % "
                    f"confidence at least {low / s.base_rate:.1f}x the average.",
                    f"/ui/targeting?{query}",
                    "targeting",
                )
            )
    return out


def rank(advice: list[Advice]) -> list[Advice]:
    """Most money first; advice without a money figure after, in the order given."""
    return sorted(advice, key=lambda a: -a.money)
