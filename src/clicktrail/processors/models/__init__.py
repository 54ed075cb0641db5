"""Per-action conversion models: features, delayed labels, quality, checkpoints, lift.

Everything here is pure: state lives in a :class:`~clicktrail.contracts.StateStore`
(pending examples) or on the model objects (River estimators and metrics), so the
runtime decides when to call, when to emit and when to checkpoint.
"""

from clicktrail.processors.models.checkpoint import CheckpointError, Restored, dumps, loads
from clicktrail.processors.models.estimators import ActionModel, ActionModels, build_model
from clicktrail.processors.models.features import FEATURE_VERSION, click_features
from clicktrail.processors.models.labels import DelayedLabels, Learned
from clicktrail.processors.models.lift import Lift, lift
from clicktrail.processors.models.quality import Quality

__all__ = [
    "FEATURE_VERSION",
    "ActionModel",
    "ActionModels",
    "CheckpointError",
    "DelayedLabels",
    "Learned",
    "Lift",
    "Quality",
    "Restored",
    "build_model",
    "click_features",
    "dumps",
    "lift",
    "loads",
]
