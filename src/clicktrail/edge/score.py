"""``GET /v1/score``: per-action conversion probabilities of a context, for bidders.

The context is validated like an event (a country is two letters, a device one of
the known kinds, unknown parameters are refused with a 400 naming them); unseen
categories are fine, they just carry no weight. The embedded service answers from
the live models, which its processing thread keeps learning: the read holds the
runtime's models lock, taken on the loop when it is free and otherwise waited for
in a worker thread, so the loop never waits for a chunk of processing. The
scale-out edge answers from the workers' latest checkpoint, reloaded when the
file changes (replaced whole, never mutated: no lock).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field, ValidationError

from clicktrail.contracts.common import (
    ActionName,
    Contract,
    CountryCode,
    EventTime,
    Id,
    ShortText,
)
from clicktrail.contracts.events import Channel, DeviceType
from clicktrail.edge.context import EdgeContext
from clicktrail.edge.endpoint import Call, Endpoint
from clicktrail.edge.errors import EdgeError
from clicktrail.edge.http import MAX_QUERY_FIELDS, Reply, json_reply, parse_query
from clicktrail.processors.models import ActionModels, loads
from clicktrail.processors.models.features import Features, context_features
from clicktrail.runtime.models_lock import ModelsLock

MAX_QUERY_BYTES = 8192
LIST_PARAMETERS = ("segments", "actions")


Scorer = Callable[[], ActionModels | None]
"""Where the models come from: the live ones, or the latest checkpoint (None: no usable one)."""


class ScoreContext(Contract):
    """What ``/v1/score`` is asked about: the features of a click that has not happened."""

    campaign: Id
    partner: Id | None = None
    channel: Channel | None = None
    placement: ShortText | None = None
    keyword: ShortText | None = None
    country: CountryCode | None = None
    device: DeviceType | None = None
    os: ShortText | None = None
    segments: list[ShortText] = Field(default_factory=list, max_length=64)
    ts: EventTime | None = Field(None, description="When the click would happen (default: now)")
    actions: list[ActionName] | None = Field(None, description="Default: every modelled action")

    def features(self, now: datetime) -> Features:
        return context_features(
            ts=self.ts or now,
            campaign=self.campaign,
            partner=self.partner,
            channel=self.channel,
            placement=self.placement,
            keyword=self.keyword,
            country=self.country,
            device=self.device,
            os=self.os,
            segments=self.segments,
        )


def parse_context(pairs: list[tuple[str, str]]) -> ScoreContext:
    """Query pairs to a context; list parameters are comma-separated or repeated."""
    data: dict[str, object] = {}
    for key, value in pairs:
        if key in LIST_PARAMETERS:
            items = [item.strip() for item in value.split(",") if item.strip()]
            data[key] = [*data.get(key, []), *items]  # type: ignore[misc]
        elif key in data:
            raise EdgeError(400, "repeated_parameter", f"parameter {key!r} given twice")
        else:
            data[key] = value
    try:
        return ScoreContext.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "query"
        raise EdgeError(400, "invalid_context", f"{where}: {first['msg']}") from None


class Score(Endpoint):
    name = "score"

    def __init__(
        self, ctx: EdgeContext, scorer: Scorer | None, lock: ModelsLock | None = None
    ) -> None:
        """``lock``: held while the models are read, when something else mutates them."""
        super().__init__(ctx)
        self.scorer = scorer
        self.lock = lock

    async def handle(self, call: Call) -> Reply:
        if self.scorer is None:
            raise EdgeError(
                404, "no_models", "this edge serves no models: start it with --models FILE"
            )
        pairs = parse_query(call.scope["query_string"], MAX_QUERY_BYTES)
        if len(pairs) > MAX_QUERY_FIELDS:
            raise EdgeError(400, "too_many_parameters", f"at most {MAX_QUERY_FIELDS}")
        context = parse_context(pairs)
        now = datetime.fromtimestamp(self.ctx.clock(), tz=UTC)
        lock = self.lock
        if lock is None:
            return self._score(self.scorer, context, now)
        if lock.try_reading():
            try:
                return self._score(self.scorer, context, now)
            finally:
                lock.done()
        return await asyncio.to_thread(self._score_waiting, lock, self.scorer, context, now)

    @classmethod
    def _score_waiting(
        cls, lock: ModelsLock, scorer: Scorer, context: ScoreContext, now: datetime
    ) -> Reply:
        with lock.reading():
            return cls._score(scorer, context, now)

    @staticmethod
    def _score(scorer: Scorer, context: ScoreContext, now: datetime) -> Reply:
        models = scorer()
        if models is None:
            raise EdgeError(503, "models_unavailable", "no usable model checkpoint yet")
        actions = context.actions if context.actions is not None else sorted(models.models)
        unknown = [a for a in actions if a not in models.models]
        if unknown:
            raise EdgeError(400, "unknown_action", f"no model for {', '.join(unknown)}")
        scores = models.score(context.features(now), actions)
        return json_reply(200, {"model": models.name, "scores": scores})


class CheckpointScorer:
    """The models of a checkpoint file the workers write, re-read when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.models: ActionModels | None = None
        self._stamp: tuple[int, int] | None = None

    def __call__(self) -> ActionModels | None:
        try:
            stat = self.path.stat()
        except OSError:
            return self.models
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._stamp = stamp
            restored = loads(self.path.read_bytes(), ())
            if not restored.fresh:
                self.models = restored.models
        return self.models
