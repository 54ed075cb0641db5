"""``/healthz`` (the process answers), ``/readyz`` (the bus is reachable), ``/metrics``."""

from __future__ import annotations

from clicktrail.edge.endpoint import Call, Endpoint
from clicktrail.edge.http import Reply, text_reply

PROMETHEUS_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class Health(Endpoint):
    name = "healthz"

    async def handle(self, call: Call) -> Reply:
        return text_reply(200, "ok")


class Ready(Endpoint):
    name = "readyz"

    async def handle(self, call: Call) -> Reply:
        ready, detail = await self.ctx.backend.ready()
        return text_reply(200 if ready else 503, detail)


class Metrics(Endpoint):
    name = "metrics"

    async def handle(self, call: Call) -> Reply:
        return text_reply(200, self.ctx.metrics.render(), PROMETHEUS_TYPE)
