"""The per-action models as a pipeline runs them: score clicks, learn from labels, report.

The click stage calls :meth:`OnlineModels.on_click` (a ``ClickScores`` row, the click
kept as a pending example) and :meth:`on_label` for each attributed conversion routed
back by ``click_id``; the stage's timer calls :meth:`due` with the event-time
watermark, which closes label deadlines (negatives, held positives) and, once per
``QUALITY_EVERY`` of event time, returns a ``ModelQuality`` row per action. Which
actions a click can lead to comes from its advertiser in the registry; how long it
waits for each, from the action's horizon (``Action.horizon_hours``: its
``label_horizon_hours`` or the default for its name), capped by the campaign's window.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from clicktrail.config import Registry
from clicktrail.contracts import AttributedConversion, Click, ClickScores, ModelQuality, StateStore
from clicktrail.processors.models.estimators import ActionModels
from clicktrail.processors.models.labels import DelayedLabels, Learned

QUALITY_EVERY = timedelta(hours=1)
"""Event time between two quality rows per action."""
SWEEP_EVERY = timedelta(minutes=10)
"""Event time between two sweeps for due labels (a sweep visits every pending click)."""


def prior_rates(registry: Registry) -> dict[str, float]:
    """Per configured action, the base rate its fresh model starts from."""
    return {name: action.prior(name) for name, action in registry.actions.items()}


class OnlineModels:
    def __init__(
        self, registry: Registry, pending: StateStore, models: ActionModels | None = None
    ) -> None:
        self.registry = registry
        self.models = (
            models
            if models is not None
            else ActionModels(
                sorted(registry.actions),
                priors=prior_rates(registry),
            )
        )
        self.labels = DelayedLabels(
            pending,
            self.models,
            actions_for=self.actions_for,
            window_for=self._window,
            label_horizon={
                name: timedelta(hours=action.horizon_hours(name))
                for name, action in registry.actions.items()
            },
        )
        self._swept: datetime | None = None
        self._reported: datetime | None = None

    def actions_for(self, click: Click) -> list[str]:
        """The actions the click's advertiser pays for (all configured ones by default)."""
        campaign = self.registry.campaigns.get(click.campaign_id)
        advertiser = self.registry.advertisers.get(campaign.advertiser) if campaign else None
        if advertiser is not None and advertiser.actions:
            return list(advertiser.actions)
        return sorted(self.registry.actions)

    def _window(self, click: Click) -> timedelta:
        campaign = self.registry.campaigns.get(click.campaign_id)
        days = campaign.attribution.click_window_days if campaign else 30.0
        return timedelta(days=days)

    def on_click(
        self, click: Click, *, rejected: bool, counts: Mapping[str, int] | None = None
    ) -> ClickScores:
        """Score the click before anything is learned from it; a rejected click is scored
        (what it looked like) but never becomes a training example, so the counts its own
        flood put on its IP teach nothing. ``counts``: the click's windowed counts."""
        scores = self.labels.on_click(click, counts)
        if rejected:
            self.labels.mark_fraud(click.click_id)
        return ClickScores.model_construct(  # built from validated parts: no second check
            click_id=click.click_id,
            ts=click.ts,
            campaign_id=click.campaign_id,
            partner_id=click.partner_id,
            model=self.models.name,
            scores=scores,
            learned=not rejected,
        )

    def on_label(self, row: AttributedConversion) -> list[Learned]:
        """An attributed conversion, in the partition of the click it credits."""
        return self.labels.on_conversion(row)

    def mark_fraud(self, click_id: str) -> bool:
        return self.labels.mark_fraud(click_id)

    def due(self, watermark: datetime, decided: datetime | None = None) -> list[ModelQuality]:
        """Learn the labels decided by ``decided`` (default: the watermark; a runtime whose
        conversions wait elsewhere passes how far they are settled); quality rows, stamped
        with the watermark, when they are due."""
        if self._swept is not None and watermark - self._swept < SWEEP_EVERY:
            return []
        self._swept = watermark
        self.labels.expire(watermark if decided is None else min(decided, watermark))
        if self._reported is not None and watermark - self._reported < QUALITY_EVERY:
            return []
        self._reported = watermark
        return self.models.records(watermark)

    def report(self, watermark: datetime) -> list[ModelQuality]:
        """Quality rows now (end of a replay), after learning what the watermark decided.
        Labels still open stay open: their conversions may yet come in a later input."""
        self._swept = self._reported = watermark
        self.labels.expire(watermark)
        return self.models.records(watermark)
