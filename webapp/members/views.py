"""The visibility explainer: find a member, see every offer and reward for them and why."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, current_app, redirect, request, url_for
from sqlalchemy import select

from webapp.access import access
from webapp.extensions import db
from webapp.htmx import is_htmx, render
from webapp.members import bp
from webapp.members.forms import WhatIfForm
from webapp.models import Member, Offer, Reward, Segment, SegmentMembership
from webapp.offers.fields import get_or_404
from webapp.services import activities as activity_service
from webapp.services import decisions as visibility
from webapp.services import replay
from webapp.services.attributes import problems as attribute_problems
from webapp.services.lookup import find_member
from webapp.services.rules import program_timezone
from webapp.targeting import age_on
from webapp.targeting.behaviour import AMOUNT_SCALE
from webapp.timeutil import utcnow

SEARCH_LIMIT = 20
RECENT_ACTIVITIES = 20
FILTERS = {
    "all": "All",
    "hidden": "Not visible",
    "not_eligible": "Not eligible",
    "eligible": "Eligible",
}
VIA = {"list": "on the list", "rule": "by rule", "override": "by override"}


# --- search -------------------------------------------------------------------------------------


def _prefix(column: Any, text: str) -> Any:
    """column starts with text: a range, so the column's index is used, and the exact test."""
    return (column >= text) & (column < text + "\U0010ffff") & column.startswith(
        text, autoescape=True)


def search(text: str) -> tuple[Member | None, list[Member]]:
    """The exact match (member id, external id or email) and members whose external id or
    email starts with the text."""
    text = text.strip()
    if not text:
        return None, []
    exact = find_member(text)
    found: dict[str, Member] = {}
    # one range scan per index (an OR of the two would scan the whole table)
    for column, value in ((Member.external_id, text), (Member.email, text.lower())):
        for member in db.session.scalars(select(Member).where(_prefix(column, value))
                                         .order_by(column).limit(SEARCH_LIMIT + 1)):
            found.setdefault(member.id, member)
    matches = sorted((m for m in found.values() if exact is None or m.id != exact.id),
                     key=lambda m: m.external_id)
    return exact, matches[:SEARCH_LIMIT + 1]


def case_variants(text: str) -> list[str]:
    """The spellings of `text` that differ only in case and that people commonly mean."""
    variants = dict.fromkeys((text.upper(), text.lower(), text.capitalize(), text.title(),
                              text.swapcase()))
    variants.pop(text, None)
    return list(variants)


def did_you_mean(text: str) -> Member | None:
    """A member whose external id is `text` but for its case (e.g. m0000012 for M0000012).

    The common case-only spellings are looked up through the unique external id index, so
    this stays one indexed query on a million members (a lower() comparison would scan them).
    """
    text = text.strip()
    if not text or len(text) > 255:
        return None
    variants = case_variants(text)
    if not variants:
        return None
    return db.session.scalars(select(Member).where(Member.external_id.in_(variants))
                              .order_by(Member.external_id).limit(1)).first()


@bp.route("/")
@access("read")
def index():
    """Find a member by member id, external id or email (search as you type); Enter on an
    exact match opens that member's page."""
    q = request.args.get("q", "").replace("\x00", "").strip()[:320]
    exact, matches = search(q)
    # The search button (which Enter presses) sends go=1; the as-you-type requests and the
    # pushed history entries do not, so Back from the member page returns to the results.
    if exact is not None and request.args.get("go") and not is_htmx():
        return redirect(url_for("members.show", member_id=exact.id), code=303)
    suggestion = did_you_mean(q) if exact is None else None
    more = len(matches) > SEARCH_LIMIT
    return render("members/index.html", "results", q=q, exact=exact, suggestion=suggestion,
                  matches=matches[:SEARCH_LIMIT], more=more)


# --- the member page ----------------------------------------------------------------------------


def _member_or_404(member_id: str) -> Member:
    member = find_member(member_id)
    if member is None:
        abort(404)
    return member


def value_text(value: Any) -> str:
    """A JSON value as a support agent reads it."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:,}"
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return "[" + ", ".join(value_text(v) for v in value) + "]" if value else "none"
    return json.dumps(value, ensure_ascii=False)


def _when(text: Any) -> str:
    return str(text)[:16].replace("T", " ") if text else "—"


def node_values(n: dict[str, Any]) -> str | None:
    """The actual and expected values of an explanation node, in words (None: nothing to say)."""
    kind, actual, expected = n.get("kind"), n.get("actual"), n.get("expected")
    if kind in ("offer", "reward"):
        return str(actual or "").replace("_", " ") or None
    if kind == "window":
        exp = expected or {}
        return (f"now {_when(actual)} · window {_when(exp.get('publish_at'))} → "
                f"{_when(exp.get('expire_at'))}")
    if kind == "points":
        return f"has {value_text(actual)} · costs {value_text(expected)}"
    if kind == "audience" and isinstance(expected, dict) and "minimum_age" in expected:
        lo, hi = expected.get("minimum_age"), expected.get("maximum_age")
        allowed = f"{'any' if lo is None else lo} to {'any' if hi is None else hi}"
        return f"age {value_text(actual)} · allowed {allowed}"
    if kind == "override" and isinstance(expected, dict):
        parts = [f"{actual} override"]
        if expected.get("description"):
            parts.append(f"reason: {expected['description']}")
        if expected.get("actor"):
            parts.append(f"by {expected['actor']}")
        if expected.get("at"):
            parts.append(f"on {_when(expected['at'])}")
        if expected.get("reference_id"):
            parts.append(f"ref {expected['reference_id']}")
        if expected.get("expires_at"):
            parts.append(f"expires {_when(expected['expires_at'])}")
        return " · ".join(parts)
    if kind == "criterion":
        if isinstance(expected, list) and n.get("children"):
            return None
        if isinstance(actual, dict) and "summary" in actual:  # an activity criterion
            # A failed node's gap already says the summary and how far the member is.
            parts = [str(actual["summary"])] if n.get("passed") else []
            if actual.get("leaves_window_at"):
                parts.append("the oldest counted leaves the window at "
                             f"{_when(actual['leaves_window_at'])} UTC")
            return " · ".join(parts) or None
        return f"has {value_text(actual)} · expected {value_text(expected)}"
    return None


def _rank(decision: visibility.Decision) -> tuple[int, int]:
    return (decision.visible_status == "visible", decision.eligible)


def _keep(decision: visibility.Decision, show: str) -> bool:
    if show == "hidden":
        return decision.visible_status != "visible"
    if show == "not_eligible":
        return not decision.eligible
    if show == "eligible":
        return decision.eligible
    return True


@dataclass(slots=True)
class Row:
    """One offer or reward line of the member page, ready to print."""

    id: int
    name: str
    external_id: str | None
    status: str
    status_label: str
    visible: bool
    eligible: bool
    reason: str | None
    misses: list[str]
    more: int
    link: str
    activity: str | None = None  # offers: activation and awards; rewards: redemptions


def offer_activity(decision: visibility.Decision) -> str | None:
    """An offer's activation and usage for this member in words ("activated · awarded 2×")."""
    parts = []
    if decision.must_activate:
        text = "activated" if decision.activated else "not activated"
        if decision.activated:
            node = next((n for n in decision.explanation.get("children") or ()
                         if n.get("kind") == "activation"), None)
            until = (node or {}).get("expected", {}).get("expires_at")
            if until:
                text += f" (fulfil by {_when(until)} UTC)"
        parts.append(text)
    if decision.fulfillment_count:
        parts.append(f"awarded {decision.fulfillment_count:,}×")
    return " · ".join(parts) or None


def reward_activity(redemptions: list[Any]) -> str | None:
    """A reward's redemptions by this member in words ("redeemed 2× · 1 cancelled")."""
    if not redemptions:
        return None
    cancelled = sum(r.status == "cancelled" for r in redemptions)
    text = f"redeemed {len(redemptions) - cancelled:,}×"
    return text + (f" · {cancelled:,} cancelled" if cancelled else "")


def _rows(pairs: list[tuple[Any, visibility.Decision]], show: str, prefix: str,
          memo: dict, redemptions: dict | None = None) -> list[Row]:
    """Rows ready to print: the page lists hundreds, so the template does no work per row."""
    ranked = []
    for item, d in pairs:
        if not _keep(d, show):
            continue
        misses = visibility.near_misses(d.explanation, memo) if not d.eligible else []
        ranked.append((_rank(d), Row(
            id=item.id, name=item.name, external_id=item.external_id,
            status=d.visible_status, status_label=d.visible_status.replace("_", " "),
            visible=d.visible_status == "visible", eligible=d.eligible,
            reason=None if d.eligible or d.reason == d.visible_status
            else d.reason.replace("_", " "),
            misses=misses[:3], more=max(0, len(misses) - 3), link=f"{prefix}/{item.id}",
            activity=offer_activity(d) if redemptions is None
            else reward_activity(redemptions.get(item.id, [])))))
    ranked.sort(key=lambda pair: pair[0])
    return [row for _, row in ranked]


def _counts(pairs: list[tuple[Any, visibility.Decision]]) -> dict[str, int]:
    return {"total": len(pairs),
            "visible": sum(d.visible_status == "visible" for _, d in pairs),
            "eligible": sum(d.eligible for _, d in pairs)}


def member_segments(member: Member) -> list[dict[str, Any]]:
    """The segments the member is in now (materialized), each with how: list, rule, override."""
    rows = db.session.execute(
        select(Segment.id, Segment.name, Segment.kind, SegmentMembership.via,
               SegmentMembership.since)
        .join(SegmentMembership, SegmentMembership.segment_id == Segment.id)
        .where(SegmentMembership.member_id == member.id).order_by(Segment.name))
    return [{"id": sid, "name": name, "kind": kind, "via": via, "how": VIA.get(via, via),
             "since": since} for sid, name, kind, via, since in rows]


def member_age(member: Member) -> int | None:
    """The member's age today in the program's time zone (None without a birthday)."""
    if member.birthday is None:
        return None
    try:
        zone = ZoneInfo(program_timezone())
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return age_on(member.birthday, datetime.now(UTC).astimezone(zone).date())


def _tiers(member: Member) -> list[str]:
    tiers = list(current_app.config["TIERS"])
    if member.tier not in tiers:
        tiers.append(member.tier)
    return tiers


def what_if_form(member: Member, formdata: Any = None) -> WhatIfForm:
    """The what-if form, prefilled with the member's profile."""
    form = WhatIfForm(formdata=formdata, tiers=_tiers(member), data={
        "tier": member.tier, "points": member.points, "birthday": member.birthday,
        "badges": ", ".join(member.badges or []),
        "custom_fields": json.dumps(member.custom_fields or {}, ensure_ascii=False)})
    return form


def amount_text(amount_e4: int | None) -> str:
    """An activity's amount as stored, exactly ('4.5', '1,200', '0.0001'), or '—'."""
    if amount_e4 is None:
        return "—"
    whole, rest = divmod(abs(amount_e4), AMOUNT_SCALE)
    sign = "-" if amount_e4 < 0 else ""
    decimals = f"{rest:04d}".rstrip("0")
    return f"{sign}{whole:,}" + (f".{decimals}" if decimals else "")


def activities_context(member: Member) -> dict[str, Any]:
    """The member page's activities section: the most recent ones and how many in all."""
    return {"activities": activity_service.recent(member.id, RECENT_ACTIVITIES),
            "activity_count": activity_service.count_for(member.id),
            "amount_text": amount_text}


def page_context(member: Member, explainer: visibility.Explainer, *, show: str = "all",
                 form: WhatIfForm | None = None,
                 what_if: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Everything the member page shows (the benchmark renders it too)."""
    from webapp.services.redemptions import member_redemptions

    offers = explainer.offers()
    rewards = explainer.rewards()
    base = url_for("members.show", member_id=member.id)
    memo: dict = {}
    redemptions = member_redemptions(member.id)
    return {
        "member": member, "segments": member_segments(member), "show": show,
        "filters": FILTERS, "offer_rows": _rows(offers, show, base + "/offers", memo),
        "reward_rows": _rows(rewards, show, base + "/rewards", memo, redemptions),
        "redemptions": [r for rows in redemptions.values() for r in rows],
        "offer_counts": _counts(offers), "reward_counts": _counts(rewards),
        "form": form or what_if_form(member), "what_if": what_if, "node_values": node_values,
        "value_text": value_text, "age": member_age(member),
        "field_problems": attribute_problems(member.custom_fields),
        **activities_context(member),
    }


@bp.route("/<member_id>")
@access("read")
def show(member_id: str):
    """A member's profile, segments and every offer and reward with visibility and reasons."""
    member = _member_or_404(member_id)
    show_filter = request.args.get("show", "all")
    if show_filter not in FILTERS:
        show_filter = "all"
    moment, problem = _as_of()
    explainer = None
    if moment is not None:
        try:
            explainer = replay.explainer_at(member.id, moment)
        except replay.ReplayError as exc:
            problem = exc.errors[""]
    if explainer is None:
        explainer = visibility.explainer(member, visibility.load_catalog(rows=True))
    ctx = page_context(member, explainer, show=show_filter)
    ctx.update(as_of=moment if problem is None else None, as_of_problem=problem,
               as_of_local=picker_value(moment) if moment else "",
               as_of_attributes=explainer.attributes if moment and not problem else None,
               timezone=program_timezone())
    return render("members/show.html", "decisions", **ctx), 400 if problem else 200


def picker_value(moment: datetime | None) -> str:
    """A naive-UTC moment as the date-and-time picker shows it (the program time zone)."""
    if moment is None:
        return ""
    local = moment.replace(tzinfo=UTC).astimezone(ZoneInfo(program_timezone()))
    return local.strftime("%Y-%m-%dT%H:%M:%S")


def _as_of() -> tuple[datetime | None, str | None]:
    """The page's `as_of` moment (a picked local time in the program time zone, or RFC 3339
    with an offset), or a message saying why it is not one."""
    text = (request.args.get("as_of") or "").strip()
    if not text:
        return None, None
    try:
        return replay.parse_moment(text, program_timezone()), None
    except replay.ReplayError as exc:
        return None, exc.errors[""]


@bp.route("/<member_id>/changes")
@access("read")
def changes(member_id: str):
    """What changed between two moments: every offer and reward whose decision differs, with
    the changes that made it differ, in order."""
    member = _member_or_404(member_id)
    tz = program_timezone()
    problem = None
    start = end = None
    try:
        start = replay.parse_moment(request.args.get("from") or "", tz)
        end = replay.parse_moment(request.args["to"], tz) if request.args.get("to") \
            else utcnow()
        items = replay.changes_between(member.id, start, end)
    except replay.ReplayError as exc:
        problem, items = exc.errors[""], []
    return render("members/changes.html", member=member, changed=items, problem=problem,
                  start=start, end=end, timezone=tz, from_value=picker_value(start),
                  to_value=picker_value(end) if request.args.get("to") else ""
                  ), 400 if problem else 200


@bp.route("/<member_id>/activities")
@access("read")
def activities(member_id: str):
    """All of a member's activities, newest first, a page at a time."""
    member = _member_or_404(member_id)
    page = activity_service.member_page(member.id, request.args.get("page", 1, type=int))
    return render("members/activities.html", member=member, page=page,
                  amount_text=amount_text, value_text=value_text)


def compare(member: Member, attributes: dict[str, Any]) -> list[dict[str, Any]]:
    """Every offer and reward whose decision changes under the what-if profile."""
    catalog = visibility.load_catalog(rows=True)
    now = utcnow()
    actual = visibility.explainer(member, catalog, now=now)
    trial = visibility.explainer(member, catalog, now=now, attributes=attributes)
    changes = []
    for kind, before, after in (("offer", actual.offers(), trial.offers()),
                                ("reward", actual.rewards(), trial.rewards())):
        for (item, was), (_, now_d) in zip(before, after, strict=True):
            if (was.visible_status, was.eligible, was.reason) != (
                    now_d.visible_status, now_d.eligible, now_d.reason):
                changes.append({"kind": kind, "item": item, "before": was, "after": now_d,
                                "misses": visibility.near_misses(now_d.explanation)})
    changes.sort(key=lambda c: (c["kind"] != "offer", c["item"].name))
    return changes


@bp.route("/<member_id>/what-if", methods=["GET", "POST"])
@access("read")
def what_if(member_id: str):
    """Try other profile values on a member and see which decisions would change (saves
    nothing)."""
    member = _member_or_404(member_id)
    form = what_if_form(member, request.form if request.method == "POST" else None)
    status = 200
    changes = None
    if request.method == "POST":
        if form.validate():
            changes = compare(member, form.attributes())
        else:
            status = 422
    if is_htmx():
        return render("members/show.html", "what_if", member=member, form=form,
                      what_if=changes), status
    catalog = visibility.load_catalog(rows=True)
    ctx = page_context(member, visibility.explainer(member, catalog), form=form,
                       what_if=changes)
    return render("members/show.html", None, **ctx), status


# --- permalinks ---------------------------------------------------------------------------------


def _explain(member, item, kind: str, decision):
    """The permalink page (or its block for htmx) for one decision."""
    return render("members/explain.html", "explanation", member=member, item=item, kind=kind,
                  decision=decision, misses=visibility.near_misses(decision.explanation),
                  node_values=node_values)


@bp.route("/<member_id>/offers/<int:offer_id>")
@access("read")
def offer(member_id: str, offer_id: int):
    """One offer for one member: decision, near misses and the full tree (a permalink)."""
    member = _member_or_404(member_id)
    past = _decision_then(member, "offer", offer_id)
    if past is not None:
        return past
    item = get_or_404(Offer, offer_id)
    return _explain(member, item, "offer", visibility.offer_decision(member, item))


@bp.route("/<member_id>/rewards/<int:reward_id>")
@access("read")
def reward(member_id: str, reward_id: int):
    """One reward for one member: decision, near misses and the full tree (a permalink)."""
    member = _member_or_404(member_id)
    past = _decision_then(member, "reward", reward_id)
    if past is not None:
        return past
    item = get_or_404(Reward, reward_id)
    return _explain(member, item, "reward", visibility.reward_decision(member, item))


def _decision_then(member: Member, kind: str, item_id: int):
    """With `as_of`, the permalink page of one decision as it was then (404 when the item
    did not exist then; the page says why a moment cannot be shown); else None."""
    moment, problem = _as_of()
    if moment is None and problem is None:
        return None
    try:
        if problem is not None:
            raise replay.ReplayError(problem)
        ex = replay.explainer_at(member.id, moment)
    except replay.ReplayError as exc:
        abort(400, description=f"Cannot show that moment: {exc.errors['']}")
    items = ex.catalog.offers if kind == "offer" else ex.catalog.rewards
    item = next((i for i in items if i.id == item_id), None)
    if item is None:
        abort(404, description=f"That {kind} did not exist at {moment.isoformat()}Z.")
    decision = ex.offer(item) if kind == "offer" else ex.reward(item)
    return render("members/explain.html", "explanation", member=member, item=item, kind=kind,
                  decision=decision, misses=visibility.near_misses(decision.explanation),
                  node_values=node_values, as_of=moment)
