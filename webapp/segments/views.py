"""Views of the segments blueprint: list, builder (create/edit), preview, segment page, delete."""

from __future__ import annotations

import json

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from webapp.access import access
from webapp.extensions import db
from webapp.htmx import is_htmx, render
from webapp.models import Segment
from webapp.segments import bp, export, pages
from webapp.segments.builder import Builder
from webapp.segments.forms import ArchiveForm, DeleteForm, SegmentForm
from webapp.services.segments import (
    SegmentError,
    SegmentInUse,
    SegmentStillUsed,
    archive_segment,
    delete_segment,
    restore_segment,
    save_segment,
)

PER_PAGE = 50
SORTS = {"name": Segment.name, "size": Segment.size, "updated": Segment.updated_at}
KIND_FILTERS = ("static", "dynamic")


@bp.route("/")
@access("read")
def index():
    """The segment list: search, kind, tag, owner and archive filters, sort and pages."""
    q = request.args.get("q", "").strip()[:200]
    kind = request.args.get("kind", "")
    sort = request.args.get("sort", "name")
    sort = sort if sort in SORTS else "name"
    direction = request.args.get("dir", "desc" if sort in ("size", "updated") else "asc")
    direction = direction if direction in ("asc", "desc") else "asc"
    filters = pages.list_filters(request.args, current_user.id)
    query = select(Segment).options(selectinload(Segment.tag_rows), selectinload(Segment.owner))
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        matches = [Segment.name.ilike(like, escape="\\"),
                   Segment.customer_segment_id.ilike(like, escape="\\")]
        if q.lstrip("#").isdigit() and len(q) < 10:
            matches.append(Segment.id == int(q.lstrip("#")))
        query = query.where(or_(*matches))
    if kind in KIND_FILTERS:
        query = query.where(Segment.kind == kind)
    query = query.where(*filters.conditions)
    column = SORTS[sort]
    query = query.order_by(column.desc() if direction == "desc" else column.asc(),
                           Segment.id.desc() if direction == "desc" else Segment.id)
    page = db.paginate(query, per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False)
    narrowed = q or kind or filters.narrowed
    total = db.session.scalar(select(func.count()).select_from(Segment)) if narrowed else None
    archived = None if filters.status else db.session.scalar(
        select(func.count()).where(Segment.archived_at.is_not(None)))
    return render("segments/index.html", "segment_list", page=page, q=q, kind=kind, sort=sort,
                  direction=direction, total=total, filters=filters, archived=archived,
                  link_args=filters.link_args(q=q, kind=kind))


@bp.route("/overlap")
@access("read")
def overlap():
    """Two or three segments' overlap: members in each region of their Venn diagram."""
    context = pages.overlap_context(request.args.getlist("segments"))
    status = 422 if context["problems"] else 200
    return render("segments/overlap.html", "overlap_result", **context), status


@bp.route("/new", methods=["GET", "POST"])
@access("write")
def new():
    """Create a segment with the criteria builder and live preview."""
    return _editor(None)


@bp.route("/<int:segment_id>/edit", methods=["GET", "POST"])
@access("write")
def edit(segment_id: int):
    """Edit a segment: builder, impact preview, refused if someone saved in between."""
    return _editor(db.session.get(Segment, segment_id) or abort(404))


def _editor(segment: Segment | None):
    """GET: the form; POST: a builder button (re-render) or save (303, or 422 with messages)."""
    form = SegmentForm(obj=segment) if request.method == "GET" else SegmentForm()
    if request.method == "GET":
        form.tags.data = ", ".join(segment.tags) if segment else ""
        form.owner.data = str(segment.owner_id or "") if segment else str(current_user.id)
        # A new segment starts without rows: "+ Add include criterion" adds the first.
        builder = (Builder.from_segment(segment.include, segment.exclude, pages.registry())
                   if segment else Builder())
        if segment is not None:
            form.version.data = str(segment.version)
        return render_template("segments/form.html",
                               **pages.editor_context(segment, form, builder, lazy=True))
    builder = Builder.from_form(request.form, pages.registry())
    if builder.action != "save":
        full = pages.refuse_add_at_limit(builder)
        touched = builder.apply()
        context = pages.editor_context(segment, form, builder, touched=touched)
        if full:
            context["general_errors"].append(full)
        return render_template("segments/form.html", **context), 422 if context["invalid"] else 200
    data, problems = pages.segment_data(form, builder)
    if not problems:
        try:
            saved = save_segment(data, segment=segment, actor=current_user.label,
                                 actor_id=current_user.id,
                                 expected_version=pages.version_of(form))
        except SegmentError as exc:
            problems = exc.errors
        else:
            flash(f"Saved {saved.name}: {saved.size:,} members.", "success")
            return redirect(url_for("segments.show", segment_id=saved.id), code=303)
    context = pages.editor_context(segment, form, builder, errors=problems)
    return render_template("segments/form.html", **context), 422


@bp.route("/builder/row", methods=["POST"])
@access("write")
def row():
    """One builder row: add, remove, pick a segment, or re-render and validate after a change."""
    form = SegmentForm()
    builder = Builder.from_form(request.form, pages.registry())
    segment = pages.segment_from_form()
    adding = builder.action.removeprefix("add_") if builder.action.startswith("add_") else None
    full = pages.refuse_add_at_limit(builder)
    removing = builder.find(builder.target) if builder.action == "remove_row" else None
    touched = builder.apply()
    if not is_htmx():
        context = pages.editor_context(segment, form, builder, touched=touched)
        if full:
            context["general_errors"].append(full)
        return render_template("segments/form.html", **context), 422 if context["invalid"] else 200
    limit = pages.criteria_limit()
    if full:
        # A page opened before the group filled up: nothing is added, the button goes.
        response = make_response(render_template(
            "segments/_add_row.html", group=adding, count=len(builder.rows(adding)),
            limit=limit, oob=True))
        response.headers["HX-Trigger"] = json.dumps({"showMessage": full})
        return response
    if builder.action == "remove_row":
        body = ""
        if removing is not None:
            # The group has room again: bring its add button back.
            body = render_template("segments/_add_row.html", group=removing.group,
                                   count=len(builder.rows(removing.group)), limit=limit,
                                   oob=True)
        response = make_response(body)
        response.headers["HX-Trigger"] = "criteria-changed"
        return response
    target = touched or builder.find(request.form.get("row", ""))
    if target is None:
        abort(400, "That criterion row is not in the form any more; reload the page.")
    pages.validate_row(target, segment)
    body = render_template("segments/_criterion_row.html", row=target, **pages.row_context())
    if adding:
        # The group may be full now: the add button is replaced by the limit note.
        body += render_template("segments/_add_row.html", group=adding,
                                count=len(builder.rows(adding)), limit=limit, oob=True)
    response = make_response(body, 422 if target.error else 200)
    if builder.action != "save":
        response.headers["HX-Trigger"] = "criteria-changed"
    return response


@bp.route("/builder/groups", methods=["POST"])
@access("write")
def groups():
    """Add, nest or remove a group, or add a criterion to one: the criteria builder again."""
    form = SegmentForm()
    builder = Builder.from_form(request.form, pages.registry())
    segment = pages.segment_from_form()
    box = builder.find_box(builder.target)
    side = box.group if box is not None else builder.target
    full = pages.refuse_add_at_limit(builder)
    builder.apply()
    context = pages.editor_context(segment, form, builder)
    if full and side in ("include", "exclude"):
        context["group_errors"][side] = full
    response = make_response(render("segments/form.html", "criteria_builder", **context))
    response.headers["HX-Trigger"] = "criteria-changed"
    return response


@bp.route("/builder/preview", methods=["POST"])
@access("write")
def preview():
    """The live preview: exact count, samples, impact of an edit and rule-check warnings."""
    form = SegmentForm()
    builder = Builder.from_form(request.form, pages.registry())
    segment = pages.segment_from_form()
    context = pages.editor_context(segment, form, builder)
    status = 422 if context["preview_errors"] else 200
    return render("segments/form.html", "preview_panel", **context), status


@bp.route("/<int:segment_id>")
@access("read")
def show(segment_id: int):
    """The segment page: definition, size over time, members, uses, events and history."""
    segment = db.session.get(Segment, segment_id) or abort(404)
    return render("segments/show.html", "segment_members",
                  **pages.show_context(segment, request.args))


@bp.route("/<int:segment_id>/members.csv")
@access("read")
def members_csv(segment_id: int):
    """Download the segment's members as CSV (id, external id, email, why), streamed."""
    segment = db.session.get(Segment, segment_id) or abort(404)
    return export.csv_response(segment)


@bp.route("/<int:segment_id>/delete", methods=["POST"])
@access("admin")
def delete(segment_id: int):
    """Delete a segment nothing uses (refused with the list of uses otherwise)."""
    segment = db.session.get(Segment, segment_id) or abort(404)
    if not DeleteForm().validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")
    name = segment.name
    try:
        delete_segment(segment, actor=current_user.label)
    except SegmentInUse as exc:
        context = pages.show_context(segment, request.args)
        context["delete_refused"] = exc
        return render_template("segments/show.html", **context), 409
    flash(f"Deleted segment {name}. Its membership events are kept.", "success")
    return redirect(url_for("segments.index"), code=303)


@bp.route("/<int:segment_id>/archive", methods=["POST"])
@access("write")
def archive(segment_id: int):
    """Archive a segment nothing uses (refused naming its uses); members and history stay."""
    segment = db.session.get(Segment, segment_id) or abort(404)
    if not ArchiveForm().validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")
    try:
        archive_segment(segment, actor=current_user.label)
    except SegmentStillUsed as exc:
        return _status_refused(segment, exc.uses, "archive")
    except SegmentError as exc:
        return _status_refused(segment, [], next(iter(exc.errors.values())))
    return _status_changed(segment, f"Archived {segment.name}. It is out of the pickers; its "
                                    "members and history are kept, and it can be restored.")


@bp.route("/<int:segment_id>/restore", methods=["POST"])
@access("write")
def restore(segment_id: int):
    """Bring an archived segment back to the list and the pickers."""
    segment = db.session.get(Segment, segment_id) or abort(404)
    if not ArchiveForm().validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")
    try:
        restore_segment(segment, actor=current_user.label)
    except SegmentError as exc:
        return _status_refused(segment, [], next(iter(exc.errors.values())))
    return _status_changed(segment, f"Restored {segment.name}: it can be used again.")


def _status_changed(segment: Segment, message: str):
    """After an archive or restore: back to the segment page (htmx: HX-Redirect, a full load,
    since the page answers htmx requests with its members block)."""
    flash(message, "success")
    target = url_for("segments.show", segment_id=segment.id)
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target, code=303)


def _status_refused(segment: Segment, uses: list[dict], problem: str):
    """A refused archive or restore: the page (409) or, for htmx, its status block (422)."""
    context = pages.show_context(segment, request.args)
    context["status_refused"] = {"uses": uses, "problem": problem}
    if is_htmx():
        return render("segments/show.html", "segment_status", **context), 422
    return render_template("segments/show.html", **context), 409
