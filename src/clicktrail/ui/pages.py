"""The dashboard's pages: Starlette handlers that check the gate, parse the URL, run the
queries on a worker thread and render a template.

Every page answers HTML, errors included: 400 with the reason for a parameter it refuses,
401 (the login form) or 403 without the operator token, 503 when the store cannot answer.
Responses carry a Content-Security-Policy that allows nothing but this origin's own
stylesheet and images, and are not cached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import structlog
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from clicktrail.config.registry import Registry
from clicktrail.runtime.reconcile import SalesLedger
from clicktrail.sinks.store import Store, StoreError
from clicktrail.ui import advice, params, queries
from clicktrail.ui.advice import Advice
from clicktrail.ui.auth import COOKIE, SESSION_SECONDS, Gate

log = structlog.get_logger(__name__)

STATIC = Path(__file__).parent / "static"
MAX_LOGIN_BODY = 4096
FAILED_LOGIN_DELAY = 0.5
"""Seconds a wrong token waits for its answer: guessing goes no faster than this."""
HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
NAV = (
    ("overview", "/ui/", "Overview"),
    ("advice", "/ui/advice", "Advice"),
    ("partners", "/ui/partners", "Partners"),
    ("funnel", "/ui/funnel", "Funnel"),
    ("conflicts", "/ui/conflicts", "Brand conflicts"),
    ("targeting", "/ui/targeting", "Targeting"),
    ("sales", "/ui/sales", "Sales"),
)

Handler = Callable[[Request], Awaitable[Response]]


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _delta(now: float | None, before: float | None) -> str:
    if now is None or before is None or before == 0:
        return "new" if now and not before else "-"
    change = now / before - 1
    return f"{'+' if change >= 0 else ''}{change * 100:.0f}%"


def environment(currency: str) -> Environment:
    env = Environment(
        loader=PackageLoader("clicktrail.ui", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = _pct
    env.filters["num"] = _num
    env.filters["money"] = lambda v: "-" if v is None else f"{currency} {v:,.2f}"
    env.filters["delta"] = _delta
    env.filters["reason"] = advice.words
    env.filters["url"] = lambda v: quote(str(v), safe="")
    env.globals["nav"] = NAV
    env.globals["currency"] = currency
    return env


class Dashboard:
    """The pages over one store and registry, behind one gate."""

    def __init__(self, store: Store, registry: Registry, gate: Gate) -> None:
        self.store = store
        self.registry = registry
        self.settings = registry.dashboard
        self.gate = gate
        self.env = environment(self.settings.currency)
        self.secure_cookie = registry.edge.cookie_secure
        self.goals = {
            cid: {a: g.model_dump() for a, g in c.goals.items()}
            for cid, c in registry.campaigns.items()
            if c.goals
        }
        # the campaigns whose advertiser pays each action (none listed: every campaign)
        self.campaigns_of: dict[str, set[str]] = {}
        for action in registry.actions:
            paying = {
                cid
                for cid, c in registry.campaigns.items()
                if not registry.advertisers[c.advertiser].actions
                or action in registry.advertisers[c.advertiser].actions
            }
            if paying:
                self.campaigns_of[action] = paying

    # --- plumbing -------------------------------------------------------------------

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def error(self, status: int, title: str, message: str) -> HTMLResponse:
        return self.render("error.html", status, title=title, message=message, page="")

    def page(self, name: str, build: Callable[[Request, params.Period], dict[str, Any]]) -> Handler:
        """A handler: gate, period, queries on a thread, template."""

        async def handler(request: Request) -> Response:
            decision = self.gate.check(request)
            if not decision.allowed:
                if decision.status == 401:
                    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    target = "/ui/login?next=" + quote(here, safe="")
                    return RedirectResponse(target, status_code=303, headers=HEADERS)
                return self.error(decision.status, "Not allowed", decision.message)
            query = dict(request.query_params)
            try:
                context = await run_in_threadpool(self._context, request, query, build)
            except params.BadParameter as bad:
                return self.error(400, "Bad request", str(bad))
            except StoreError as failed:
                log.warning("ui.store_error", page=name, error=str(failed))
                return self.error(503, "The store did not answer", str(failed))
            return self.render(f"{name}.html", page=name, **context)

        return handler

    def _context(
        self,
        request: Request,
        query: dict[str, str],
        build: Callable[[Request, params.Period], dict[str, Any]],
    ) -> dict[str, Any]:
        latest = queries.latest_day(self.store) or datetime.now(UTC).date()
        period = params.period(query, latest)
        context = build(request, period)
        return {
            "period": period,
            "previous": period.previous(),
            "qs": period.query(),
            "latest": latest,
            "logged_in": self.gate.token is not None,
            **context,
        }

    # --- pages ----------------------------------------------------------------------

    def overview(self, request: Request, period: params.Period) -> dict[str, Any]:
        return {"o": queries.overview(self.store, period, self.goals)}

    def partners(self, request: Request, period: params.Period) -> dict[str, Any]:
        return {"partners": queries.partners(self.store, period), "registry": self.registry}

    def partner(self, request: Request, period: params.Period) -> dict[str, Any]:
        partner_id = params.key("partner", request.path_params["partner_id"])
        sub = params.sub_key(request.query_params.get("sub", ""))
        detail = queries.partner_detail(self.store, period, partner_id, sub)
        peak = max((d.clicks for d in detail.days), default=0) or 1
        return {"d": detail, "peak": peak, "registry": self.registry}

    def funnel(self, request: Request, period: params.Period) -> dict[str, Any]:
        segment_name = request.query_params.get("segment", "")
        column = params.segment(segment_name)
        sub = params.sub_key(request.query_params.get("sub", ""))
        campaigns = queries.campaigns_with_traffic(self.store, period)
        raw = request.query_params.get("campaign", "")
        campaign = params.key("campaign", raw) if raw else (campaigns[0] if campaigns else "")
        result = (
            queries.funnel(
                self.store,
                period,
                campaign,
                column,
                below=self.settings.funnel_below_norm,
                min_volume=self.settings.min_stage_volume,
                sub_key=sub,
            )
            if campaign
            else None
        )
        return {
            "f": result,
            "campaigns": campaigns,
            "campaign": campaign,
            "segment": segment_name,
            "segments": params.SEGMENTS,
            "sub": sub,
            "raw": column in params.RAW_SEGMENTS,
        }

    def conflicts(self, request: Request, period: params.Period) -> dict[str, Any]:
        return {
            "conflicts": queries.conflicts(self.store, period),
            "alerts": queries.brand_alerts(self.store),
        }

    def targeting(self, request: Request, period: params.Period) -> dict[str, Any]:
        found = queries.targeting(self.store, period, self.campaigns_of)
        ranked = {
            action: sorted(rows, key=lambda s: -advice.wilson_low(s.conversions, s.clicks))[:10]
            for action, rows in found.segments.items()
        }
        enough = self.settings.min_stage_volume
        predicted = {
            action: sorted(
                (s for s in rows if s.predicted is not None and s.clicks >= enough),
                key=lambda s: -(s.predicted or 0.0),
            )[:5]
            for action, rows in found.segments.items()
        }
        return {"t": found, "ranked": ranked, "predicted": predicted}

    def sales(self, request: Request, period: params.Period) -> dict[str, Any]:
        """The reconciliation with the advertiser's sales, as the imports left it (an import
        covers the days of its export, whatever the period chosen)."""
        rows = SalesLedger(self.registry, self.store).summary()
        return {"rows": rows, "at_risk": sum(r.payout_at_risk for r in rows)}

    def advice(self, request: Request, period: params.Period) -> dict[str, Any]:
        return {"advice": self.compute_advice(period)}

    def compute_advice(self, period: params.Period) -> list[Advice]:
        qs = period.query()
        s = self.settings
        overview = queries.overview(self.store, period, self.goals)
        partners = queries.partners(self.store, period)
        stop = advice.stop_paying(partners, s, qs)
        notices = advice.brand_notices(queries.conflicts(self.store, period), s, qs)
        funnels = queries.funnels_by_partner(
            self.store, period, s.funnel_below_norm, s.min_stage_volume
        )
        value = {
            (c.campaign_id, c.action): c.revenue / c.conversions
            for c in overview.campaigns
            if c.conversions > 0
        }
        told = {a.subject for a in stop}
        stages = advice.funnel_stages(funnels, told, value, s, qs)
        found = queries.segments(self.store, period, self.campaigns_of)
        return advice.rank(
            [
                *stop,
                *notices,
                *advice.goals(overview, s, qs),
                *stages,
                *advice.segments(found, s, qs),
            ]
        )

    # --- login ----------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        target = _local_target(request.query_params.get("next", ""))
        if request.method == "GET":
            if self.gate.token is None:
                decision = self.gate.check(request)
                if decision.allowed:
                    return RedirectResponse(target, status_code=303, headers=HEADERS)
                return self.error(403, "Not allowed", decision.message)
            return self.render("login.html", page="login", next=target, failed=False)
        if not _same_origin(request):
            return self.error(403, "Not allowed", "The login form posts from this dashboard only.")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_LOGIN_BODY:
                return self.error(413, "Too large", "The login form is a token and nothing else.")
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        target = _local_target(form.get("next", target))
        if not self.gate.valid_token(form.get("token", "").strip()):
            await asyncio.sleep(FAILED_LOGIN_DELAY)
            return self.render("login.html", 403, page="login", next=target, failed=True)
        response = RedirectResponse(target, status_code=303, headers=HEADERS)
        response.set_cookie(
            COOKIE,
            self.gate.session(),
            max_age=SESSION_SECONDS,
            path="/ui",
            httponly=True,
            samesite="strict",
            secure=self.secure_cookie or request.url.scheme == "https",
        )
        return response

    async def logout(self, request: Request) -> Response:
        if not _same_origin(request):
            return self.error(403, "Not allowed", "Log out from this dashboard only.")
        response = RedirectResponse("/ui/login", status_code=303, headers=HEADERS)
        response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
        return response

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/", self.page("overview", self.overview)),
            Route("/advice", self.page("advice", self.advice)),
            Route("/partners", self.page("partners", self.partners)),
            Route("/partners/{partner_id}", self.page("partner", self.partner)),
            Route("/funnel", self.page("funnel", self.funnel)),
            Route("/conflicts", self.page("conflicts", self.conflicts)),
            Route("/targeting", self.page("targeting", self.targeting)),
            Route("/sales", self.page("sales", self.sales)),
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]


def _same_origin(request: Request) -> bool:
    """A form post names its page's origin (browsers send ``Origin`` with every POST);
    one from another site is refused, on top of the SameSite=Strict cookie."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


def _local_target(raw: str) -> str:
    """Where to go after logging in: a dashboard path, never another site."""
    if raw.startswith("/ui/") and "//" not in raw and "\\" not in raw and len(raw) < 512:
        return raw
    return "/ui/"


def dashboard_app(
    store: Store, registry: Registry, token: str | None, trusted_proxies: Sequence[str] = ()
) -> Starlette:
    """``/ui``: the dashboard, an app of its own that the edge serves under that prefix."""
    board = Dashboard(store, registry, Gate(token, trusted_proxies))

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        title = {404: "Not found", 405: "Method not allowed"}.get(status, "Error")
        return board.error(status, title, f"{request.method} {request.url.path}: {title.lower()}")

    return Starlette(
        routes=[Mount("/ui", routes=list(board.routes()))],
        exception_handlers={HTTPException: http_error},
    )
