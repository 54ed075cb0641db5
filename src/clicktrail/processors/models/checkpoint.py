"""Checkpoints of the learned state (models, their quality, and other learned objects
the runtime hands over as ``extras``, such as the fraud detector's anomaly model) as bytes.

A header line names the format, the feature-set version and the payload's
SHA-256, so a changed feature set starts fresh instead of feeding old weights
new keys, and truncated or corrupt bytes start fresh instead of crashing the
worker. The payload is a pickle (River's own persistence): load checkpoints
only from storage the pipeline itself writes.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from clicktrail.processors.models.estimators import DEFAULT_MODEL, ActionModels
from clicktrail.processors.models.features import FEATURE_VERSION

MAGIC = b"clicktrail-models\n"
FORMAT = 2


class CheckpointError(Exception):
    """The checkpoint cannot be used; ``reason`` is a machine code for the log."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Restored:
    models: ActionModels
    fresh: bool
    """True when nothing was restored (no, stale or corrupt checkpoint)."""
    reason: str | None = None
    """Why it started fresh: ``empty``, ``feature_version``, ``model``, ``corrupt``."""
    message: str | None = None
    extras: dict[str, object] = field(default_factory=dict)
    """The other learned objects saved with the models (empty when fresh)."""


def dumps(models: ActionModels, extras: Mapping[str, object] | None = None) -> bytes:
    state = {"models": models, "extras": dict(extras or {})}
    payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    header = {
        "format": FORMAT,
        "features": FEATURE_VERSION,
        "model": models.kind,
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    return MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload


def read(data: bytes, *, kind: str = DEFAULT_MODEL) -> ActionModels:
    """The models in ``data``, or :class:`CheckpointError` saying why they are unusable."""
    return read_state(data, kind=kind)[0]


def read_state(data: bytes, *, kind: str = DEFAULT_MODEL) -> tuple[ActionModels, dict[str, object]]:
    """The models and the extras in ``data``, or :class:`CheckpointError`."""
    if not data:
        raise CheckpointError("empty", "no checkpoint")
    if not data.startswith(MAGIC):
        raise CheckpointError("corrupt", "not a clicktrail model checkpoint")
    head, sep, payload = data[len(MAGIC) :].partition(b"\n")
    try:
        header = json.loads(head) if sep else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError("corrupt", "unreadable checkpoint header")
    if header.get("features") != FEATURE_VERSION:
        raise CheckpointError(
            "feature_version",
            f"checkpoint features {header.get('features')!r}, this build {FEATURE_VERSION!r}",
        )
    if header.get("model") != kind:
        raise CheckpointError("model", f"checkpoint model {header.get('model')!r}, want {kind!r}")
    if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise CheckpointError("corrupt", "checkpoint checksum mismatch")
    try:
        state = pickle.loads(payload)
    except Exception as exc:  # unpickling fails in many ways; all mean the same here
        raise CheckpointError("corrupt", f"cannot unpickle checkpoint: {exc!r}") from exc
    models = state.get("models") if isinstance(state, dict) else state
    extras = state.get("extras") if isinstance(state, dict) else None
    if not isinstance(models, ActionModels) or not isinstance(extras, dict):
        raise CheckpointError("corrupt", f"checkpoint holds {type(state).__name__}")
    return models, extras


def loads(
    data: bytes | None,
    actions: Iterable[str],
    *,
    kind: str = DEFAULT_MODEL,
    priors: Mapping[str, float] | None = None,
) -> Restored:
    """Restore or start fresh, never raise: the runtime logs ``reason`` when ``fresh``.
    ``priors``: base rates of fresh models (restored ones keep what they learned)."""
    actions = list(actions)
    try:
        models, extras = read_state(data or b"", kind=kind)
    except CheckpointError as exc:
        return Restored(
            ActionModels(actions, kind, priors=priors),
            fresh=True,
            reason=exc.reason,
            message=str(exc),
        )
    models.priors.update(priors or {})
    for action in actions:
        models[action]  # actions configured since the checkpoint start fresh
    return Restored(models, fresh=False, extras=extras)
