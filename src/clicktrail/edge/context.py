"""Everything the endpoints share, built and validated once when the app is built."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from clicktrail.config.registry import Registry
from clicktrail.edge.auth import KeyRing, Scope, operator_token
from clicktrail.edge.backend import EdgeBackend
from clicktrail.edge.landing import LandingPolicy
from clicktrail.edge.metrics import EdgeMetrics
from clicktrail.edge.visitor import Visitor
from clicktrail.processors.postback import PostbackVerifier
from clicktrail.processors.signing import ClickIdSigner

Clock = Callable[[], float]


class RecentKeys:
    """A bounded set of recently seen keys (oldest forgotten first)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("capacity must not be negative")
        self.capacity = capacity
        self._keys: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: str) -> None:
        if self.capacity == 0:
            return
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self.capacity:
            self._keys.popitem(last=False)


class EdgeContext:
    def __init__(
        self,
        backend: EdgeBackend,
        *,
        metrics: EdgeMetrics | None = None,
        clock: Clock = time.time,
    ) -> None:
        registry: Registry = backend.registry
        settings = registry.edge
        if settings.default_action not in registry.actions:
            raise ValueError(
                f"edge.default_action: {settings.default_action!r} is not one of the "
                f"configured actions ({', '.join(registry.actions)})"
            )
        self.backend = backend
        self.registry = registry
        self.settings = settings
        self.metrics = metrics or EdgeMetrics()
        self.clock = clock
        self.visitor = Visitor(settings, registry.privacy)
        self.signer = ClickIdSigner(registry.security.click_id_key)
        self.keys = KeyRing(registry, operator_token(registry.security.operator_token))
        self.scope = Scope(registry, self.signer)
        self.landing = {key: LandingPolicy(key, camp) for key, camp in registry.campaigns.items()}
        self.verifier = PostbackVerifier(
            {key: adv.postback_secret for key, adv in registry.advertisers.items()},
            registry.security.postback_max_age_seconds,
            clock,
        )
        self.recent_txids = RecentKeys(settings.recent_txids)
        self.body_limit = registry.intake.max_event_bytes * 64
        backend.bind(self.metrics)
        self.metrics.gauge(
            "clicktrail_edge_recent_txids",
            "Postbacks remembered for dedup.",
            lambda: len(self.recent_txids),
        )

    def now_ms(self) -> int:
        return int(self.clock() * 1000)
