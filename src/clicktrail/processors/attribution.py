"""The user stage (keyed by user): touch paths, transaction ids, and credit.

Each user's recent clicks and impressions are kept in time order. A resolved
conversion is credited to the click its postback named (plus, for multi-touch
models, the user's earlier clicks), else to the user's clicks in the click
window, else to an unclicked impression in the view-through window, else to
nobody (an orphan row, so nothing reported is lost). Repeated transaction ids
follow the action's policy; status updates keep the original status.

An orphan whose click arrives after all (``rejoined``) is credited in a new version:
the click's row comes new (``previous_weight`` 0) and the orphan row comes again with
weight 0 (``previous_weight`` 1), so the rollups, which add ``weight -
previous_weight``, move the conversion from nobody to the click.

A touch that arrives after a conversion it preceded was credited by the user's path (a
late click, a partition that ran behind) changes what the path credits: ``on_touch``
returns those conversions (``retouched``), and ``recredit`` gives them a new version the
same way, so the credit is what the path in event time says, whatever the order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from clicktrail.config.registry import Action, AttributionSettings, Campaign
from clicktrail.contracts import AttributedConversion, Conversion, StateStore
from clicktrail.contracts.internal import ResolvedConversion, Touch
from clicktrail.processors.weights import credit

MAX_TOUCHES_PER_USER = 50
CONVERSION_RETENTION = timedelta(days=90)
FINAL_STATUSES = ("approved", "rejected")
_DEFAULT_SETTINGS = AttributionSettings()
_DEFAULT_ACTION = Action()


class Attributor:
    def __init__(
        self,
        paths: StateStore,
        conversions: StateStore,
        waiting: StateStore,
        by_user: StateStore | None = None,
        *,
        campaigns: Mapping[str, Campaign],
        actions: Mapping[str, Action],
        grace_for: Callable[[Conversion], timedelta],
    ) -> None:
        self.paths = paths
        self.conversions = conversions
        self.waiting = waiting
        self.by_user = by_user
        """user -> keys of their conversions credited by path (no click named)"""
        self.grace_for = grace_for
        self.campaigns = campaigns
        self.actions = actions
        windows = [c.attribution.click_window_days for c in campaigns.values()]
        self.path_horizon = timedelta(days=max([_DEFAULT_SETTINGS.click_window_days, *windows]))

    # -- touches -------------------------------------------------------------------------

    def on_touch(self, touch: Touch, origin: str) -> list[ResolvedConversion]:
        """Extend the user's path (kept in time order, however late a touch arrives); the
        user's conversions credited by path that this touch now takes part in come back
        as ``retouched``, with the click the path now credits, to be judged and credited
        again (:meth:`recredit`)."""
        if not touch.user_id:
            return []
        path: list[dict[str, Any]] = self.paths.get(touch.user_id) or []
        if any(t["touch_id"] == touch.touch_id and t["kind"] == touch.kind for t in path):
            return []
        path = sorted([*path, touch.model_dump(mode="json")], key=_path_order)
        self.paths[touch.user_id] = path[-MAX_TOUCHES_PER_USER:]
        return self._retouched(touch)

    def _retouched(self, touch: Touch) -> list[ResolvedConversion]:
        if self.by_user is None:
            return []
        out = []
        for key in self.by_user.get(touch.user_id or "") or []:
            state = self.conversions.get(key)
            if state is None or datetime.fromisoformat(state["conversion"]["ts"]) < touch.ts:
                continue  # a touch after a conversion takes no part in it
            conversion = Conversion.model_validate(state["conversion"])
            resolved = ResolvedConversion(conversion=conversion, lookup="retouched")
            touches, kind, _ = self._credited_path(resolved)
            now = {(kind, t.touch_id) for t in touches}
            if touch.touch_id not in {touch_id for _, touch_id in now}:
                continue  # the path credits what it credited before
            if now == {_credited_id(row) for row in state["credited"]}:
                continue
            click = next((t for t in reversed(touches) if t.kind == "click"), None)
            out.append(resolved.model_copy(update={"click": click}))
        return out

    def recredit(self, resolved: ResolvedConversion, origin: str) -> list[AttributedConversion]:
        """A retouched conversion credited by its path as it is now, in a new version
        that carries the verdict ``resolved`` brings."""
        found = self._state_of(resolved.conversion)
        if found is None:
            return []
        key, state = found
        if state["origin"] == origin:
            return _rows(state)
        return self._new_credit(key, state, resolved.model_copy(update={"click": None}), origin)

    # -- conversions ---------------------------------------------------------------------

    def on_conversion(
        self, resolved: ResolvedConversion, origin: str
    ) -> list[AttributedConversion]:
        conversion = resolved.conversion
        if resolved.lookup == "rejoined":
            return self._rejoin(resolved, origin)
        key = _identity(conversion)
        previous = self.conversions.get(key)
        if previous is not None:
            if previous["origin"] == origin:  # the same message again: same rows again
                return _rows(previous)
            if previous["event_id"] == conversion.event_id:
                return []
            policy = self.actions.get(conversion.action, _DEFAULT_ACTION).txid_policy
            if policy == "ignore":
                return []
            if policy == "update":
                state = _updated(previous, conversion, origin)
                self.conversions[key] = state
                return _rows(state)
            key = f"{key}|{conversion.event_id}"  # policy "new": a conversion of its own
        if self._should_wait(resolved):
            return []
        state = self._attribute(resolved, origin)
        self.conversions[key] = state
        if resolved.click is None and resolved.user_id and self.by_user is not None:
            keys = [k for k in self.by_user.get(resolved.user_id) or [] if k != key]
            self.by_user[resolved.user_id] = [*keys, key][-MAX_TOUCHES_PER_USER:]
        return _rows(state)

    def _rejoin(self, resolved: ResolvedConversion, origin: str) -> list[AttributedConversion]:
        """The orphan's click came: credit it in a new version. A conversion that is not an
        orphan any more (credited by user since, or this is a redelivery) stays as it is;
        one this stage never saw is attributed as if found."""
        found = self._state_of(resolved.conversion)
        if found is None:
            if self.conversions.get(_identity(resolved.conversion)) is not None:
                return []  # a status update of a conversion: its first report re-joins it
            plain = resolved.model_copy(update={"lookup": "found"})
            return self.on_conversion(plain, origin)
        key, state = found
        if state["origin"] == origin:
            return _rows(state)
        if any(row["touch"] != "none" for row in state["credited"]):
            return []
        return self._new_credit(key, state, resolved, origin)

    def _new_credit(
        self, key: str, state: dict[str, Any], resolved: ResolvedConversion, origin: str
    ) -> list[AttributedConversion]:
        """The conversion credited again by ``resolved``'s path, in a new version whose
        rows move the credit from the previous version's (``previous_credited``)."""
        touches, touch_kind, settings = self._credited_path(resolved)
        weights = credit(settings.model, [t.ts for t in touches], resolved.conversion.ts)
        conversion = Conversion.model_validate(state["conversion"])
        credited = [
            _credit_row(t, touch_kind, settings.model, w, conversion)
            for t, w in zip(touches, weights, strict=True)
            if w > 0
        ]
        if not credited:
            return []
        rejoined = {
            **state,
            "origin": origin,
            "credited": credited,
            "previous_credited": state["credited"],
            "fraud_action": resolved.fraud_action,
            "fraud_reason": resolved.fraud_reason,
            "version": state["version"] + 1,
            "previous": _previous(state),
        }
        self.conversions[key] = rejoined
        return _rows(rejoined)

    def mark(self, resolved: ResolvedConversion, fraud_action: str, fraud_reason: str) -> bool:
        """Keep the verdict of a conversion first credited by this report, so its status
        updates carry it too. False for an update: its own verdict leaves the
        conversion's as it was (the flagged rollups change by differences only)."""
        found = self._state_of(resolved.conversion)
        if found is None or found[1]["version"] != 1:
            return False
        key, state = found
        self.conversions[key] = {
            **state,
            "fraud_action": fraud_action,
            "fraud_reason": fraud_reason,
        }
        return True

    def revise(self, resolved: ResolvedConversion, origin: str) -> list[AttributedConversion]:
        """The conversion's verdict changed after it was credited (its click was convicted
        since): a new version with the new verdict, status and amounts as they were."""
        found = self._state_of(resolved.conversion)
        if found is None:
            return []
        key, state = found
        verdict = (resolved.fraud_action, resolved.fraud_reason)
        if (state.get("fraud_action", "ok"), state.get("fraud_reason")) == verdict:
            return []
        revised = {
            **state,
            "origin": origin,
            "previous_credited": None,
            "fraud_action": resolved.fraud_action,
            "fraud_reason": resolved.fraud_reason,
            "version": state["version"] + 1,
            "previous": _previous(state),
        }
        self.conversions[key] = revised
        return _rows(revised)

    def _state_of(self, conversion: Conversion) -> tuple[str, dict[str, Any]] | None:
        """The state this conversion's first report created (its updates keep it)."""
        key = _identity(conversion)
        for candidate in (key, f"{key}|{conversion.event_id}"):
            state = self.conversions.get(candidate)
            if state and state["conversion"]["event_id"] == conversion.event_id:
                return candidate, state
        return None

    def _should_wait(self, resolved: ResolvedConversion) -> bool:
        """A conversion matched by user only waits for the grace period: the click that
        really preceded it may still be on its way (a late delivery, another partition,
        another worker), and crediting an older touch now would be wrong for good."""
        user = resolved.user_id
        if resolved.lookup != "no_click" or not user:
            return False
        conversion = resolved.conversion
        entries: list[dict[str, Any]] = self.waiting.get(user) or []
        if all(e["event_id"] != conversion.event_id for e in entries):
            identity = _identity(conversion)
            deadline = (conversion.ts + self.grace_for(conversion)).timestamp()
            # a status update of a conversion still waiting leaves with it, not on a
            # deadline of its own that a live stream may not reach for hours
            deadline = min(
                [deadline, *(e["deadline"] for e in entries if e.get("identity") == identity)]
            )
            entries = [
                {**e, "deadline": deadline} if e.get("identity") == identity else e for e in entries
            ]
            entry = {
                "event_id": conversion.event_id,
                "identity": identity,
                "deadline": deadline,
                "resolved": resolved.model_dump(mode="json"),
            }
            self.waiting[user] = [*entries, entry]
        return True

    def holds(self, conversion: Conversion) -> bool:
        """Whether a report of this transaction (same txid, advertiser and action, or the
        same conversion id) would update a conversion this stage remembers, rather than
        start a new one: what a status update sent long after the fact must ask first."""
        return _identity(conversion) in self.conversions

    def is_waiting(self, resolved: ResolvedConversion) -> bool:
        """Is this conversion held for the grace period (rather than done with)?"""
        user = resolved.user_id
        entries: list[dict[str, Any]] = (self.waiting.get(user) or []) if user else []
        return any(e["event_id"] == resolved.conversion.event_id for e in entries)

    def settle(self, watermark: datetime) -> list[ResolvedConversion]:
        """Conversions whose wait is over, to be credited with whatever path there is."""
        now = watermark.timestamp()
        out = []
        for user in sorted(self.waiting):
            entries = self.waiting[user]
            due = [e for e in entries if e["deadline"] <= now]
            if not due:
                continue
            rest = [e for e in entries if e["deadline"] > now]
            if rest:
                self.waiting[user] = rest
            else:
                del self.waiting[user]
            for entry in due:
                resolved = ResolvedConversion.model_validate(entry["resolved"])
                out.append(resolved.model_copy(update={"lookup": "settled"}))
        return out

    def _attribute(self, resolved: ResolvedConversion, origin: str) -> dict[str, Any]:
        conversion = resolved.conversion
        touches, touch_kind, settings = self._credited_path(resolved)
        weights = credit(settings.model, [t.ts for t in touches], conversion.ts)
        credited = [
            _credit_row(t, touch_kind, settings.model, w, conversion)
            for t, w in zip(touches, weights, strict=True)
            if w > 0
        ]
        if not credited:
            credited = [_orphan_row(conversion)]
        return {
            "origin": origin,
            "event_id": conversion.event_id,
            "conversion": conversion.model_dump(mode="json"),
            "status": conversion.status,
            "original_status": conversion.status,
            "revenue": conversion.revenue,
            "payout": conversion.payout,
            "latest_ts": conversion.ts.isoformat(),
            "fraud_action": resolved.fraud_action,
            "fraud_reason": resolved.fraud_reason,
            "version": 1,
            "previous": None,
            "credited": credited,
        }

    def _credited_path(
        self, resolved: ResolvedConversion
    ) -> tuple[list[Touch], str, AttributionSettings]:
        conversion = resolved.conversion
        user = resolved.user_id
        path = [Touch.model_validate(t) for t in (self.paths.get(user) or [])] if user else []
        advertiser = conversion.advertiser_id or (
            resolved.click.advertiser_id if resolved.click else None
        )
        path = [t for t in path if t.ts <= conversion.ts and self._same_advertiser(t, advertiser)]
        clicks = [t for t in path if t.kind == "click"]
        if resolved.click is not None:
            named = resolved.click
            settings = self._settings(named.campaign_id)
            if not self._same_advertiser(named, conversion.advertiser_id):
                return [], "none", settings  # another advertiser's click earns nothing here
            window = timedelta(days=settings.click_window_days)
            if conversion.ts - named.ts > window:
                return [], "none", settings
            earlier = [
                t
                for t in clicks
                if t.touch_id != named.touch_id
                and t.ts <= named.ts
                and conversion.ts - t.ts <= window
            ]
            return [*earlier, named], "click", settings
        if clicks:
            settings = self._settings(clicks[-1].campaign_id)
            window = timedelta(days=settings.click_window_days)
            in_window = [t for t in clicks if conversion.ts - t.ts <= window]
            if in_window:
                return in_window, "click", settings
        clicked = {t.impression_id for t in clicks if t.impression_id}
        views = [t for t in path if t.kind == "impression" and t.touch_id not in clicked]
        if views:
            settings = self._settings(views[-1].campaign_id)
            window = timedelta(days=settings.view_window_days)
            if conversion.ts - views[-1].ts <= window:
                return [views[-1]], "view", settings.model_copy(update={"model": "last_click"})
        return [], "none", _DEFAULT_SETTINGS

    def _settings(self, campaign_id: str) -> AttributionSettings:
        campaign = self.campaigns.get(campaign_id)
        return campaign.attribution if campaign else _DEFAULT_SETTINGS

    def _same_advertiser(self, touch: Touch, advertiser: str | None) -> bool:
        if advertiser is None:
            return True
        owner = touch.advertiser_id
        if owner is None and (campaign := self.campaigns.get(touch.campaign_id)):
            owner = campaign.advertiser
        return owner is None or owner == advertiser

    # -- housekeeping --------------------------------------------------------------------

    def expire(self, watermark: datetime) -> int:
        """Drop touches older than the longest click window and settled conversions."""
        touch_horizon = watermark - self.path_horizon
        removed = 0
        for user in list(self.paths):
            path = self.paths[user]
            kept = [t for t in path if datetime.fromisoformat(t["ts"]) >= touch_horizon]
            removed += len(path) - len(kept)
            if not kept:
                del self.paths[user]
            elif len(kept) != len(path):
                self.paths[user] = kept
        conversion_horizon = watermark - CONVERSION_RETENTION
        for key in list(self.conversions):
            ts = datetime.fromisoformat(self.conversions[key]["conversion"]["ts"])
            if ts < conversion_horizon:
                del self.conversions[key]
                removed += 1
        by_user = self.by_user if self.by_user is not None else {}
        for user, keys in list(by_user.items()):
            kept = [k for k in keys if k in self.conversions]
            if not kept:
                del by_user[user]
            elif len(kept) != len(keys):
                by_user[user] = kept
        return removed


def _path_order(touch: dict[str, Any]) -> tuple[datetime, str, str]:
    """Event time, then kind and id: touches of one millisecond (the impressions of one
    search auction) keep one order whatever order they arrived in, so the last of them,
    the one a view-through credits, is the same in every replay."""
    return datetime.fromisoformat(touch["ts"]), touch["kind"], touch["touch_id"]


def _identity(conversion: Conversion) -> str:
    if conversion.txid:
        return f"tx|{conversion.advertiser_id or ''}|{conversion.action}|{conversion.txid}"
    return f"id|{conversion.conversion_id}"


def _updated(previous: dict[str, Any], conversion: Conversion, origin: str) -> dict[str, Any]:
    """Apply a repeated transaction. Event time decides, not arrival: an older report
    only corrects the original status; the newest report sets status and amounts."""
    newest = conversion.ts >= datetime.fromisoformat(previous["latest_ts"])
    status = previous["status"]
    revenue, payout = previous["revenue"], previous["payout"]
    original = previous["original_status"]
    if newest:
        if not (previous["status"] in FINAL_STATUSES and conversion.status == "pending"):
            status = conversion.status  # a late "pending" never undoes a decision
        if conversion.revenue > 0 or conversion.payout > 0:
            revenue, payout = conversion.revenue, conversion.payout
    if conversion.ts < datetime.fromisoformat(previous["conversion"]["ts"]):
        original = conversion.status
    return {
        **previous,
        "origin": origin,
        "previous_credited": None,
        "event_id": conversion.event_id,
        "status": status,
        "original_status": original,
        "revenue": revenue,
        "payout": payout,
        "latest_ts": max(conversion.ts, datetime.fromisoformat(previous["latest_ts"])).isoformat(),
        "version": previous["version"] + 1,
        "previous": _previous(previous),
    }


def _previous(state: dict[str, Any]) -> dict[str, Any]:
    """What a new version changes from: the rollups add only the difference."""
    return {
        "status": state["status"],
        "revenue": state["revenue"],
        "payout": state["payout"],
        "fraud_action": state.get("fraud_action", "ok"),
    }


def _credit_row(
    touch: Touch, kind: str, model: str, weight: float, conversion: Conversion
) -> dict[str, Any]:
    return {
        "touch": kind,
        "click_id": touch.touch_id if touch.kind == "click" else None,
        "impression_id": touch.impression_id if touch.kind == "click" else touch.touch_id,
        "click_ts": touch.ts.isoformat(),
        "campaign_id": touch.campaign_id,
        "advertiser_id": touch.advertiser_id or conversion.advertiser_id,
        "partner_id": touch.partner_id,
        "channel": touch.channel,
        "country": touch.country,
        "device_type": touch.device_type,
        "model": model,
        "weight": weight,
        "ctit_seconds": (conversion.ts - touch.ts).total_seconds(),
    }


def _credited_id(row: dict[str, Any]) -> tuple[str, str | None]:
    """(touch, id) of a credited row, as ``_credited_path`` names its touches."""
    touch = row["touch"]
    return touch, row.get("click_id") if touch == "click" else row.get("impression_id")


def _orphan_row(conversion: Conversion) -> dict[str, Any]:
    return {
        "touch": "none",
        "campaign_id": conversion.campaign_id,
        "advertiser_id": conversion.advertiser_id,
        "partner_id": conversion.partner_id,
        "country": conversion.user.country,
        "device_type": conversion.user.device_type,
        "model": "last_click",
        "weight": 1.0,
    }


def _move_key(row: dict[str, Any]) -> tuple[str, str, str, str]:
    """What a row credits: its table slot (model and click id, the sort key beside the
    conversion id) and the touch in it, so credit moving within the non-click slot (from
    nobody to a view, from one view to another) is a move too."""
    return row["model"], row.get("click_id") or "", row["touch"], row.get("impression_id") or ""


def _rows(state: dict[str, Any]) -> list[AttributedConversion]:
    """The version's rows: the rows the credit left (an orphan re-joined, a view a late
    click took over), with weight 0, then each credited row with the weight it had
    before. A touch that replaces another in the same table slot (the one non-click
    slot: orphan or view) comes after the row it replaces, so the table keeps it."""
    conversion = state["conversion"]
    previous = state["previous"] or {}
    before = state.get("previous_credited")
    prior: dict[tuple[str, str, str, str], float] = {}
    if state["previous"] is not None:
        prior = {_move_key(row): row["weight"] for row in (before or state["credited"])}
    common = {
        "conversion_id": conversion["conversion_id"],
        "txid": conversion["txid"],
        "action": conversion["action"],
        "status": state["status"],
        "original_status": state["original_status"],
        "currency": conversion["currency"],
        "conversion_ts": conversion["ts"],
        "version": state["version"],
        "fraud_action": state.get("fraud_action", "ok"),
        "fraud_reason": state.get("fraud_reason"),
    }
    rows = []
    kept = {_move_key(row) for row in state["credited"]}
    for row in before or []:
        if _move_key(row) in kept:
            continue
        was = row["weight"]
        rows.append(
            AttributedConversion(
                **{**common, "fraud_action": previous.get("fraud_action", "ok")},
                revenue=0.0,
                payout=0.0,
                previous_status=previous.get("status"),
                previous_revenue=previous.get("revenue", 0.0) * was,
                previous_payout=previous.get("payout", 0.0) * was,
                previous_fraud_action=previous.get("fraud_action"),
                previous_weight=was,
                **{**row, "weight": 0.0},
            )
        )
    for row in state["credited"]:
        was = prior.get(_move_key(row), 0.0)
        rows.append(
            AttributedConversion(
                **common,
                revenue=state["revenue"] * row["weight"],
                payout=state["payout"] * row["weight"],
                previous_status=previous.get("status") if was else None,
                previous_revenue=previous.get("revenue", 0.0) * was,
                previous_payout=previous.get("payout", 0.0) * was,
                previous_fraud_action=previous.get("fraud_action") if was else None,
                previous_weight=was,
                **row,
            )
        )
    return rows
