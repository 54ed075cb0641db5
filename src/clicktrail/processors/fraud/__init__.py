"""Fraud detection: rules over clicks and resolved conversions, combined into verdicts.

Pure processors (state only through ``StateStore`` mappings, no runtime imports); the
pipeline calls :class:`FraudDetector` from the click stage.
"""

from clicktrail.processors.fraud.detector import FRAUD_STATE, FraudDetector, credited_touch
from clicktrail.processors.fraud.hits import REASONS, Hit, pattern_of
from clicktrail.processors.fraud.verdicts import RULE_VERSION, Combiner

__all__ = [
    "FRAUD_STATE",
    "REASONS",
    "RULE_VERSION",
    "Combiner",
    "FraudDetector",
    "Hit",
    "credited_touch",
    "pattern_of",
]
