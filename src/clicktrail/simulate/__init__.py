"""``clicktrail simulate``: seeded, labelled traffic with ground truth.

Every detection and model claim is measured against what this package knows
to be true; see docs/simulator.md for what is modelled and the truth format.
"""

from clicktrail.simulate.oracle import auc, oracle_auc
from clicktrail.simulate.runner import FILES, simulate
from clicktrail.simulate.scenarios import SCENARIOS, Options, Scenario

__all__ = ["FILES", "SCENARIOS", "Options", "Scenario", "auc", "oracle_auc", "simulate"]
