"""The edge application: endpoints composed into one Starlette app.

Every route is a Starlette ``Route`` over a small ASGI endpoint, so the app is
introspectable (the OpenAPI test walks ``app.routes``) and Starlette answers
404/405 and runs the lifespan. The tracking paths (pixels, click, postback)
also sit in a dict in front of the router, :class:`HotPaths`, which calls the
very same endpoint without the router's regex walk and middleware stack:
that is most of the per-request cost at these request rates.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from clicktrail.edge.auth import operator_token
from clicktrail.edge.backend import EdgeBackend, EmbeddedBackend
from clicktrail.edge.batch import BatchIntake
from clicktrail.edge.click import PREFIX as CLICK_PREFIX
from clicktrail.edge.click import ClickRedirect
from clicktrail.edge.context import Clock, EdgeContext
from clicktrail.edge.endpoint import Endpoint
from clicktrail.edge.health import Health, Metrics, Ready
from clicktrail.edge.insights import AuctionInsightsImport
from clicktrail.edge.pixel import ImpressionPixel
from clicktrail.edge.postback import ConversionPixel, Postback
from clicktrail.edge.query import Query
from clicktrail.edge.sales import SalesImport
from clicktrail.edge.score import CheckpointScorer, Score
from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.runtime.reconcile import SalesLedger
from clicktrail.ui import dashboard_app

log = structlog.get_logger(__name__)

HTTP_REASONS = {404: "not_found", 405: "method_not_allowed"}


@dataclass(frozen=True)
class EdgeRoute:
    path: str
    methods: tuple[str, ...]
    endpoint: Endpoint
    hot: bool = False


class HotPaths:
    """Dispatch the tracking paths straight to their endpoints; everything else to ``app``."""

    def __init__(self, app: ASGIApp, routes: Sequence[EdgeRoute]) -> None:
        self.app = app
        self.exact: dict[str, tuple[frozenset[str], Endpoint]] = {}
        self.prefixes: list[tuple[str, frozenset[str], Endpoint]] = []
        for route in routes:
            if not route.hot:
                continue
            methods = frozenset(route.methods)
            if route.path.endswith("}"):
                prefix = route.path[: route.path.index("{")]
                self.prefixes.append((prefix, methods, route.endpoint))
            else:
                self.exact[route.path] = (methods, route.endpoint)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            found = self.exact.get(path)
            if found is not None and scope["method"] in found[0]:
                await found[1](scope, receive, send)
                return
            for prefix, methods, endpoint in self.prefixes:
                if (
                    path.startswith(prefix)
                    and len(path) > len(prefix)
                    and "/" not in path[len(prefix) :]
                    and scope["method"] in methods
                ):
                    await endpoint(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class Prefixed:
    """Whole applications under a path prefix (the dashboard under ``/ui``), apart from the
    API router: their pages answer HTML, errors included, and are no part of the API."""

    def __init__(self, app: ASGIApp, apps: Mapping[str, ASGIApp]) -> None:
        self.app = app
        self.apps = dict(apps)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            for prefix, app in self.apps.items():
                if path == prefix or path.startswith(prefix + "/"):
                    await app(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class EdgeApp:
    """The ASGI app uvicorn serves; ``routes`` and ``starlette`` are there to inspect."""

    def __init__(
        self,
        ctx: EdgeContext,
        routes: Sequence[EdgeRoute],
        apps: Mapping[str, ASGIApp] | None = None,
    ) -> None:
        self.ctx = ctx
        self.routes = list(routes)
        backend = ctx.backend

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            await backend.start()
            log.info("edge.started", backend=backend.name)
            try:
                yield
            finally:
                await backend.stop()
                log.info("edge.stopped", backend=backend.name)

        async def http_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, HTTPException)
            reason = HTTP_REASONS.get(exc.status_code, "bad_request")
            ctx.metrics.requests["other", exc.status_code] += 1
            ctx.metrics.rejects["other", reason] += 1
            message = f"{request.method} {request.scope['path']}: {exc.detail}"
            return JSONResponse(
                {"error": reason, "message": message},
                status_code=exc.status_code,
                headers=exc.headers,
            )

        self.starlette = Starlette(
            routes=[Route(r.path, r.endpoint, methods=list(r.methods)) for r in routes],
            exception_handlers={HTTPException: http_error},
            lifespan=lifespan,
        )
        self._app: ASGIApp = HotPaths(self.starlette, routes)
        if apps:
            self._app = Prefixed(self._app, apps)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def tracking_routes(ctx: EdgeContext) -> list[EdgeRoute]:
    """The routes every edge serves, embedded or scale-out."""
    return [
        EdgeRoute("/i.gif", ("GET",), ImpressionPixel(ctx), hot=True),
        EdgeRoute(CLICK_PREFIX + "{campaign_id}", ("GET",), ClickRedirect(ctx), hot=True),
        EdgeRoute("/postback", ("GET", "POST"), Postback(ctx), hot=True),
        EdgeRoute("/cv.gif", ("GET",), ConversionPixel(ctx), hot=True),
        EdgeRoute("/v1/events", ("POST",), BatchIntake(ctx)),
        EdgeRoute("/v1/auction-insights", ("POST",), AuctionInsightsImport(ctx)),
        EdgeRoute("/healthz", ("GET",), Health(ctx)),
        EdgeRoute("/readyz", ("GET",), Ready(ctx)),
        EdgeRoute("/metrics", ("GET",), Metrics(ctx)),
    ]


def build_edge(
    backend: EdgeBackend,
    *,
    clock: Clock | None = None,
    models: Path | None = None,
    dashboard: ASGIApp | None = None,
) -> EdgeApp:
    """The scale-out edge (``clicktrail edge``): tracking routes and, given the workers'
    model checkpoint, ``/v1/score``; no analyst SQL. ``dashboard``: the ``/ui`` app over
    the workers' ClickHouse, when the edge is given it."""
    ctx = EdgeContext(backend, clock=clock) if clock else EdgeContext(backend)
    scorer = CheckpointScorer(models) if models is not None else None
    score = EdgeRoute("/v1/score", ("GET",), Score(ctx, scorer))
    apps = {"/ui": dashboard} if dashboard is not None else None
    return EdgeApp(ctx, [*tracking_routes(ctx), score], apps)


def build_app(
    runtime: EmbeddedRuntime, *, query_token: str | None = None, clock: Clock | None = None
) -> EdgeApp:
    """``clicktrail run``: the tracking routes over the embedded runtime, plus ``/v1/query``,
    ``/v1/score`` from the live models, ``/v1/sales`` (reconciliation, which reads the
    store and updates conversions the runtime holds) and the dashboard at ``/ui/``.

    ``query_token`` overrides the operator token otherwise read from the environment or
    the registry (:func:`clicktrail.edge.query.operator_token`)."""
    backend = EmbeddedBackend(runtime)
    ctx = EdgeContext(backend, clock=clock) if clock else EdgeContext(backend)
    registry = runtime.registry
    token = query_token or operator_token(registry.security.operator_token)
    proxies = [str(cidr) for cidr in registry.edge.trusted_proxies]
    query = EdgeRoute("/v1/query", ("GET", "POST"), Query(ctx, runtime.store, token, proxies))
    live = Score(ctx, lambda: runtime.pipeline.models.models, runtime.models_lock)
    score = EdgeRoute("/v1/score", ("GET",), live)
    ledger = SalesLedger(registry, runtime.store)
    holds = runtime.pipeline.attributor.holds
    sales = EdgeRoute("/v1/sales", ("POST",), SalesImport(ctx, ledger, holds))
    ui = dashboard_app(runtime.store, registry, token, proxies)
    return EdgeApp(ctx, [*tracking_routes(ctx), query, score, sales], {"/ui": ui})
