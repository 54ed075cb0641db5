"""The dashboard's questions to ClickHouse: plain functions returning plain data.

Figures come from the hourly rollups through ``agg_hourly_flagged`` (migration 010: one
definition of flagged), net of fraud-rejected conversions: conversions, approved, revenue
and payout leave out what the fraud verdicts rejected, and that payout is shown apart as
*withheld*. Fraud reasons and evidence come from ``fraud_verdicts`` (ordered by partner and
time), brand conflicts from ``brand_conflicts``, targeting from ``click_scores``. Raw tables
are read only where no rollup holds the dimension: a partner's sub-ids.

Every value from a URL is a bound parameter (``{name:Type}``); the only text formatted into
SQL is the database name (checked by :class:`~clicktrail.sinks.store.Store`) and column
names from :data:`clicktrail.ui.params.SEGMENTS`.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from clicktrail.cli.commands import CONFLICTS_VIEW
from clicktrail.sinks.store import Store
from clicktrail.ui.params import RAW_SEGMENTS, Period

IN_PERIOD = "hour >= {start:DateTime('UTC')} AND hour < {end:DateTime('UTC')}"
FIGURES = """sum(impressions), sum(clicks),
       sum(conversions - rejected_conversions), sum(approved - rejected_approved),
       toFloat64(sum(revenue - rejected_revenue)), toFloat64(sum(payout - rejected_payout)),
       toFloat64(sum(cost)), sum(rejected_conversions), toFloat64(sum(rejected_payout)),
       sum(suspicious_conversions)"""
"""The figures of :class:`Figures`, in its field order, over ``agg_hourly_flagged``."""
CTIT_EDGES = (10, 60, 600, 3600, 6 * 3600, 86_400)
"""Bucket edges (seconds) of the CTIT histogram: injection lives under 10 s, honest
conversions mostly within the hour, flooding in a long flat tail past a day."""
CTIT_LABELS = ("< 10 s", "10 s-1 min", "1-10 min", "10 min-1 h", "1-6 h", "6-24 h", "> 1 day")
ACTION_ORDER = ("lead", "signup", "add_to_cart", "install", "purchase")
SEVERITIES = ("info", "warning", "critical")
EVIDENCE_IDS = 5
"""Event ids shown per brand conflict."""
MAX_SEGMENTS = 50
"""Funnel rows shown, the most clicked first (a sub-id split can have thousands)."""
"""Event ids shown per brand conflict."""


class Returns:
    """CPA and ROAS of whatever has ``spend``, ``conversions`` and ``revenue``."""

    if TYPE_CHECKING:
        conversions: float
        revenue: float

        @property
        def spend(self) -> float: ...

    @property
    def cpa(self) -> float | None:
        return self.spend / self.conversions if self.conversions > 0 else None

    @property
    def roas(self) -> float | None:
        return self.revenue / self.spend if self.spend > 0 else None


@dataclass
class Figures(Returns):
    """Sums of the rollups over some rows; conversions and money net of fraud rejects."""

    impressions: int = 0
    clicks: int = 0
    conversions: float = 0.0
    approved: float = 0.0
    revenue: float = 0.0
    payout: float = 0.0
    cost: float = 0.0
    rejected: float = 0.0
    withheld: float = 0.0
    suspicious: float = 0.0
    """Conversions whose verdict is suspicious and not escalated (counted, not withheld)."""

    def add(self, row: tuple[Any, ...]) -> None:
        self.impressions += int(row[0])
        self.clicks += int(row[1])
        self.conversions += float(row[2])
        self.approved += float(row[3])
        self.revenue += float(row[4])
        self.payout += float(row[5])
        self.cost += float(row[6])
        self.rejected += float(row[7])
        self.withheld += float(row[8])
        self.suspicious += float(row[9])

    @property
    def spend(self) -> float:
        """What was paid: media cost and the payouts not withheld."""
        return self.cost + self.payout

    @property
    def approved_share(self) -> float | None:
        return self.approved / self.conversions if self.conversions > 0 else None


def _db(store: Store) -> str:
    return store.database


def latest_day(store: Store) -> date | None:
    """The last day with traffic in the rollups, so a page opens on data rather than on
    today (conversions that straggle in days after the last click do not move it)."""
    rows = store.report(
        f"SELECT max(hour), count() FROM {_db(store)}.agg_hourly "
        "WHERE clicks > 0 OR impressions > 0"
    )
    if not rows or not rows[0][1]:
        return None
    latest: datetime = rows[0][0]
    return latest.date()


def action_order(actions: set[str]) -> list[str]:
    known = [a for a in ACTION_ORDER if a in actions]
    return known + sorted(actions - set(known) - {""})


# --- Overview -------------------------------------------------------------------------


@dataclass
class CampaignAction(Returns):
    campaign_id: str
    action: str
    conversions: float
    revenue: float
    spend: float
    target_cpa: float | None = None
    target_roas: float | None = None

    @property
    def over_goal(self) -> bool:
        cpa = self.cpa
        return self.target_cpa is not None and cpa is not None and cpa > self.target_cpa

    @property
    def under_goal(self) -> bool:
        roas = self.roas
        return self.target_roas is not None and roas is not None and roas < self.target_roas


@dataclass
class Overview:
    current: Figures
    previous: Figures
    actions: dict[str, tuple[Figures, Figures]]
    """Per action: (this period, the previous one); CPA/ROAS over the whole spend."""
    campaigns: list[CampaignAction]
    conflicts: int
    conflict_cost: float

    def action_cpa(self, action: str, which: int = 0) -> float | None:
        spend = (self.current, self.previous)[which].spend
        conversions = self.actions[action][which].conversions
        return spend / conversions if conversions > 0 else None


def overview(store: Store, period: Period, goals: dict[str, dict[str, Any]]) -> Overview:
    """This period and the previous one in one pass over the rollups; ``goals`` is
    campaign -> action -> (target_cpa, target_roas) from the registry."""
    before = period.previous()
    rows = store.report(
        f"""SELECT hour >= {{start:DateTime('UTC')}} AS current, campaign_id, action, {FIGURES}
        FROM {_db(store)}.agg_hourly_flagged
        WHERE hour >= {{before:DateTime('UTC')}} AND hour < {{end:DateTime('UTC')}}
        GROUP BY current, campaign_id, action""",
        {**period.bounds(), "before": before.bounds()["start"]},
    )
    totals = (Figures(), Figures())
    actions: dict[str, tuple[Figures, Figures]] = {}
    by_campaign: dict[str, Figures] = defaultdict(Figures)
    by_campaign_action: dict[tuple[str, str], Figures] = defaultdict(Figures)
    for current, campaign, action, *figures in rows:
        which = 0 if current else 1
        totals[which].add(tuple(figures))
        if action:
            actions.setdefault(action, (Figures(), Figures()))[which].add(tuple(figures))
        if current:
            by_campaign[campaign].add(tuple(figures))
            if action:
                by_campaign_action[campaign, action].add(tuple(figures))
    for campaign, targets in goals.items():  # a goal with spend and no conversion at all
        for action in targets:
            if campaign in by_campaign and (campaign, action) not in by_campaign_action:
                by_campaign_action[campaign, action] = Figures()
    campaigns = []
    for (campaign, action), fig in sorted(by_campaign_action.items()):
        goal = goals.get(campaign, {}).get(action, {})
        if not campaign or (fig.conversions <= 0 and not goal):
            continue
        campaigns.append(
            CampaignAction(
                campaign,
                action,
                fig.conversions,
                fig.revenue,
                by_campaign[campaign].spend,
                goal.get("target_cpa"),
                goal.get("target_roas"),
            )
        )
    count, cost = store.report(
        f"""SELECT uniqExact(conflict_id), toFloat64(sum(ifNull(cost_impact, 0)))
        FROM {_db(store)}.brand_conflicts FINAL
        WHERE last_seen >= {{start:DateTime64(3, 'UTC')}}
          AND first_seen < {{end:DateTime64(3, 'UTC')}}""",
        period.bounds(),
    )[0]
    campaigns.sort(key=lambda c: (c.target_cpa is None and c.target_roas is None, -c.conversions))
    ordered = {a: actions[a] for a in action_order(set(actions))}
    return Overview(totals[0], totals[1], ordered, campaigns, int(count), float(cost))


# --- Partners -------------------------------------------------------------------------


@dataclass
class Partner:
    partner_id: str
    figures: Figures = field(default_factory=Figures)
    flagged_clicks: int = 0
    flagged_conversions: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    """Flagged subjects (clicks and conversions) per reason."""
    verdict: str = "ok"
    verdict_reasons: list[str] = field(default_factory=list)
    rejected_windows: int = 0
    conflicts: int = 0
    conflict_cost: float = 0.0

    @property
    def click_share(self) -> float | None:
        clicks = self.figures.clicks
        return min(1.0, self.flagged_clicks / clicks) if clicks > 0 else None

    @property
    def conversion_share(self) -> float | None:
        """Flagged as the rollups count it (migration 010): rejected or suspicious."""
        total = self.figures.conversions + self.figures.rejected
        flagged = self.figures.rejected + self.figures.suspicious
        return min(1.0, flagged / total) if total > 0 else None

    @property
    def flagged_share(self) -> float | None:
        """The larger of the shares of its clicks and of its conversions flagged: some
        fraud is in the clicks (floods, bots), some only in the conversions (forged
        postbacks come without clicks, incentivised installs from another country)."""
        shares = [s for s in (self.click_share, self.conversion_share) if s is not None]
        return max(shares) if shares else None

    @property
    def flagged_unit(self) -> str:
        click, conversion = self.click_share, self.conversion_share
        return "clicks" if click is not None and click >= (conversion or 0.0) else "conversions"

    @property
    def volume(self) -> float:
        """Clicks, or conversions when its flagged share is of conversions."""
        if self.flagged_unit == "clicks":
            return float(self.figures.clicks)
        return self.figures.conversions + self.figures.rejected

    def top_reasons(self, n: int = 3) -> list[tuple[str, int]]:
        return sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def partners(store: Store, period: Period, partner_id: str | None = None) -> list[Partner]:
    """Every partner with traffic in the period (or one), worst flagged share first."""
    db = _db(store)
    params: dict[str, Any] = {**period.bounds(), "partner": partner_id or ""}
    only = "AND partner_id = {partner:String}" if partner_id is not None else ""
    found: dict[str, Partner] = {}

    def get(pid: str) -> Partner:
        return found.setdefault(pid, Partner(pid))

    for pid, *figures in store.report(
        f"""SELECT partner_id, {FIGURES} FROM {db}.agg_hourly_flagged
        WHERE {IN_PERIOD} {only} GROUP BY partner_id""",
        params,
    ):
        get(pid).figures.add(tuple(figures))
    in_ts = f"ts >= {{start:DateTime64(3, 'UTC')}} AND ts < {{end:DateTime64(3, 'UTC')}} {only}"
    verdicts = f"FROM {db}.fraud_verdicts WHERE {in_ts}"
    for pid, clicks, conversions in store.report(
        f"""SELECT partner_id, uniqExactIf(subject_id, subject_type = 'click'),
               uniqExactIf(subject_id, subject_type = 'conversion')
        {verdicts} AND action != 'ok' AND subject_type IN ('click', 'conversion')
        GROUP BY partner_id""",
        params,
    ):
        get(pid).flagged_clicks, get(pid).flagged_conversions = int(clicks), int(conversions)
    for pid, reason, subjects in store.report(
        f"""SELECT partner_id, reason, uniqExact(subject_id)
        FROM {db}.fraud_verdicts ARRAY JOIN reasons AS reason
        WHERE {in_ts} AND action != 'ok' AND subject_type IN ('click', 'conversion')
        GROUP BY partner_id, reason""",
        params,
    ):
        get(pid).reasons[reason] = int(subjects)
    for pid, worst, reasons, rejected in store.report(
        f"""SELECT partner_id, max(indexOf(['ok', 'suspicious', 'reject'], action)),
               groupUniqArrayArrayIf(reasons, action != 'ok'), countIf(action = 'reject')
        {verdicts} AND subject_type = 'partner' GROUP BY partner_id""",
        params,
    ):
        partner = get(pid)
        partner.verdict = ("ok", "ok", "suspicious", "reject")[int(worst)]
        partner.verdict_reasons = sorted(reasons)
        partner.rejected_windows = int(rejected)
    for pid, count, cost in store.report(
        f"""SELECT offender_id, uniqExact(conflict_id), toFloat64(sum(ifNull(cost_impact, 0)))
        FROM {db}.brand_conflicts FINAL
        WHERE offender_kind = 'partner' AND last_seen >= {{start:DateTime64(3, 'UTC')}}
          AND first_seen < {{end:DateTime64(3, 'UTC')}}
          {"AND offender_id = {partner:String}" if partner_id is not None else ""}
        GROUP BY offender_id""",
        params,
    ):
        get(pid).conflicts, get(pid).conflict_cost = int(count), float(cost)
    result = [p for p in found.values() if p.partner_id]
    return sorted(result, key=lambda p: (-(p.flagged_share or 0.0), -p.volume, p.partner_id))


@dataclass
class SubId:
    value: str
    clicks: int
    flagged: int
    conversions: float
    """Credited to its clicks, flagged ones (``rejected``: verdict not ok) included."""
    rejected: float
    payout: float


@dataclass
class Evidence:
    ts: datetime
    subject_type: str
    subject_id: str
    campaign_id: str
    score: float
    reasons: list[str]
    action: str


@dataclass
class Day:
    day: date
    clicks: int
    conversions: float
    rejected: float


@dataclass
class PartnerDetail:
    partner: Partner
    sub_key: str
    sub_ids: list[SubId]
    evidence: list[Evidence]
    days: list[Day]
    ctit: tuple[float | None, float | None, float | None, float | None]
    """CTIT seconds: 10th percentile, median, 90th percentile, share over a day."""
    ctit_histogram: list[tuple[str, int]]
    """Credited conversions per CTIT bucket (:data:`CTIT_LABELS`)."""


def partner_detail(store: Store, period: Period, partner_id: str, sub_key: str) -> PartnerDetail:
    db = _db(store)
    params: dict[str, Any] = {**period.bounds(), "partner": partner_id, "sub": sub_key}
    found = partners(store, period, partner_id)
    partner = found[0] if found else Partner(partner_id)
    sub_ids = [
        SubId(str(v), int(c), int(f), float(n), float(r), float(p))
        for v, c, f, n, r, p in store.report(
            f"""SELECT k.sub AS sub, count() AS clicks, sum(f.flagged) AS flagged,
                   sum(v.conversions) AS conversions, sum(v.rejected) AS rejected,
                   toFloat64(sum(v.payout)) AS payout
            FROM
            (
                SELECT click_id, sub_ids[{{sub:String}}] AS sub FROM {db}.clicks
                WHERE partner_id = {{partner:String}}
                  AND ts >= {{start:DateTime64(3, 'UTC')}} AND ts < {{end:DateTime64(3, 'UTC')}}
            ) AS k
            LEFT JOIN
            (
                SELECT DISTINCT subject_id AS click_id, toUInt8(1) AS flagged
                FROM {db}.fraud_verdicts
                WHERE partner_id = {{partner:String}} AND subject_type = 'click'
                  AND action != 'ok' AND ts >= {{start:DateTime64(3, 'UTC')}}
                  AND ts < {{end:DateTime64(3, 'UTC')}}
            ) AS f ON k.click_id = f.click_id
            LEFT JOIN
            (
                SELECT click_id, sum(weight) AS conversions,
                       sum(weight * (fraud_action != 'ok')) AS rejected, sum(payout) AS payout
                FROM
                (
                    SELECT click_id, weight, payout, fraud_action
                    FROM {db}.attributed_conversions
                    WHERE partner_id = {{partner:String}} AND touch = 'click'
                      AND conversion_ts >= {{start:DateTime64(3, 'UTC')}}
                    ORDER BY version DESC
                    LIMIT 1 BY conversion_id, model, click_id
                )
                GROUP BY click_id
            ) AS v ON k.click_id = v.click_id
            GROUP BY sub ORDER BY clicks DESC, sub LIMIT 50""",
            params,
        )
    ]
    evidence = [
        Evidence(ts, kind, sid, cid, float(score), list(reasons), action)
        for ts, kind, sid, cid, score, reasons, action in store.report(
            f"""SELECT ts, subject_type, subject_id, campaign_id, score, reasons, action
            FROM {db}.fraud_verdicts
            WHERE partner_id = {{partner:String}} AND action != 'ok'
              AND subject_type IN ('click', 'conversion')
              AND ts >= {{start:DateTime64(3, 'UTC')}} AND ts < {{end:DateTime64(3, 'UTC')}}
            ORDER BY ts DESC LIMIT 5 BY reasons LIMIT 25""",
            params,
        )
    ]
    days = [
        Day(d, int(c), float(n), float(r))
        for d, c, n, r in store.report(
            f"""SELECT toDate(hour) AS day, sum(clicks),
                   sum(conversions - rejected_conversions), sum(rejected_conversions)
            FROM {db}.agg_hourly_flagged
            WHERE {IN_PERIOD} AND partner_id = {{partner:String}}
            GROUP BY day ORDER BY day""",
            params,
        )
    ]
    bounds = [0, *CTIT_EDGES, None]
    counts = ", ".join(
        f"countIf(ctit_seconds >= {lo}" + (f" AND ctit_seconds < {hi})" if hi is not None else ")")
        for lo, hi in itertools.pairwise(bounds)
    )
    q10, q50, q90, late, buckets = store.report(
        f"""SELECT q[1], q[2], q[3], late, buckets FROM
        (
            SELECT quantilesIf(0.1, 0.5, 0.9)(ctit_seconds, ctit_seconds IS NOT NULL) AS q,
                   [{counts}] AS buckets,
                   if(countIf(ctit_seconds IS NOT NULL) > 0,
                      countIf(ctit_seconds > 86400) / countIf(ctit_seconds IS NOT NULL),
                      NULL) AS late,
                   countIf(ctit_seconds IS NOT NULL) AS n
            FROM {db}.attributed_conversions
            WHERE partner_id = {{partner:String}} AND version = 1
              AND conversion_ts >= {{start:DateTime64(3, 'UTC')}}
                AND conversion_ts < {{end:DateTime64(3, 'UTC')}}
        )""",
        params,
    )[0]
    q = [None if x is None or math.isnan(x) else float(x) for x in (q10, q50, q90, late)]
    histogram = list(zip(CTIT_LABELS, (int(n) for n in buckets), strict=True))
    return PartnerDetail(
        partner, sub_key, sub_ids, evidence, days, (q[0], q[1], q[2], q[3]), histogram
    )


# --- Funnel ---------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    count: float
    rate: float | None = None
    """Clicks per impression; an action's conversions per click."""
    below_norm: bool = False


@dataclass
class Funnel:
    campaign_id: str
    segment: str | None
    stages: list[str]
    overall: list[Stage]
    segments: list[tuple[str, list[Stage]]]


def stages_of(counts: dict[str, float], names: list[str]) -> list[Stage]:
    """Clicks per impression, then each action per click: actions need not follow one
    another (an add-to-cart is no subset of signups), while each follows a click. No CTR
    where clicks outnumber impressions (traffic reported without its impressions)."""
    impressions, clicks = counts.get("impressions", 0.0), counts.get("clicks", 0.0)
    out = [Stage("impressions", impressions), Stage("clicks", clicks)]
    # partners that report clicks without impressions (affiliates) make a CTR meaningless
    out[1].rate = clicks / impressions if impressions >= clicks > 0 else None
    for name in names[2:]:
        count = counts.get(name, 0.0)
        out.append(Stage(name, count, count / clicks if clicks else None))
    return out


def mark_below(
    stages: list[Stage], norm: list[Stage], below: float, min_volume: int
) -> list[Stage]:
    """Flag the stages whose rate is ``below`` (relative) under the norm's, where the
    stage it is measured on (impressions, or clicks) saw at least ``min_volume``."""
    for i, (stage, reference) in enumerate(zip(stages, norm, strict=True)):
        entries = stages[min(i - 1, 1)].count if i else 0.0
        if (
            i
            and stage.rate is not None
            and reference.rate
            and entries >= min_volume
            and stage.rate < (1 - below) * reference.rate
        ):
            stage.below_norm = True
    return stages


def campaign_counts(
    store: Store, period: Period, campaign_id: str | None, column: str | None
) -> dict[tuple[str, str], dict[str, float]]:
    """(campaign, segment) -> stage -> count: impressions, clicks and each action's
    conversions net of fraud rejects."""
    segment = column or "''"
    only = "AND campaign_id = {campaign:String}" if campaign_id is not None else ""
    rows = store.report(
        f"""SELECT campaign_id, toString({segment}) AS segment, action, sum(impressions),
               sum(clicks), sum(conversions - rejected_conversions)
        FROM {_db(store)}.agg_hourly_flagged
        WHERE {IN_PERIOD} {only}
        GROUP BY campaign_id, segment, action""",
        {**period.bounds(), "campaign": campaign_id or ""},
    )
    counts: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for campaign, seg, action, impressions, clicks, conversions in rows:
        cell = counts[campaign, seg]
        if action:
            cell[action] += float(conversions)
        else:
            cell["impressions"] += float(impressions)
            cell["clicks"] += float(clicks)
    return counts


def raw_counts(
    store: Store, period: Period, campaign_id: str, column: str, sub_key: str
) -> dict[tuple[str, str], dict[str, float]]:
    """Like :func:`campaign_counts`, split by what no rollup holds: the OS, or a sub-id
    (``column`` ``sub``, the key ``sub_key``). One campaign's raw rows in the period;
    conversions are those credited to a click, net of fraud-rejected ones; impressions
    carry no sub-ids."""
    db = _db(store)
    click_segment = "sub_ids[{sub:String}]" if column == "sub" else "os"
    impression_segment = "''" if column == "sub" else "os"
    in_ts = "ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')}"
    rows = store.report(
        f"""SELECT segment, stage, sum(n) FROM
        (
            SELECT {impression_segment} AS segment, 'impressions' AS stage, toFloat64(count()) AS n
            FROM {db}.impressions WHERE campaign_id = {{campaign:String}} AND {in_ts}
            GROUP BY segment
            UNION ALL
            SELECT {click_segment} AS segment, 'clicks' AS stage, toFloat64(count()) AS n
            FROM {db}.clicks WHERE campaign_id = {{campaign:String}} AND {in_ts}
            GROUP BY segment
            UNION ALL
            SELECT k.segment AS segment, a.action AS stage, sum(a.weight) AS n
            FROM
            (
                SELECT click_id, action, weight, fraud_action FROM
                (
                    SELECT click_id, action, weight, fraud_action, conversion_id, model
                    FROM {db}.attributed_conversions
                    WHERE campaign_id = {{campaign:String}} AND touch = 'click'
                      AND conversion_ts >= {{start:DateTime64(3, 'UTC')}}
                      AND conversion_ts < {{end:DateTime64(3, 'UTC')}}
                    ORDER BY version DESC
                    LIMIT 1 BY conversion_id, model, click_id
                )
                WHERE weight > 0 AND fraud_action != 'reject'
            ) AS a
            INNER JOIN
            (
                SELECT click_id, {click_segment} AS segment FROM {db}.clicks
                WHERE campaign_id = {{campaign:String}}
            ) AS k ON a.click_id = k.click_id
            GROUP BY segment, stage
        )
        GROUP BY segment, stage""",
        {**period.bounds(), "campaign": campaign_id, "sub": sub_key},
    )
    counts: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for segment, stage, n in rows:
        counts[campaign_id, str(segment)][str(stage)] += float(n)
    return counts


def funnel(
    store: Store,
    period: Period,
    campaign_id: str,
    column: str | None,
    *,
    below: float,
    min_volume: int,
    sub_key: str = "sub1",
) -> Funnel:
    if column in RAW_SEGMENTS:
        counts = raw_counts(store, period, campaign_id, column, sub_key)
    else:
        counts = campaign_counts(store, period, campaign_id, column)
    total: dict[str, float] = defaultdict(float)
    for cell in counts.values():
        for name, value in cell.items():
            total[name] += value
    names = ["impressions", "clicks", *action_order(set(total) - {"impressions", "clicks"})]
    overall = stages_of(total, names)
    biggest = sorted(counts.items(), key=lambda kv: -kv[1].get("clicks", 0))[:MAX_SEGMENTS]
    segments = [
        (seg, mark_below(stages_of(cell, names), overall, below, min_volume))
        for (_, seg), cell in biggest
    ]
    return Funnel(campaign_id, column, names, overall, segments if column else [])


def campaigns_with_traffic(store: Store, period: Period) -> list[str]:
    rows = store.report(
        f"""SELECT campaign_id FROM {_db(store)}.agg_hourly WHERE {IN_PERIOD}
        GROUP BY campaign_id ORDER BY sum(clicks) DESC, campaign_id""",
        period.bounds(),
    )
    return [r[0] for r in rows if r[0]]


# --- Brand conflicts ------------------------------------------------------------------


@dataclass
class Conflict:
    brand: str
    offender: str
    signals: str
    keywords: str
    clicks: int
    impressions: int
    insight_rows: int
    head_to_head: bool
    cpc_inflation: float | None
    cost_impact: float | None
    severity: str
    first_seen: datetime
    last_seen: datetime
    kind: str = "partner"
    official_campaigns: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    """A few of the event ids behind the conflict."""


def _conflict(row: tuple[Any, ...]) -> Conflict:
    """A row of ``CONFLICTS_VIEW`` (brand, offender, signals, keywords, clicks, impressions,
    insight_rows, head_to_head, cpc_inflation, cost_impact, severity, first_seen, last_seen)."""
    brand, offender, signals, keywords, clicks, impressions, insight_rows, h2h = row[:8]
    inflation, cost, severity, first_seen, last_seen = row[8:13]
    return Conflict(
        str(brand),
        str(offender),
        str(signals),
        str(keywords),
        int(clicks),
        int(impressions),
        int(insight_rows),
        bool(h2h),
        None if inflation is None else float(inflation),
        None if cost is None else float(cost),
        str(severity),
        first_seen,
        last_seen,
    )


def conflicts(store: Store, period: Period) -> list[Conflict]:
    """Per (brand, offender), as ``clicktrail conflicts`` shows them, for the conflicts
    seen in the period (their counts are since first seen)."""
    where = f"""WHERE conflict_id IN (
        SELECT conflict_id FROM {_db(store)}.brand_conflicts
        WHERE last_seen >= {{start:DateTime64(3, 'UTC')}}
          AND first_seen < {{end:DateTime64(3, 'UTC')}})"""
    sql = CONFLICTS_VIEW.format(db=_db(store), where=where)
    found = [_conflict(row) for row in store.report(sql, period.bounds())]
    details = {
        (b, o): (k, list(c), list(e))
        for b, o, k, c, e in store.report(
            f"""SELECT brand_id, offender_id, any(offender_kind),
                   groupUniqArrayIf(official_campaign_id, official_campaign_id != ''),
                   arraySlice(groupArrayArray(evidence_ids), 1, {EVIDENCE_IDS})
            FROM {_db(store)}.brand_conflicts FINAL
            WHERE last_seen >= {{start:DateTime64(3, 'UTC')}}
              AND first_seen < {{end:DateTime64(3, 'UTC')}}
            GROUP BY brand_id, offender_id""",
            period.bounds(),
        )
    }
    for conflict in found:
        kind, campaigns, evidence = details.get(
            (conflict.brand, conflict.offender), ("partner", [], [])
        )
        conflict.kind, conflict.official_campaigns = str(kind), sorted(campaigns)
        conflict.evidence = [str(e) for e in evidence]
    return found


@dataclass
class AlertSent:
    ts: datetime
    key: str
    severity: str
    status: str
    destination: str
    attempt: int


def brand_alerts(store: Store, limit: int = 30) -> list[AlertSent]:
    """The latest brand-conflict alert attempts, whatever the period: an alert's time is
    when it was sent, not the event time of the traffic behind it."""
    return [
        AlertSent(ts, str(key), str(sev), str(status), str(dest), int(attempt))
        for ts, key, sev, status, dest, attempt in store.report(
            f"""SELECT ts, dedup_key, severity, status, destination, attempt
            FROM {_db(store)}.alerts WHERE kind = 'brand_conflict'
            ORDER BY ts DESC LIMIT {{limit:UInt32}}""",
            {"limit": limit},
        )
    ]


# --- Targeting ------------------------------------------------------------------------


@dataclass
class Segment:
    action: str
    country: str
    device: str
    clicks: float
    conversions: float
    rate: float
    base_rate: float
    predicted: float | None = None
    """The models' mean P(action) over the segment's scored clicks."""

    @property
    def lift(self) -> float | None:
        return self.rate / self.base_rate if self.base_rate > 0 else None


@dataclass
class Decile:
    action: str
    decile: int
    clicks: int
    conversions: int
    cost: float


@dataclass
class Predicted:
    action: str
    partner_id: str
    clicks: int
    mean_score: float


@dataclass
class Targeting:
    segments: dict[str, list[Segment]]
    deciles: dict[str, list[Decile]]
    predicted: dict[str, list[Predicted]]


def segments(
    store: Store, period: Period, campaigns_of: dict[str, set[str]]
) -> dict[str, list[Segment]]:
    """Per action, country x device segments by observed conversions per click (net of
    fraud rejects), among the campaigns whose advertiser pays that action."""
    rows = store.report(
        f"""SELECT campaign_id, country, device_type, action, sum(clicks),
               sum(conversions - rejected_conversions)
        FROM {_db(store)}.agg_hourly_flagged WHERE {IN_PERIOD}
        GROUP BY campaign_id, country, device_type, action""",
        period.bounds(),
    )
    clicks: dict[tuple[str, str, str], float] = defaultdict(float)
    conversions: dict[tuple[str, str, str, str], float] = defaultdict(float)
    for campaign, country, device, action, n_clicks, n_conv in rows:
        if action:
            conversions[action, campaign, country, device] += float(n_conv)
        else:
            clicks[campaign, country, device] += float(n_clicks)
    out: dict[str, list[Segment]] = {}
    for action in action_order({k[0] for k in conversions}):
        eligible = campaigns_of.get(action)
        seg_clicks: dict[tuple[str, str], float] = defaultdict(float)
        seg_conv: dict[tuple[str, str], float] = defaultdict(float)
        for (campaign, country, device), n in clicks.items():
            if eligible is None or campaign in eligible:
                seg_clicks[country, device] += n
        for (act, campaign, country, device), n in conversions.items():
            if act == action and (eligible is None or campaign in eligible):
                seg_conv[country, device] += n
        total_clicks = sum(seg_clicks.values())
        if total_clicks <= 0:
            continue
        base = sum(seg_conv.values()) / total_clicks
        rows_out = [
            Segment(action, c, d, n, seg_conv[c, d], seg_conv[c, d] / n, base)
            for (c, d), n in seg_clicks.items()
            if n > 0
        ]
        out[action] = sorted(rows_out, key=lambda s: (-s.rate, -s.clicks))
    return out


def targeting(store: Store, period: Period, campaigns_of: dict[str, set[str]]) -> Targeting:
    db = _db(store)
    in_ts = "ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')}"
    deciles: dict[str, list[Decile]] = defaultdict(list)
    for action, decile, clicks, conversions, cost in store.report(
        f"""SELECT action, decile, count(), sum(converted), sum(cost)
        FROM
        (
            SELECT x.action AS action, c.converted AS converted,
                   toFloat64(ifNull(k.cost, 1)) AS cost,
                   ntile(10) OVER (PARTITION BY x.action ORDER BY x.score DESC) AS decile
            FROM
            (
                SELECT click_id, action, score FROM {db}.click_scores
                ARRAY JOIN mapKeys(scores) AS action, mapValues(scores) AS score
                WHERE learned AND {in_ts}
            ) AS x
            LEFT JOIN
            (
                SELECT DISTINCT click_id, action, toUInt8(1) AS converted
                FROM {db}.attributed_conversions
                WHERE touch = 'click' AND weight > 0 AND fraud_action != 'reject'
                  AND conversion_ts >= {{start:DateTime64(3, 'UTC')}}
            ) AS c ON x.click_id = c.click_id AND x.action = c.action
            LEFT JOIN (SELECT click_id, cost FROM {db}.clicks WHERE {in_ts}) AS k
                ON x.click_id = k.click_id
        )
        GROUP BY action, decile ORDER BY action, decile""",
        period.bounds(),
    ):
        deciles[action].append(Decile(action, int(decile), int(clicks), int(conversions), cost))
    found = segments(store, period, campaigns_of)
    by_segment = {
        (action, country, device): float(mean)
        for action, country, device, mean in store.report(
            f"""SELECT x.action, k.country, k.device_type, avg(x.score)
            FROM
            (
                SELECT click_id, action, score FROM {db}.click_scores
                ARRAY JOIN mapKeys(scores) AS action, mapValues(scores) AS score
                WHERE {in_ts}
            ) AS x
            INNER JOIN
            (
                SELECT click_id, country, device_type FROM {db}.clicks WHERE {in_ts}
            ) AS k ON x.click_id = k.click_id
            GROUP BY x.action, k.country, k.device_type""",
            period.bounds(),
        )
    }
    for action, rows in found.items():
        for row in rows:
            row.predicted = by_segment.get((action, row.country, row.device))
    predicted: dict[str, list[Predicted]] = defaultdict(list)
    for action, partner, clicks, mean in store.report(
        f"""SELECT action, partner_id, count() AS n, avg(score) AS mean
        FROM {db}.click_scores ARRAY JOIN mapKeys(scores) AS action, mapValues(scores) AS score
        WHERE {in_ts} GROUP BY action, partner_id ORDER BY action, mean DESC""",
        period.bounds(),
    ):
        predicted[action].append(Predicted(action, partner, int(clicks), float(mean)))
    return Targeting(found, dict(deciles), dict(predicted))


def funnels_by_partner(store: Store, period: Period, below: float, min_volume: int) -> list[Funnel]:
    """Every campaign's funnel split by partner, from one query (for the advice)."""
    counts = campaign_counts(store, period, None, "partner_id")
    by_campaign: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for (campaign, partner), cell in counts.items():
        by_campaign[campaign][partner] = cell
    out = []
    for campaign, cells in sorted(by_campaign.items()):
        total: dict[str, float] = defaultdict(float)
        for cell in cells.values():
            for name, value in cell.items():
                total[name] += value
        names = ["impressions", "clicks", *action_order(set(total) - {"impressions", "clicks"})]
        overall = stages_of(total, names)
        split = [
            (partner, mark_below(stages_of(cell, names), overall, below, min_volume))
            for partner, cell in sorted(cells.items())
        ]
        out.append(Funnel(campaign, "partner_id", names, overall, split))
    return out
