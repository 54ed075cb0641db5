"""Brand-conflict detection: unauthorized bidding on brand terms, domains and paid clicks.

Pure processors (state only through ``StateStore`` mappings, no runtime imports); the
pipeline calls :class:`BrandConflictDetector` with impressions, clicks and parsed
auction-insights rows, and forwards the ``BrandConflict`` records it returns.
"""

from clicktrail.processors.brand.auction_insights import (
    AuctionInsightsError,
    parse_auction_insights,
)
from clicktrail.processors.brand.conflicts import SeverityPolicy, conflict_id, should_alert
from clicktrail.processors.brand.detector import BRAND_STATE, BrandConflictDetector
from clicktrail.processors.brand.matching import BrandConfigError, BrandMatcher, normalize
from clicktrail.processors.brand.signals import OFFENSE_OF_SIGNAL, Hit, SignalRules

__all__ = [
    "BRAND_STATE",
    "OFFENSE_OF_SIGNAL",
    "AuctionInsightsError",
    "BrandConfigError",
    "BrandConflictDetector",
    "BrandMatcher",
    "Hit",
    "SeverityPolicy",
    "SignalRules",
    "conflict_id",
    "normalize",
    "parse_auction_insights",
    "should_alert",
]
