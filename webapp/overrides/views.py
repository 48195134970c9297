"""Views of the overrides blueprint: review page, per-segment and per-member blocks, set/reset."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from sqlalchemy import Select, select
from sqlalchemy.orm import joinedload

from webapp.access import access
from webapp.extensions import db
from webapp.htmx import is_htmx, render
from webapp.models import Member, Override, OverrideHistory, Segment, SegmentMembership
from webapp.overrides import bp
from webapp.overrides.forms import BulkResetForm, OverrideForm, ResetForm
from webapp.services.lookup import find_member, find_segment
from webapp.services.overrides import (
    Effect,
    OverrideError,
    bulk_reset,
    effect_sentence,
    find_override,
    is_expired,
    preview,
    reset_override,
    rules_say_in,
    set_override,
)
from webapp.services.upload_parser import spreadsheet_safe
from webapp.timeutil import utcnow

PER_PAGE = 50
BLOCK_PER_PAGE = 20
SORTS = {
    "created": Override.created_at,
    "changed": Override.status_change_timestamp,
    "expires": Override.expires_at,
    "status": Override.status,
    "author": Override.actor_label,
    "segment": Segment.name,
    "member": Member.external_id,
}
AGES = {
    "": ("Any age", None),
    "lt1": ("Less than a day old", ("<", 1)),
    "lt7": ("Less than a week old", ("<", 7)),
    "lt30": ("Less than 30 days old", ("<", 30)),
    "gt30": ("Older than 30 days", (">", 30)),
    "gt90": ("Older than 90 days", (">", 90)),
    "gt365": ("Older than a year", (">", 365)),
}
STATES = {"": "Active and expired", "active": "Active", "expired": "Expired"}
PAGES = {"segment": ("overrides/segment.html", "segment_overrides", "#segment-overrides"),
         "member": ("overrides/member.html", "member_overrides", "#member-overrides"),
         "index": ("overrides/index.html", "override_list", "#override-list")}
CSV_COLUMNS = ("override_id", "segment_id", "segment_name", "customer_segment_id", "member_id",
               "external_id", "email", "status", "state", "description", "reference_id",
               "metadata", "status_change_timestamp", "expires_at", "actor", "created_at")


# --- Review page ---------------------------------------------------------------------------

@bp.route("/")
@access("read")
def index():
    """Every override, filtered, sorted and paginated; admins reset in bulk."""
    filters = _filters()
    page = db.paginate(_filtered_query(filters), per_page=PER_PAGE, error_out=False)
    return render("overrides/index.html", "override_list", **_index_context(filters, page))


@bp.route("/export.csv")
@access("read")
def export():
    """The filtered list of overrides as CSV."""
    filters = _filters()
    query = _filtered_query(filters).execution_options(yield_per=500)
    now = utcnow()

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for override in db.session.scalars(query):
            writer.writerow([_csv_cell(v) for v in _csv_row(override, now)])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()

    stamp = now.strftime("%Y%m%d-%H%M")
    return Response(stream_with_context(rows()), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="overrides-{stamp}.csv"'})


@bp.route("/bulk-reset", methods=["POST"])
@access("admin")
def bulk():
    """Reset the selected overrides (the form asks for one confirmation)."""
    form = BulkResetForm()
    target = _safe_next(form.next.data) or url_for("overrides.index")
    if not form.validate_on_submit():
        flash("The reset could not be done: the form was incomplete or expired.", "error")
        return redirect(target, code=303)
    ids = [int(v) for v in request.form.getlist("ids") if v.isdigit() and len(v) < 10]
    if not ids:
        flash("Select at least one override to reset.", "warning")
        return redirect(target, code=303)
    count = bulk_reset(ids, actor=current_user.label, actor_id=current_user.id)
    flash(f"Reset {count} override{'s' if count != 1 else ''}; the rules decide again for "
          f"{'those members' if count != 1 else 'that member'}.", "success")
    return redirect(target, code=303)


# --- Per segment and per member ------------------------------------------------------------

@bp.route("/segment/<int:segment_id>")
@access("read")
def for_segment(segment_id: int):
    """The overrides and override history of one segment, with the form to set one."""
    segment = db.session.get(Segment, segment_id) or abort(404)
    form = _new_form("segment", segment=segment)
    return render("overrides/segment.html", "segment_overrides",
                  **_segment_context(segment, form))


@bp.route("/member/<member_id>")
@access("read")
def for_member(member_id: str):
    """All overrides and override history of one member, with the form to set one."""
    member = _find_member(member_id) or abort(404)
    form = _new_form("member", member=member)
    return render("overrides/member.html", "member_overrides", **_member_context(member, form))


# --- Writes --------------------------------------------------------------------------------

@bp.route("/set", methods=["POST"])
@access("admin")
def create():
    """Set an add or block override; invalid input re-renders the form with 422."""
    form = _posted_form()
    valid = form.validate_on_submit()
    segment, member = _resolve(form)
    if valid and segment is not None and member is not None and segment.kind == "dynamic":
        try:
            outcome = set_override(
                segment, member, form.status.data, description=form.description.data,
                reference_id=form.reference_id.data, metadata=form.metadata_dict(),
                status_change_timestamp=form.when("status_change_timestamp"),
                expires_at=form.when("expires_at"), actor=current_user.label,
                actor_id=current_user.id)
        except OverrideError as exc:
            form.form_errors.append(str(exc))
        else:
            message = f"{outcome.message} Effect: {outcome.effect}."
            return _done(form.context.data, message, "success" if outcome.changed else "info",
                         segment=segment, member=member, next_url=form.next.data)
    return _form_error(form, segment, member)


@bp.route("/preview", methods=["POST"])
@access("admin")
def check():
    """Show what the override would do before it is saved ('the rules say out; ...')."""
    form = _posted_form()
    segment, member = _resolve(form)
    effect = _effect_for(form, segment, member)
    status = 200 if effect is not None else 422
    if is_htmx():
        return render_template("overrides/_effect.html", effect=effect, form=form,
                               segment=segment, member=member,
                               **_existing(segment, member)), status
    form.ensure_blank_row()
    context = _page_context(form, segment, member, effect)
    template, _, _ = PAGES[form.context.data]
    return render(template, None, **context), status


@bp.route("/<int:override_id>/reset", methods=["POST"])
@access("admin")
def reset(override_id: int):
    """Remove one override; the rules decide again."""
    override = db.session.get(Override, override_id)
    form = ResetForm()
    context = form.context.data if form.context.data in PAGES else "index"
    if override is None:
        return _done(context, "That override was already reset.", "info",
                     next_url=form.next.data, **_context_objects(context))
    segment, member = override.segment, override.member
    if not form.validate_on_submit():
        return _done(context, "The reset could not be done: the form was incomplete or "
                     "expired. Reload and try again.", "error", segment=segment, member=member,
                     next_url=form.next.data)
    try:
        outcome = reset_override(segment, member, actor=current_user.label,
                                 actor_id=current_user.id,
                                 description=form.description.data or "")
    except OverrideError as exc:
        return _done(context, str(exc), "error", segment=segment, member=member,
                     next_url=form.next.data)
    return _done(context, f"{outcome.message} Now {outcome.effect}.", "success",
                 segment=segment, member=member, next_url=form.next.data)


# --- Helpers -------------------------------------------------------------------------------

def _filters() -> dict[str, Any]:
    """The review page's filters and sort from the query string (unknown values ignored)."""
    args = request.args
    sort = args.get("sort", "-created")
    if sort.lstrip("-") not in SORTS:
        sort = "-created"
    segment_id = args.get("segment", "")
    return {
        "segment": int(segment_id) if segment_id.isdigit() and len(segment_id) < 10 else None,
        "status": args.get("status") if args.get("status") in ("add", "block") else "",
        "author": args.get("author", "").replace("\x00", "").strip()[:200],
        "age": args.get("age") if args.get("age") in AGES else "",
        "state": args.get("state") if args.get("state") in STATES else "",
        "member": args.get("member", "").replace("\x00", "").strip()[:320],
        "sort": sort,
    }


def _filtered_query(filters: dict[str, Any]) -> Select:
    """Overrides matching the filters, in the chosen order."""
    now = utcnow()
    query = (select(Override).join(Segment, Override.segment_id == Segment.id)
             .join(Member, Override.member_id == Member.id)
             .options(joinedload(Override.segment), joinedload(Override.member)))
    if filters["segment"] is not None:
        query = query.where(Override.segment_id == filters["segment"])
    if filters["status"]:
        query = query.where(Override.status == filters["status"])
    if filters["author"]:
        query = query.where(Override.actor_label == filters["author"])
    if filters["member"]:
        member = _find_member(filters["member"])
        query = query.where(Override.member_id == (member.id if member else ""))
    age = AGES[filters["age"]][1]
    if age is not None:
        cutoff = now - timedelta(days=age[1])
        query = query.where(Override.status_change_timestamp > cutoff if age[0] == "<"
                            else Override.status_change_timestamp <= cutoff)
    if filters["state"] == "active":
        query = query.where((Override.expires_at.is_(None)) | (Override.expires_at > now))
    elif filters["state"] == "expired":
        query = query.where(Override.expires_at.is_not(None), Override.expires_at <= now)
    column = SORTS[filters["sort"].lstrip("-")]
    order = column.desc() if filters["sort"].startswith("-") else column.asc()
    if filters["sort"].lstrip("-") == "expires":
        order = order.nulls_last()
    return query.order_by(order, Override.id.desc())


def _index_context(filters: dict[str, Any], page, form: OverrideForm | None = None,
                   effect: Effect | None = None) -> dict[str, Any]:
    """Everything the review page shows."""
    segments = db.session.execute(
        select(Segment.id, Segment.name).where(
            Segment.id.in_(select(Override.segment_id).distinct())).order_by(Segment.name)).all()
    authors = db.session.scalars(
        select(Override.actor_label).distinct().order_by(Override.actor_label)).all()
    query_args = {k: v for k, v in filters.items() if v not in (None, "")}
    return {
        "page": page, "filters": filters, "segments": segments, "authors": authors,
        "ages": AGES, "states": STATES, "sort_url": _sort_url, "query_args": query_args,
        "rows": _rows(page.items), "bulk_form": BulkResetForm(formdata=None),
        "form": form if form is not None else _new_form("index"), "effect": effect,
        "total": page.total, "export_url": url_for("overrides.export", **query_args),
        "context": "index",
        "next_url": url_for("overrides.index", **query_args, page=page.page)
        if page.page > 1 else url_for("overrides.index", **query_args),
        **_links(),
    }


def _sort_url(key: str, current: str) -> str:
    """The URL that sorts by `key` (toggling direction when already sorted by it)."""
    args = {k: v for k, v in request.args.items() if k not in ("sort", "page")}
    sort = f"-{key}" if current == key else key
    return url_for("overrides.index", sort=sort, **args)


def _rows(overrides: list[Override]) -> list[dict[str, Any]]:
    """Overrides with what the rules say, whether the member is in now and the effect."""
    now = utcnow()
    pairs = {(o.segment_id, o.member_id) for o in overrides}
    in_now: set[tuple[int, str]] = set()
    if pairs:
        member_ids = {m for _, m in pairs}
        in_now = {(s, m) for s, m in db.session.execute(
            select(SegmentMembership.segment_id, SegmentMembership.member_id).where(
                SegmentMembership.member_id.in_(member_ids)))}
    rows = []
    for override in overrides:
        expired = is_expired(override, now)
        rules = _rules_in(override, in_now, now)
        rows.append({
            "override": override, "expired": expired, "rules_in": rules,
            "in_now": (override.segment_id, override.member_id) in in_now,
            "effect": effect_sentence(rules, None if expired else override.status,
                                      note=False),
        })
    return rows


def _rules_in(override: Override, in_now: set[tuple[int, str]], now) -> bool | None:
    """What the rules alone say for this override's member (None if they cannot be read)."""
    try:
        return rules_say_in(override.segment, override.member, now,
                            memberships={s for s, m in in_now if m == override.member_id})
    except OverrideError:
        return None


def _segment_context(segment: Segment, form: OverrideForm,
                     effect: Effect | None = None) -> dict[str, Any]:
    """Everything the per-segment block shows."""
    overrides = db.paginate(
        select(Override).where(Override.segment_id == segment.id)
        .options(joinedload(Override.member), joinedload(Override.segment))
        .order_by(Override.created_at.desc(), Override.id.desc()),
        per_page=BLOCK_PER_PAGE, error_out=False)
    history = db.paginate(
        select(OverrideHistory).where(OverrideHistory.segment_id == segment.id)
        .order_by(OverrideHistory.id.desc()),
        page=request.args.get("hpage", 1, type=int), per_page=BLOCK_PER_PAGE,
        error_out=False)
    members = {m.id: m for m in db.session.scalars(select(Member).where(
        Member.id.in_({h.member_id for h in history.items})))}
    def pages_url(page: int | None = None, hpage: int | None = None) -> str:
        return url_for("overrides.for_segment", segment_id=segment.id,
                       page=page or overrides.page, hpage=hpage or history.page)

    return {"segment": segment, "page": overrides, "rows": _rows(overrides.items),
            "history": history, "history_members": members, "form": form, "effect": effect,
            "static_note": _static_note(segment), "context": "segment",
            "block_id": "segment-overrides", "list_url": lambda n: pages_url(page=n),
            "pager_url": lambda n: pages_url(hpage=n), "next_url": form.next.data or "",
            **_links()}


def _member_context(member: Member, form: OverrideForm,
                    effect: Effect | None = None) -> dict[str, Any]:
    """Everything the per-member block shows."""
    overrides = list(db.session.scalars(
        select(Override).where(Override.member_id == member.id)
        .options(joinedload(Override.segment), joinedload(Override.member))
        .order_by(Override.created_at.desc(), Override.id.desc())))
    history = db.paginate(
        select(OverrideHistory).where(OverrideHistory.member_id == member.id)
        .order_by(OverrideHistory.id.desc()),
        page=request.args.get("hpage", 1, type=int), per_page=BLOCK_PER_PAGE,
        error_out=False)
    return {"member": member, "rows": _rows(overrides), "history": history, "form": form,
            "effect": effect, "context": "member", "block_id": "member-overrides",
            "pager_url": lambda n: url_for("overrides.for_member", member_id=member.id,
                                           hpage=n),
            "next_url": form.next.data or "", **_links()}


def _page_context(form: OverrideForm, segment: Segment | None, member: Member | None,
                  effect: Effect | None) -> dict[str, Any]:
    """The context of the page a posted form belongs to."""
    if form.context.data == "segment" and segment is not None:
        context = _segment_context(segment, form, effect)
    elif form.context.data == "member" and member is not None:
        context = _member_context(member, form, effect)
    else:
        form.context.data = "index"
        filters = _filters()
        page = db.paginate(_filtered_query(filters), page=1, per_page=PER_PAGE,
                           error_out=False)
        context = _index_context(filters, page, form, effect)
    context.setdefault("segment", segment)
    context.setdefault("member", member)
    context.update(_existing(segment, member) if effect is not None
                   else {"existing": None, "existing_active": False})
    return context


def _dynamic_segment_choices(member: Member | None = None) -> list[tuple[int, str]]:
    """The dynamic segments to choose from; for a known member, whether they are in now."""
    in_now: set[int] = set()
    if member is not None:
        in_now = set(db.session.scalars(select(SegmentMembership.segment_id).where(
            SegmentMembership.member_id == member.id)))
    return [(-1, "Choose a segment…")] + [
        (sid, f"{name} — {member.external_id} is {'in' if sid in in_now else 'out'} now"
         if member is not None else name)
        for sid, name in db.session.execute(
            select(Segment.id, Segment.name).where(Segment.kind == "dynamic")
            .order_by(Segment.name).limit(2000))]


def _new_form(context: str, *, segment: Segment | None = None,
              member: Member | None = None) -> OverrideForm:
    """An empty override form for a page."""
    form = OverrideForm(formdata=None)
    form.context.data = context
    form.segment_id.choices = _dynamic_segment_choices(member if context == "member" else None)
    if segment is not None:
        form.segment_id.data = segment.id
    if member is not None:
        form.member.data = member.external_id
    if context != "index":
        form.next.data = _safe_next(request.args.get("next")) or ""
    return form


def _posted_form() -> OverrideForm:
    """The override form as posted (context defaults to the review page)."""
    form = OverrideForm()
    if form.context.data not in PAGES:
        form.context.data = "index"
    member = (_find_member(request.form.get("member", "").strip())
              if form.context.data == "member" else None)
    form.segment_id.choices = _dynamic_segment_choices(member)
    posted = request.form.get("segment_id", "")
    if posted.isdigit() and len(posted) < 10:
        segment = db.session.get(Segment, int(posted))
        if segment is not None and segment.kind != "dynamic":
            # A static segment is a valid thing to name: the service explains the refusal.
            form.segment_id.choices.append((segment.id, segment.name))
    return form


def _resolve(form: OverrideForm) -> tuple[Segment | None, Member | None]:
    """The form's segment and member, with a field error for whichever is not found."""
    raw_segment = request.form.get("segment_id", "")
    segment = (find_segment(raw_segment)
               if raw_segment.strip() not in ("", "-1") and "\x00" not in raw_segment else None)
    if segment is None:
        form.segment_id.errors = ["Choose a rule-managed (dynamic) segment."]
    elif segment.kind != "dynamic":
        form.segment_id.errors = [_static_note(segment)]
    member_text = (form.member.data or "").strip()
    member = _find_member(member_text) if member_text else None
    if member is None and member_text:
        form.member.errors = [f"No member has the member id, external id or email "
                              f"{member_text!r}."]
    return segment, member


def _form_error(form: OverrideForm, segment: Segment | None, member: Member | None):
    """Re-render the form with its errors: the form block for htmx, the page otherwise."""
    form.ensure_blank_row()
    context = _page_context(form, segment, member, _effect_for(form, segment, member))
    template, _, _ = PAGES[form.context.data]
    return render(template, "override_form", **context), 422


def _effect_for(form: OverrideForm, segment: Segment | None,
                member: Member | None) -> Effect | None:
    """The preview of the posted override, when segment, member and status are usable."""
    if (segment is None or segment.kind != "dynamic" or member is None
            or form.status.data not in ("add", "block")):
        return None
    try:
        return preview(segment, member, form.status.data)
    except OverrideError as exc:
        form.segment_id.errors = [*form.segment_id.errors, str(exc)]
        return None


def _existing(segment: Segment | None, member: Member | None) -> dict[str, Any]:
    """The pair's current override, if any, and whether it is still in force."""
    existing = None
    if segment is not None and member is not None:
        existing = find_override(segment, member)
    return {"existing": existing,
            "existing_active": existing is not None and not is_expired(existing)}


def _done(context: str, message: str, category: str, *, segment: Segment | None = None,
          member: Member | None = None, next_url: str | None = None):
    """After a write: the refreshed block plus a toast for htmx, else flash and 303."""
    if not is_htmx():
        flash(message, category)
        target = _safe_next(next_url) or _context_url(context, segment, member)
        return redirect(target, code=303)
    template, block, target_id = PAGES[context]
    if context == "segment" and segment is not None:
        ctx = _segment_context(segment, _new_form("segment", segment=segment))
    elif context == "member" and member is not None:
        ctx = _member_context(member, _new_form("member", member=member))
    else:
        response = Response(status=204)
        flash(message, category)
        response.headers["HX-Redirect"] = _safe_next(next_url) or url_for("overrides.index")
        return response
    response = current_app.make_response(render(template, block, **ctx))
    response.headers["HX-Retarget"] = target_id
    response.headers["HX-Reswap"] = "outerHTML"
    # membershipChanged lets the page around the block refresh its own counts and lists.
    response.headers["HX-Trigger"] = json.dumps({
        "showMessage": message,
        "membershipChanged": {"segment_id": segment.id if segment else None,
                              "member_id": member.id if member else None}})
    return response


def _context_objects(context: str) -> dict[str, Any]:
    """The segment or member a reset form came from, when the override is already gone."""
    objects: dict[str, Any] = {}
    raw = request.form.get("segment_id", "")
    if context == "segment" and raw.isdigit() and len(raw) < 10:
        objects["segment"] = db.session.get(Segment, int(raw))
    if context == "member":
        objects["member"] = _find_member(request.form.get("member_id", ""))
    return objects


def _context_url(context: str, segment: Segment | None, member: Member | None) -> str:
    if context == "segment" and segment is not None:
        return _links()["segment_url"](segment)
    if context == "member" and member is not None:
        return _links()["member_url"](member)
    return url_for("overrides.index")


def _links() -> dict[str, Any]:
    """Link builders to the segment and member pages, whichever area provides them."""

    def segment_url(segment: Segment) -> str:
        for endpoint in ("segments.show", "segments.detail", "segments.view"):
            if endpoint in current_app.view_functions:
                return url_for(endpoint, segment_id=segment.id)
        return url_for("overrides.for_segment", segment_id=segment.id)

    def member_url(member: Member) -> str:
        for endpoint in ("members.show", "members.detail", "members.view"):
            if endpoint in current_app.view_functions:
                return url_for(endpoint, member_id=member.id)
        return url_for("overrides.for_member", member_id=member.id)

    return {"segment_url": segment_url, "member_url": member_url}


def _find_member(identifier: str | None) -> Member | None:
    """A member by member id, external id or email; text with NUL characters finds nobody."""
    if not identifier or "\x00" in identifier:
        return None
    return find_member(identifier)


def _safe_next(value: str | None) -> str | None:
    """A same-site path to return to, or None."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return None
    return value


def _static_note(segment: Segment) -> str:
    return (f"{segment.name} is a static segment: overrides apply to rule-managed (dynamic) "
            f"segments, so edit its member list instead.")


def _csv_row(override: Override, now) -> list[Any]:
    segment, member = override.segment, override.member
    return [override.id, segment.id, segment.name, segment.customer_segment_id or "",
            member.id, member.external_id, member.email or "", override.status,
            "expired" if is_expired(override, now) else "active", override.description,
            override.reference_id or "", json.dumps(override.metadata_ or {}, sort_keys=True),
            _iso(override.status_change_timestamp), _iso(override.expires_at),
            override.actor_label, _iso(override.created_at)]


def _iso(value) -> str:
    return value.isoformat(timespec="seconds") + "Z" if value else ""


def _csv_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas in text cells."""
    return spreadsheet_safe(value)
