"""clicktrail: streaming conversion tracking, attribution, fraud and brand-conflict detection."""

__version__ = "0.1.0"
