"""The configuration registry: advertisers, brands, campaigns, partners, actions, rules, alerts.

One YAML file describes the whole business setup. It is validated once, at
start-up, and handed down as an immutable object; nothing reads the file later.
Cross references (a campaign's advertiser, a partner's authorized brand...) are
checked here so that a typo fails with the offending key, not at 3 a.m.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from clicktrail.contracts.common import ActionName
from clicktrail.contracts.events import STANDARD_ACTIONS, Channel
from clicktrail.contracts.records import AttributionModel, Severity

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\Z")
Key = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:~\-]{1,128}$")]
Secret = Annotated[str, Field(min_length=16, description="A secret of at least 16 characters")]


def _domain(value: str) -> str:
    value = value.strip().lower().rstrip(".")
    if not _DOMAIN.match(value):
        raise ValueError(f"{value!r} is not a valid domain name (e.g. shop.example.com)")
    return value


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise ValueError(f"{value!r} is not a valid CIDR range (e.g. 203.0.113.0/24)") from None


def _term(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValueError("brand term must not be empty")
    return value


Domain = Annotated[str, AfterValidator(_domain)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Term = Annotated[str, AfterValidator(_term)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Advertiser(Section):
    name: str = ""
    postback_secret: str = Field(
        min_length=16, description="Shared secret for postback HMAC signatures (>= 16 chars)"
    )
    actions: list[ActionName] = Field(
        default_factory=list,
        description="Target actions this advertiser pays for, each with its own model "
        "(empty: every configured action)",
    )
    api_keys: list[Secret] = Field(
        default_factory=list,
        description="Bearer keys for POST /v1/events and /v1/auction-insights, scoped to this "
        "advertiser's campaigns; list two while rotating (the new one first)",
    )


ClickIds = Literal["signed", "partner"]


class Source(Section):
    """A server-to-server sender that is not an advertiser: a partner's or an ad network's
    click feed. Its keys can report impressions and clicks of its own partner, never a
    conversion (a partner reporting conversions would be paying itself). Which click ids it
    may send is its partner's ``click_ids``."""

    partner: Key = Field(description="The partner whose traffic this source reports")
    api_keys: list[Secret] = Field(
        min_length=1, description="Bearer keys of this source; two while rotating"
    )
    campaigns: list[Key] = Field(
        default_factory=list, description="Campaigns it may report (empty: any campaign)"
    )


class Brand(Section):
    advertiser: Key
    terms: list[Term] = Field(min_length=1, description="Brand terms matched in keywords")
    misspellings: list[Term] = Field(default_factory=list)
    official_domains: list[Domain] = Field(default_factory=list)
    official_campaigns: list[Key] = Field(default_factory=list)
    official_accounts: list[Key] = Field(default_factory=list)


class AttributionSettings(Section):
    model: AttributionModel = AttributionModel.last_click
    click_window_days: float = Field(30, gt=0, le=365)
    view_window_days: float = Field(1, ge=0, le=30)
    conversion_grace_seconds: float = Field(
        300, ge=0, description="How long a conversion waits for a late click"
    )


class Goal(Section):
    """What one action of a campaign should cost or earn; the dashboard's Overview and
    Advice measure against it. CPA is the campaign's spend (media cost plus payouts) per
    conversion of the action, ROAS the action's revenue per unit of that spend."""

    target_cpa: float | None = Field(
        None, gt=0, le=1e9, description="Highest acceptable cost per conversion of this action"
    )
    target_roas: float | None = Field(
        None, gt=0, le=1e6, description="Lowest acceptable revenue / spend of this action"
    )

    @model_validator(mode="after")
    def _something_to_measure(self) -> Goal:
        if self.target_cpa is None and self.target_roas is None:
            raise ValueError("a goal needs target_cpa, target_roas or both")
        return self


class Campaign(Section):
    advertiser: Key
    brand: Key | None = None
    channel: Channel = Channel.other
    landing_url: str = Field(description="Redirect target; macros like {click_id} are expanded")
    landing_domains: list[Domain] = Field(
        default_factory=list, description="Domains a redirect may go to (landing_url's included)"
    )
    attribution: AttributionSettings = Field(default_factory=AttributionSettings)
    payouts: dict[ActionName, Annotated[float, Field(ge=0, le=1e9)]] = Field(
        default_factory=dict,
        description="Payout per action for reports that cannot set one (the conversion pixel); "
        "overrides actions.<action>.payout for this campaign",
    )
    goals: dict[ActionName, Goal] = Field(
        default_factory=dict,
        description="Target CPA and/or ROAS per action (e.g. purchase: {target_cpa: 25}); "
        "the dashboard measures the campaign against them. Empty: no goal",
    )


class Authorization(Section):
    brand: Key
    channels: list[Channel] = Field(min_length=1)
    terms: list[Term] = Field(
        default_factory=list, description="Brand terms this partner may bid on (empty: none)"
    )


class Partner(Section):
    name: str = ""
    authorized: list[Authorization] = Field(default_factory=list)
    click_ids: ClickIds = Field(
        "signed",
        description="signed: this partner's clicks carry ids minted by this tracker; partner: "
        "the partner (a tracker or ad network reporting server to server) issues its own ids, "
        "accepted as they are for this partner's clicks and conversions only",
    )
    traffic: Literal["browser", "s2s"] = Field(
        "browser",
        description="browser: clicks come through the redirect, with the visitor's user agent; "
        "s2s: reported server to server (a click feed), where a missing user agent is no bot "
        "evidence by itself",
    )


AlertKind = Literal["brand_conflict", "fraud_share", "anomaly"]
ALERT_KINDS: tuple[AlertKind, ...] = ("brand_conflict", "fraud_share", "anomaly")
TxidPolicy = Literal["ignore", "new", "update"]


STANDARD_LABEL_HORIZON_HOURS: dict[str, float] = {
    "lead": 2,
    "signup": 2,
    "add_to_cart": 2,
    "install": 2,
    "purchase": 6,
}
"""Label horizons of the standard actions when the registry sets none: the ones measured best
on the simulator (``python -m clicktrail.processors.models.offline``, 100,000 events, seed 9:
AUC of the second half 0.72-0.78 and calibration error under 0.02; a day for every action
gave 0.56-0.70 and 0.05-0.08, the click window learns nothing before the traffic ends). A
model that waits less learns sooner; the price, a late conversion learned as a negative, is
small next to a day without labels."""
DEFAULT_LABEL_HORIZON_HOURS = 6.0
"""The horizon of any other action: the slowest standard action's (purchase)."""
STANDARD_PRIOR_RATES: dict[str, float] = {
    "add_to_cart": 0.08,
    "install": 0.05,
    "signup": 0.04,
    "lead": 0.03,
    "purchase": 0.02,
}
"""Typical conversion rates per click of the standard actions when the registry sets none:
where a fresh model's intercept starts, so its first scores are a plausible base rate
rather than 0.5 (a wrong prior only costs the first few hundred examples)."""
DEFAULT_PRIOR_RATE = 0.02
"""The prior of any other action: the rarest standard action's (purchase)."""


class Action(Section):
    txid_policy: TxidPolicy = Field(
        "update",
        description="Repeated txid: ignore it, count a new conversion, or update status/amount",
    )
    min_ctit_seconds: float | None = Field(
        None,
        ge=0,
        description="Click-to-conversion time below which a conversion is click injection; "
        "unset: `fraud.min_ctit_seconds` for the actions in `fraud.injection_actions` (app "
        "installs), no cut-off for the others; 0: no cut-off",
    )
    payout: float = Field(
        0,
        ge=0,
        le=1e9,
        description="Payout of a conversion reported by the browser pixel, which may neither "
        "set a payout nor approve (a signed postback or an API key can)",
    )
    label_horizon_hours: float | None = Field(
        None,
        gt=0,
        description="How long a click waits for this action before its model learns it as a "
        "negative, capped by the campaign's click window. Default: 2 h for lead, signup, "
        "add_to_cart and install, 6 h for purchase and any other action (measured best on "
        "the simulator; the click window would learn nothing from a first week of traffic). "
        "Shorter keeps the model fresh at the cost of the few conversions that come later; "
        "set the click window's hours (e.g. 720) to wait for all of them",
    )

    prior_rate: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Expected conversions of this action per click, where its model starts "
        "before it has learned anything (the intercept is its logit). Default: 0.08 for "
        "add_to_cart, 0.05 install, 0.04 signup, 0.03 lead, 0.02 purchase and any other action",
    )

    def prior(self, name: str) -> float:
        """This action's prior rate: as set, else the default for its name."""
        if self.prior_rate is not None:
            return self.prior_rate
        return STANDARD_PRIOR_RATES.get(name, DEFAULT_PRIOR_RATE)

    def horizon_hours(self, name: str) -> float:
        """This action's label horizon: as set, else the default for its name."""
        if self.label_horizon_hours is not None:
            return self.label_horizon_hours
        return STANDARD_LABEL_HORIZON_HOURS.get(name, DEFAULT_LABEL_HORIZON_HOURS)


class PrivacySettings(Section):
    ip_mode: Literal["truncate", "hash", "none"] = "truncate"
    ip_hash_key: str = Field("", description="HMAC key for ip_mode=hash")

    @model_validator(mode="after")
    def _hash_needs_key(self) -> PrivacySettings:
        if self.ip_mode == "hash" and len(self.ip_hash_key) < 16:
            raise ValueError("ip_mode 'hash' needs ip_hash_key of at least 16 characters")
        return self


class SecuritySettings(Section):
    click_id_key: str = Field(
        "clicktrail-dev-click-key-change-me",
        min_length=16,
        description="HMAC key that signs click ids minted by the edge",
    )
    postback_max_age_seconds: float = Field(
        300, gt=0, description="Signed postbacks older than this are replays"
    )
    operator_token: str = Field(
        "",
        description="Bearer token for the operator endpoints (/v1/query, the dashboard); "
        "empty: loopback callers only, and only while no trusted proxy is configured",
    )
    unknown_ids: Literal["reject", "accept_and_flag"] = Field(
        "accept_and_flag",
        description="An event naming a partner or campaign the registry does not know: "
        "refuse it, or accept it and flag it (fraud reason unknown_partner / unknown_campaign)"
        ". Applies once the registry lists partners (campaigns)",
    )


class IntakeSettings(Section):
    max_event_bytes: int = Field(65_536, ge=256, le=10_485_760)
    max_future_skew_seconds: float = Field(
        3600, ge=0, description="Events further in the future than this are rejected"
    )
    max_past_days: float = Field(
        3650,
        gt=0,
        le=36_500,
        description="Events older than this are rejected (past_timestamp): a decade covers "
        "any honest backfill, while a year-2001 click is a broken or forged sender",
    )


class EventTimeSettings(Section):
    """The pipeline's clock under disorderly delivery (see processors/watermark.py)."""

    allowed_lateness_seconds: float = Field(
        300,
        ge=0,
        le=86_400,
        description="How far out of order an input's events may come without being late: the "
        "watermark trails each input's latest event time by this much",
    )
    max_jump_seconds: float = Field(
        900,
        gt=0,
        description="An event further ahead of its input's clock than this is early: it moves "
        "the clock only when `confirmations` early events come in a row",
    )
    confirmations: int = Field(
        3, ge=1, le=1000, description="Early events in a row that move an input's clock"
    )
    idle_messages: int = Field(
        50_000,
        ge=1,
        description="An input that sent nothing in this many messages is idle: it no longer "
        "holds the watermark back",
    )
    idle_seconds: float = Field(
        60,
        gt=0,
        le=86_400,
        description="Live workers only: an input (a Kafka partition) that sent nothing for "
        "this long is idle, so a quiet partition does not hold every wait open",
    )


class EdgeSettings(Section):
    """The tracking edge: cookies, proxies, the local spool and postback defaults."""

    cookie_name: str = Field(
        "ct_uid", pattern=r"^[A-Za-z0-9_\-]{1,64}$", description="First-party user id cookie"
    )
    cookie_max_age_days: float = Field(390, gt=0, le=400)
    cookie_domain: Domain | None = Field(None, description="Share the cookie with subdomains")
    cookie_secure: bool = Field(False, description="Send the cookie over HTTPS only")
    trusted_proxies: list[Cidr] = Field(
        default_factory=list,
        description="Peers whose X-Forwarded-For is believed (load balancers); empty: none",
    )
    country_header: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9\-]{1,64}$",
        description="Header a CDN sets with the visitor's country, e.g. CF-IPCountry",
    )
    default_action: ActionName = Field(
        "lead", description="Action of a postback or conversion pixel that names none"
    )
    recent_txids: int = Field(
        100_000, ge=0, le=10_000_000, description="Postbacks remembered for duplicate answers"
    )
    max_query_bytes: int = Field(8192, ge=512, le=65_536)
    spool_dir: str = Field("./var/spool", description="Where events wait while Kafka is away")
    spool_fsync: Literal["always", "interval", "never"] = Field(
        "interval", description="always: per write; interval: every spool_fsync_ms; never: OS"
    )
    spool_fsync_ms: float = Field(200, gt=0, le=60_000)
    spool_segment_bytes: int = Field(64 << 20, ge=1 << 16, le=1 << 32)


class FraudSettings(Section):
    window_seconds: float = Field(3600, gt=0)
    max_clicks_per_ip: int = Field(30, ge=1)
    max_clicks_per_device: int = Field(20, ge=1)
    late_ctit_seconds: float = Field(86_400, gt=0)
    late_ctit_share: float = Field(0.30, gt=0, le=1)
    datacenter_cidrs: list[Cidr] = Field(default_factory=list)
    bot_user_agents: list[str] = Field(
        default_factory=lambda: ["bot", "crawler", "spider", "headless", "phantomjs", "selenium"]
    )
    partner_share_alert: float = Field(0.2, gt=0, le=1)
    partner_share_confidence: float = Field(
        0.99,
        gt=0,
        lt=1,
        description="Confidence with which a partner's running flagged share must exceed "
        "partner_share_alert (the lower end of its Wilson interval): an honest publisher "
        "with some bots in its audience crosses the alert by chance on a quiet day",
    )
    partner_window_share_alert: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Share of one window's events flagged from which a partner is flagged at "
        "once (a partner turning bad after a clean record). Higher than partner_share_alert: "
        "an hour of a small partner is noisy (honest publishers with some bot traffic reach "
        "0.37 in their worst hour on the simulator; a partner turning bad, 0.58)",
    )
    min_ctit_seconds: float = Field(
        10,
        ge=0,
        description="CTIT below which an action of `injection_actions` that sets no "
        "min_ctit_seconds is click injection: 10 s is the cut-off commonly used for installs "
        "(AppsFlyer's CTIT guidance); nobody installs and opens an app seconds after a real "
        "click",
    )
    injection_actions: list[str] = Field(
        default_factory=lambda: ["install"],
        description="Actions the default injection cut-off applies to. Click injection is an "
        "app-install fraud (an app on the device hears an install begin and fires a click "
        "first); a purchase or a lead seconds after a click is an ordinary fast buyer",
    )
    burst_seconds: float = Field(
        60,
        gt=0,
        description="Short window for click bursts: spamming sends clicks seconds apart, "
        "which an hourly count at max_clicks_per_ip only sees after dozens of clicks",
    )
    max_clicks_per_ip_burst: int = Field(
        5,
        ge=1,
        description="Clicks per IP network and partner within burst_seconds above which the "
        "network is flooding: people from one /24 click one partner's ads a few times a minute",
    )
    suspicious_score: float = Field(
        0.5, gt=0, le=1, description="Verdict score from which an event is suspicious"
    )
    reject_score: float = Field(
        0.9, gt=0, le=1, description="Verdict score from which an event is rejected"
    )
    anomaly_threshold: float = Field(
        0.8,
        gt=0,
        le=1,
        description="River anomaly score (0..1) from which a partner window is anomalous",
    )
    min_partner_conversions: int = Field(
        20,
        ge=1,
        description="Conversions a partner needs before its late-CTIT share is judged, and "
        "events in one window before that window's own fraud share is: a share of a "
        "handful of events is noise",
    )
    min_partner_events: int = Field(
        5,
        ge=1,
        description="Judged events (decayed over a day) a partner needs before its running "
        "fraud share is judged. Low, because partner_share_confidence already asks for the "
        "evidence: a small partner sending ten forged postbacks a day is judged too",
    )
    flood_ctit_distance: float = Field(
        0.4,
        gt=0,
        le=1,
        description="Kolmogorov-Smirnov distance from which a partner's CTITs, ranked among "
        "the other partners' of the same action, lie above uniform: a flood's credited "
        "conversions come hours or days after its clicks, flat, where honest ones peak "
        "within minutes (AppsFlyer, Adjust: the CTIT distribution as a flooding signal)",
    )
    flood_ctit_pvalue: float = Field(
        1e-3, gt=0, lt=1, description="p-value below which that distance is significant"
    )
    flood_cvr_ratio: float = Field(
        0.5,
        gt=0,
        le=1,
        description="A flooding partner's running click-to-conversion rate is below this "
        "fraction of the median partner's: millions of clicks, conversions only by chance",
    )
    flood_min_conversions: int = Field(
        8,
        ge=5,
        description="Credited conversions a partner needs before its CTITs are tested: with "
        "a low conversion rate beside it and p below flood_ctit_pvalue (a distance of about "
        "0.7 at 8), a handful of conversions that all came late is evidence enough",
    )
    flood_min_clicks: int = Field(
        50, ge=1, description="Clicks (decayed) a partner needs before its rate is compared"
    )
    flood_network_devices: int = Field(
        3,
        ge=2,
        description="Different devices of one IP network clicking one partner within "
        "window_seconds from which the network may be flooding for it (a household brings "
        "one or two; a flood spread over many addresses, a new device id per click)",
    )
    flood_network_share: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Share of a network's clicks over flood_network_hours going to one "
        "partner from which the network works for that partner: honest users behind a "
        "carrier's NAT click for every partner the way all traffic does",
    )
    flood_network_pvalue: float = Field(
        1e-5,
        gt=0,
        lt=1,
        description="The partner's clicks on the network must be this unlikely under its "
        "share of all clicks (one-sided binomial test): a chance run of one partner on a "
        "new shared network, or a big partner's big share, is no evidence",
    )
    flood_network_hours: int = Field(
        24, ge=1, le=168, description="Hours over which a network's partner shares are counted"
    )
    flagged_traffic: Literal["mark", "exclude"] = Field(
        "mark",
        description="How the analyst views (partner_report, funnel_daily, "
        "attribution_model_comparison) count conversions whose fraud verdict is reject: "
        "mark counts them and shows them beside the figures (fraud_rejected_*), exclude "
        "leaves them out of conversions, revenue, payout, CPA and ROAS. Tables and rollups "
        "always keep both, so either figure is one subtraction away",
    )


class DashboardSettings(Section):
    """The web dashboard at ``/ui/``: how money is shown and when advice speaks up."""

    currency: str = Field(
        "EUR",
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code amounts are shown in (the figures are summed as tracked; "
        "set the currency the advertisers report in)",
    )
    stop_paying_share: float = Field(
        0.25,
        gt=0,
        le=1,
        description="Share of a partner's clicks (or conversions) flagged in the period from "
        "which the advice is to stop paying it, when its fraud verdict is also reject (honest "
        "publishers with some bots in their audience stay near 0.1 on the simulator; a "
        "partner turning bad mid-week, 0.34)",
    )
    min_partner_clicks: int = Field(
        20, ge=1, description="Clicks (or conversions) a partner needs before advice names it"
    )
    funnel_below_norm: float = Field(
        0.3,
        gt=0,
        lt=1,
        description="A segment's funnel stage is flagged when its rate is this far (relative) "
        "below the campaign's rate for the same stage",
    )
    min_stage_volume: int = Field(
        30,
        ge=1,
        description="Entries a funnel stage needs (clicks into it) before it is compared",
    )
    min_segment_conversions: int = Field(
        10,
        ge=1,
        description="Conversions a targeting segment needs before its lift is advice",
    )
    segment_lift: float = Field(
        1.5,
        gt=1,
        description="Observed conversion-rate lift from which a segment is worth more budget",
    )


class Destination(Section):
    kind: Literal["webhook", "slack", "email", "log"]
    url: str | None = None
    secret: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    to: list[str] = Field(default_factory=list)
    sender: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Destination:
        if self.kind in ("webhook", "slack") and not self.url:
            raise ValueError(f"a {self.kind} destination needs a url")
        if self.kind == "email" and not (self.smtp_host and self.to):
            raise ValueError("an email destination needs smtp_host and to")
        return self


class Route(Section):
    """Which alerts reach which destinations, and whether at once or once a day.

    ``daily_digest`` is for people who want the picture rather than the page: the verdict
    changes of one event-time day are held in the alert state and sent as one message
    when the stream passes midnight (UTC), with the verdicts still open at that point.
    """

    kinds: list[AlertKind] = Field(default_factory=lambda: list(ALERT_KINDS))
    brands: list[Key] = Field(default_factory=list, description="Empty: every brand")
    min_severity: Severity = Severity.warning
    destinations: list[Key] = Field(min_length=1)
    mode: Literal["immediate", "daily_digest"] = Field(
        "immediate",
        description="immediate: each verdict change (new, escalated, resolved) is delivered "
        "when it is decided; daily_digest: one message per event-time day (UTC) per "
        "destination, listing that day's changes and the verdicts open at its end",
    )


class AlertSettings(Section):
    """Alerts announce verdict changes, not verdicts: a partner or offender is reported
    when first flagged, again when its severity rises, and once when it is clean again;
    the windows in between that repeat the same verdict are not news."""

    cooldown_seconds: float = Field(
        3600,
        ge=0,
        description="Event-time seconds a resolved verdict stays quiet: flagged again "
        "no later than this after its resolved alert, it is reopened without a new alert, "
        "announced as new only if still flagged after that (a partner hovering at a "
        "threshold would otherwise alert every other window)",
    )
    destinations: dict[Key, Destination] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)


class Registry(Section):
    """Everything clicktrail knows about the business it tracks."""

    advertisers: dict[Key, Advertiser] = Field(default_factory=dict)
    brands: dict[Key, Brand] = Field(default_factory=dict)
    campaigns: dict[Key, Campaign] = Field(default_factory=dict)
    partners: dict[Key, Partner] = Field(default_factory=dict)
    sources: dict[Key, Source] = Field(default_factory=dict)
    actions: dict[ActionName, Action] = Field(
        default_factory=lambda: {name: Action() for name in STANDARD_ACTIONS}
    )
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    intake: IntakeSettings = Field(default_factory=IntakeSettings)
    event_time: EventTimeSettings = Field(default_factory=EventTimeSettings)
    edge: EdgeSettings = Field(default_factory=EdgeSettings)
    fraud: FraudSettings = Field(default_factory=FraudSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)

    @model_validator(mode="after")
    def _references(self) -> Registry:
        problems = list(self._broken_references())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _broken_references(self) -> list[str]:
        problems = []
        for key, brand in self.brands.items():
            if brand.advertiser not in self.advertisers:
                problems.append(f"brands.{key}.advertiser: unknown advertiser {brand.advertiser!r}")
            for campaign in brand.official_campaigns:
                if campaign not in self.campaigns:
                    problems.append(
                        f"brands.{key}.official_campaigns: unknown campaign {campaign!r}"
                    )
        problems.extend(self._overlapping_terms())
        for key, advertiser in self.advertisers.items():
            for action in advertiser.actions:
                if action not in self.actions:
                    problems.append(f"advertisers.{key}.actions: unknown action {action!r}")
        for key, camp in self.campaigns.items():
            if camp.advertiser not in self.advertisers:
                problems.append(
                    f"campaigns.{key}.advertiser: unknown advertiser {camp.advertiser!r}"
                )
            if camp.brand is not None and camp.brand not in self.brands:
                problems.append(f"campaigns.{key}.brand: unknown brand {camp.brand!r}")
            for action in camp.goals:
                if action not in self.actions:
                    problems.append(f"campaigns.{key}.goals: unknown action {action!r}")
        for key, partner in self.partners.items():
            for i, grant in enumerate(partner.authorized):
                if grant.brand not in self.brands:
                    problems.append(
                        f"partners.{key}.authorized[{i}].brand: unknown brand {grant.brand!r}"
                    )
        for key, source in self.sources.items():
            if source.partner not in self.partners:
                problems.append(f"sources.{key}.partner: unknown partner {source.partner!r}")
            for campaign in source.campaigns:
                if campaign not in self.campaigns:
                    problems.append(f"sources.{key}.campaigns: unknown campaign {campaign!r}")
        problems.extend(self._shared_keys())
        for i, route in enumerate(self.alerts.routes):
            for dest in route.destinations:
                if dest not in self.alerts.destinations:
                    problems.append(
                        f"alerts.routes[{i}].destinations: unknown destination {dest!r}"
                    )
        return problems

    def pixel_payout(self, campaign_id: str | None, action: str) -> float:
        """What a conversion pixel's report pays: the campaign's figure, else the action's."""
        campaign = self.campaigns.get(campaign_id or "")
        if campaign is not None and action in campaign.payouts:
            return campaign.payouts[action]
        policy = self.actions.get(action)
        return policy.payout if policy is not None else 0.0

    def _shared_keys(self) -> list[str]:
        """One key, one owner: a key two owners share could not be scoped to either."""
        owner: dict[str, str] = {}
        problems = []
        named = [(f"advertisers.{k}", a.api_keys) for k, a in self.advertisers.items()]
        named += [(f"sources.{k}", s.api_keys) for k, s in self.sources.items()]
        for where, keys in named:
            for key in keys:
                if owner.setdefault(key, where) != where:
                    problems.append(f"{where}.api_keys: a key of {owner[key]} is reused")
        return problems

    def _overlapping_terms(self) -> list[str]:
        owner: dict[str, str] = {}
        problems = []
        for key, brand in self.brands.items():
            for term in [*brand.terms, *brand.misspellings]:
                folded = term.casefold()
                if owner.get(folded, key) != key:
                    problems.append(
                        f"brands.{key}.terms: {term!r} is also a term of brand {owner[folded]!r}"
                    )
                owner[folded] = key
        return problems
