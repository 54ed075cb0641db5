"""Topic names and partition keys: one table so producers and consumers agree.

Clicks and conversions are keyed by ``click_id`` so that a conversion lands on
the partition (and worker) that holds its click; impressions by
``impression_id``; conversions without a click id by user; auction-insights
rows by their keyword (see :func:`insight_key`).
"""

from __future__ import annotations

import os

from clicktrail.contracts import AnyEvent, AuctionInsight, Click, Conversion, Impression
from clicktrail.contracts.internal import ResolvedConversion, Touch
from clicktrail.processors.brand.matching import normalize

PREFIX = os.environ.get("CLICKTRAIL_TOPIC_PREFIX", "clicktrail")
"""Namespace of every topic; set ``CLICKTRAIL_TOPIC_PREFIX`` to run several pipelines
(or test runs) on one Kafka cluster."""
IMPRESSIONS = f"{PREFIX}.impressions"
CLICKS = f"{PREFIX}.clicks"
CONVERSIONS = f"{PREFIX}.conversions"
ATTRIBUTED = f"{PREFIX}.attributed"
VERDICTS = f"{PREFIX}.verdicts"
CONFLICTS = f"{PREFIX}.conflicts"
ALERTS = f"{PREFIX}.alerts"
DEAD_LETTERS = f"{PREFIX}.dead_letters"
TOUCHES = f"{PREFIX}.touches"  # internal: event stage -> user stage, keyed by user
BRAND = f"{PREFIX}.brand"  # internal: event stage -> brand stage, keyed by brand
LABELS = f"{PREFIX}.labels"  # internal: user stage -> click's models, keyed by click id
AUCTION_INSIGHTS = f"{PREFIX}.auction_insights"  # imported export rows, keyed by keyword

EVENT_TOPICS = {"impression": IMPRESSIONS, "click": CLICKS, "conversion": CONVERSIONS}
INPUT_TOPICS = {**EVENT_TOPICS, "auction_insight": AUCTION_INSIGHTS}
"""Topics the event stage consumes, by the record type each carries."""
ALL_TOPICS = (
    IMPRESSIONS,
    CLICKS,
    CONVERSIONS,
    AUCTION_INSIGHTS,
    ATTRIBUTED,
    VERDICTS,
    CONFLICTS,
    ALERTS,
    DEAD_LETTERS,
    TOUCHES,
    BRAND,
    LABELS,
)


def topic_for(event: AnyEvent) -> str:
    return EVENT_TOPICS[event.type]


def partition_key(event: AnyEvent) -> str:
    """The key that co-partitions everything one join needs."""
    if isinstance(event, Click):
        return event.click_id
    if isinstance(event, Conversion):
        return event.click_id or event.user.user_id or event.event_id
    if isinstance(event, Impression):
        return event.impression_id
    raise TypeError(f"not an event: {type(event).__name__}")


def insight_key(row: AuctionInsight) -> str:
    """The keyword, normalised as brand matching does it, rather than the row id.

    A conflict is one (brand, domain, normalised keyword), and its count lives in the
    state of the worker that owns the partition: keyed by row id, the rows of one
    conflict would spread over every worker, each emitting its own partial record under
    the same conflict id. Keyed by keyword they meet on one worker, and so does a
    re-imported row with the row it repeats (the keyword is part of its identity), which
    is what lets the deduplication see it. Keywords are many, so the load still spreads.
    """
    return normalize(row.keyword) or row.keyword


def user_key(record: Touch | ResolvedConversion) -> str:
    """Key of the user stage: the user, else the click, so a user's path meets on one worker."""
    if isinstance(record, Touch):
        return record.user_id or f"{record.kind}:{record.touch_id}"
    if record.user_id:
        return record.user_id
    if record.click is not None:
        return f"click:{record.click.touch_id}"
    return f"conversion:{record.conversion.conversion_id}"
