"""What the segment pages show: editor state with preview, and the segment page's sections.

Views stay thin by asking this module for their template context.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import abort, current_app, g, request
from sqlalchemy import func, or_, select

from webapp.dashboard.charts import size_lines
from webapp.extensions import db
from webapp.models import (
    AuditEntry,
    Member,
    MembershipEvent,
    Segment,
    SegmentJob,
    SegmentMembership,
)
from webapp.segments.builder import (
    FIELD_LABELS,
    JSON_TYPES,
    MEASURE_CHOICES,
    MODE_CHOICES,
    WINDOW_CHOICES,
    Builder,
    Row,
    RowProblem,
    field_choices,
    short_message,
    split_list,
)
from webapp.segments.forms import ArchiveForm, DeleteForm, SegmentForm
from webapp.services import segment_jobs as jobs
from webapp.services import segments as service
from webapp.services import stats
from webapp.services.activities import types_in_use
from webapp.services.attributes import declared
from webapp.services.stats import size_history
from webapp.targeting import (
    SegmentDefinitionError,
    describe_definition,
    item_label,
    parse_item,
    raw_criteria,
)
from webapp.targeting import schema as ts
from webapp.targeting.operators import REGISTRY
from webapp.timeutil import utcnow

FORM_FIELDS = ("name", "description", "customer_segment_id", "url", "kind", "tags", "owner")
MEMBERS_PER_PAGE = 25
EVENTS_SHOWN = 15


# --- list filters ---------------------------------------------------------------------------

STATUSES = {"": "Active", "archived": "Archived", "all": "Active and archived"}


@dataclass
class ListFilters:
    """The segment list's tag, owner and archive filters, read from the address."""

    tag: str
    owner: str
    status: str
    conditions: list[Any]
    tags: list[tuple[str, int]]
    owners: list[tuple[str, str]]

    @property
    def narrowed(self) -> bool:
        """Whether a filter other than the default (active segments) is on."""
        return bool(self.tag or self.owner or self.status)

    def link_args(self, **more: str) -> dict[str, str]:
        """The list's current filters as address arguments (for sort links)."""
        args = {"tag": self.tag, "owner": self.owner, "status": self.status, **more}
        return {k: v for k, v in args.items() if v}


def list_filters(args: Mapping[str, str], me: int) -> ListFilters:
    """Tag (exact, any case), owner ("me", "none" or a user id) and status ("" active,
    "archived", "all"); unknown values are ignored."""
    from webapp.models import SegmentTag, User

    tag = " ".join(str(args.get("tag", "")).replace("\x00", "").split()).lower()[:40]
    owner = str(args.get("owner", ""))[:12]
    status = str(args.get("status", ""))
    status = status if status in STATUSES else ""
    conditions: list[Any] = []
    if status == "":
        conditions.append(Segment.archived_at.is_(None))
    elif status == "archived":
        conditions.append(Segment.archived_at.is_not(None))
    if tag:
        conditions.append(Segment.id.in_(select(SegmentTag.segment_id).where(
            SegmentTag.tag == tag)))
    if owner == "me":
        conditions.append(Segment.owner_id == me)
    elif owner == "none":
        conditions.append(Segment.owner_id.is_(None))
    elif owner.isdigit() and len(owner) < 10:
        conditions.append(Segment.owner_id == int(owner))
    else:
        owner = ""
    owners = [(str(uid), label) for uid, label in db.session.execute(
        select(User.id, func.coalesce(func.nullif(User.name, ""), User.email))
        .where(User.id.in_(select(Segment.owner_id).where(Segment.owner_id.is_not(None))))
        .order_by(User.name, User.email))]
    return ListFilters(tag, owner, status, conditions, service.all_tags(), owners)


# --- editor ---------------------------------------------------------------------------------

def segment_from_form() -> Segment | None:
    """The segment being edited, from the builder form's hidden segment_id (None when new)."""
    raw = (request.form.get("segment_id") or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 9:
        abort(400, "segment_id must be a segment number")
    return db.session.get(Segment, int(raw)) or abort(404)


def version_of(form: SegmentForm) -> int | None:
    """The version the editor was opened on, if the form carries one."""
    raw = (form.version.data or "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


def find_segments(q: str, *, limit: int = 8, exclude_id: int | None = None) -> list[dict]:
    """Segments not archived whose name or customer segment id contains q (any case), or
    whose id is q."""
    q = (q or "").strip()
    if not q:
        return []
    like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    matches = [Segment.name.ilike(like, escape="\\"),
               Segment.customer_segment_id.ilike(like, escape="\\")]
    if q.lstrip("#").isdigit() and len(q) < 10:
        matches.append(Segment.id == int(q.lstrip("#")))
    # Archived segments cannot be newly used, so the builder does not offer them.
    query = select(Segment.id, Segment.name, Segment.kind, Segment.size).where(
        or_(*matches), Segment.archived_at.is_(None))
    if exclude_id is not None:
        query = query.where(Segment.id != exclude_id)
    rows = db.session.execute(query.order_by(Segment.name).limit(limit))
    return [{"id": r.id, "name": r.name, "kind": r.kind, "size": r.size} for r in rows]


def decorate_rows(rows: list[Row], segment: Segment | None) -> None:
    """Segment names for segment-criterion tags, and picker results for rows being searched."""
    ids = {int(v.lstrip("#")) for r in rows if r.kind == ts.SEGMENT
           for v in split_list(r.value) if v.lstrip("#").isdigit() and len(v) < 10}
    names = service.names_of(ids)
    for r in rows:
        if r.kind != ts.SEGMENT:
            continue
        r.names = names
        if r.segment_query:
            r.picks = find_segments(r.segment_query,
                                    exclude_id=segment.id if segment is not None else None)


def registry() -> dict[str, Any]:
    """The declared custom fields (Administration → Member fields), read once per request."""
    if "declared_fields" not in g:
        g.declared_fields = declared()
    return g.declared_fields


def row_context() -> dict[str, Any]:
    """The tables the criterion row and group templates need."""
    return {"field_choices": field_choices(registry()), "json_types": JSON_TYPES,
            "mode_choices": MODE_CHOICES, "max_depth": ts.MAX_GROUP_DEPTH,
            "measure_choices": MEASURE_CHOICES, "window_choices": WINDOW_CHOICES,
            "activity_types": activity_types(),
            "property_operators": [(op, REGISTRY[op].builder_words(ts.ANY))
                                   for op in ts.OPERATORS_BY_TYPE[ts.ANY]]}


def activity_types() -> list[str]:
    """The activity types recorded so far (the builder suggests them), read once per request."""
    if "activity_types" not in g:
        g.activity_types = types_in_use()
    return g.activity_types


def criteria_limit() -> int:
    """How many include (and how many exclude) criteria a segment may have."""
    return int(current_app.config["LIMIT_CRITERIA"])


def limit_words(group: str, limit: int) -> str:
    """The criteria limit of a group in words."""
    return (f"The limit is {limit:,} {group} {'criterion' if limit == 1 else 'criteria'} "
            "per segment")


def refuse_add_at_limit(builder: Builder) -> str | None:
    """Stop an add-row (or add-group) button when its group is full; returns the message, or
    None. The limit counts the criteria inside groups too."""
    if builder.action in ("add_include", "add_exclude"):
        group = builder.action.removeprefix("add_")
    elif builder.action in ("add_to", "add_group"):
        box = builder.find_box(builder.target)
        group = box.group if box is not None else builder.target
        if group not in ("include", "exclude"):
            return None
    else:
        return None
    limit = criteria_limit()
    if len(builder.rows(group)) < limit:
        return None
    builder.action, builder.target = "none", ""
    return f"{limit_words(group, limit)}: remove one to add another."


def validate_row(row: Row, segment: Segment | None) -> None:
    """Validate one row as the core would (unfinished rows are not errors yet)."""
    decorate_rows([row], segment)
    try:
        criterion = row.criterion()
    except RowProblem as exc:
        row.error = None if exc.incomplete else str(exc)
        row.unfinished = str(exc) if exc.incomplete else None
        return
    row.unfinished = None
    errors: dict[str, str] = {}
    service.parse_definition_input({"kind": "dynamic", row.group: [criterion]}, errors,
                                   segment_id=segment.id if segment is not None else None)
    row.error = short_message(next(iter(errors.values()))) if errors else None


def segment_data(form: SegmentForm, builder: Builder) -> tuple[dict, dict[str, str]]:
    """The data to save from the form and the builder, and the row problems found first."""
    kind = form.kind.data
    criteria, row_errors, _ = builder.criteria(skip_incomplete=False)
    if kind == "static":
        criteria, row_errors = {"include": [], "exclude": []}, {}
    data = {"name": form.name.data, "description": form.description.data,
            "customer_segment_id": form.customer_segment_id.data, "url": form.url.data,
            "kind": kind, "tags": form.tag_list(), "owner": form.owner.data or None,
            **criteria}
    problems = {f"row:{row_id}": message for row_id, message in row_errors.items()}
    if problems:
        # Show the other fields' problems at the same time.
        try:
            service.validate({**data, "include": [], "exclude": []})
        except service.SegmentError as exc:
            problems.update({k: v for k, v in exc.errors.items() if k in FORM_FIELDS})
    return data, problems


def _apply_errors(errors: Mapping[str, str], form: SegmentForm, builder: Builder,
                  paths: Mapping[str, Row], context: dict[str, Any]) -> None:
    for key, message in errors.items():
        if key.startswith("row:"):
            node = builder.find(key[4:]) or builder.find_box(key[4:])
            if node is not None:
                node.error = message
        elif key in paths:
            paths[key].error = short_message(message)
        elif key in FORM_FIELDS:
            getattr(form, key).errors = [message]
        elif key in ("include", "exclude"):
            context["group_errors"][key] = message
        elif key == "version":
            context["conflict"] = message
        else:
            context["general_errors"].append(message)


def editor_context(segment: Segment | None, form: SegmentForm, builder: Builder, *,
                   touched: Row | None = None, errors: Mapping[str, str] | None = None,
                   lazy: bool = False) -> dict[str, Any]:
    """Everything the builder page shows, with the preview computed unless `lazy`."""
    context: dict[str, Any] = {
        "segment": segment, "form": form, "builder": builder, "touched": touched,
        "group_errors": {}, "general_errors": [], "conflict": None, "preview": None,
        "preview_errors": [], "warnings": [], "incomplete": 0, "unfinished": [], "lazy": lazy,
        "delete_form": DeleteForm(), "field_labels": FIELD_LABELS, **row_context(),
        "criteria_limit": criteria_limit(),
        # Once anything is in the segment its kind cannot change: shown as text, not a choice.
        "kind_locked": segment is not None and service.has_content(segment),
    }
    running = jobs.active_job(segment.id) if segment is not None else None
    context["busy"] = jobs.busy_message(running) if running is not None else None
    if segment is not None and not form.version.data:
        form.version.data = str(segment.version)
    form.fill_organisation(segment, service.owners())
    context["known_tags"] = [tag for tag, _ in service.all_tags()]
    if errors:
        _, _, paths = builder.criteria(skip_incomplete=False)
        _apply_errors(errors, form, builder, paths, context)
    if context["conflict"] and segment is not None:
        db.session.refresh(segment)
        context["current"] = {
            "version": segment.version, "by": segment.updated_by_label,
            "at": segment.updated_at, "describe": describe(segment)}
        # Saving again after seeing the current version is a deliberate overwrite.
        form.version.data = str(segment.version)
    decorate_rows(builder.all_rows(), segment)
    kind = form.kind.data or (segment.kind if segment else "dynamic")
    context["kind"] = kind
    if not lazy and kind == "dynamic":
        _fill_preview(context, builder, segment)
    context["invalid"] = any(r.error for r in [*builder.all_rows(), *builder.boxes])
    return context


def _fill_preview(context: dict[str, Any], builder: Builder, segment: Segment | None) -> None:
    """Compute the preview for the builder's finished rows; problems go next to their rows."""
    criteria, row_errors, paths = builder.criteria(skip_incomplete=True)
    for row in builder.all_rows():
        if row.id in row_errors:
            row.error = row_errors[row.id]
    # Unfinished rows (a new blank one too) are marked where they are, and the preview says
    # it leaves them out instead of counting as if they were not there.
    unfinished = [r for r in builder.mark_unfinished() if r.id not in row_errors]
    context["incomplete"] = len(unfinished)
    context["unfinished"] = [f"{r.group.capitalize()} criterion {builder.position(r)}: "
                             f"{r.unfinished}"
                             for r in unfinished]
    context["unfinished"] += [f"An {b.group} group ({b.words}): {b.unfinished}"
                              for b in builder.boxes if b.unfinished]
    for box in builder.boxes:
        if box.id in row_errors:
            box.error = row_errors[box.id]
    if row_errors:
        context["preview_errors"] = list(row_errors.values())
        return
    definition = {"kind": "dynamic", **criteria}
    try:
        result = service.preview(definition, segment=segment if segment is not None
                                 and segment.kind == "dynamic" else None)
    except service.SegmentError as exc:
        for key, message in exc.errors.items():
            if key in paths:
                paths[key].error = short_message(message)
        context["preview_errors"] = [short_message(m) for m in exc.errors.values()]
        return
    context["preview"] = result
    context["warnings"] = service.warnings(definition, result["count"],
                                           result["total_members"])


# --- segment page ---------------------------------------------------------------------------

@dataclass
class Page:
    """A page of rows with what the pagination macro needs."""

    items: list[Any]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages there are."""
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        """Whether there is a previous page."""
        return self.page > 1

    @property
    def has_next(self) -> bool:
        """Whether there is a next page."""
        return self.page < self.pages

    @property
    def prev_num(self) -> int:
        """The previous page's number."""
        return self.page - 1

    @property
    def next_num(self) -> int:
        """The next page's number."""
        return self.page + 1


def _page_number(args: Mapping[str, str]) -> int:
    raw = str(args.get("page", "1"))
    return max(1, min(int(raw), 1_000_000)) if raw.isdigit() and len(raw) < 8 else 1


def segment_names(segment: Segment) -> dict[int, str]:
    """Names of the segments a definition refers to."""
    ids = {v for c in raw_criteria((segment.include or []) + (segment.exclude or []))
           if isinstance(c, dict) and c.get("field") == "segment" for v in c.get("value") or []
           if isinstance(v, int)}
    return service.names_of(ids)


def describe(segment: Segment) -> str:
    """The definition in readable words."""
    try:
        return describe_definition(segment.definition(), segment_names(segment))
    except SegmentDefinitionError as exc:
        return f"(definition cannot be read: {exc})"


def describe_job(job: SegmentJob) -> str:
    """The definition a job is applying, in readable words."""
    definition = job.definition or {}
    ids = {v for c in (definition.get("include") or []) + (definition.get("exclude") or [])
           if c.get("field") == "segment" for v in c.get("value") or [] if isinstance(v, int)}
    try:
        return describe_definition(definition, service.names_of(ids))
    except SegmentDefinitionError as exc:
        return f"(definition cannot be read: {exc})"


# How long a finished job's outcome stays on the segment page.
JOB_SHOWN = timedelta(minutes=15)


def job_context(segment: Segment, job: SegmentJob | None = None) -> dict[str, Any]:
    """The segment's rule-change job the page shows (None when there is nothing to say):
    one queued or running; one that failed or was interrupted while its edit is still the
    latest; one that finished in the last 15 minutes."""
    job = job or jobs.latest_job(segment.id)
    if job is not None and job.status not in jobs.ACTIVE:
        if job.status == "done":
            keep = (job.result or {}).get("version") == segment.version \
                and job.finished_at is not None and job.finished_at > utcnow() - JOB_SHOWN
        else:  # failed or interrupted: shown while its edit is still the latest
            keep = job.base_version == segment.version
        if not keep:
            job = None
    if job is None:
        return {"job": None}
    return {"job": job, "job_done": jobs.live_done(job), "job_percent": jobs.percent(job),
            "job_phase": jobs.phase(job), "job_describe": describe_job(job)}


def criterion_words(criterion: Any, names: Mapping[int, str]) -> str:
    """Readable words for one stored criterion or group ('any of: a or b')."""
    try:
        item = parse_item(criterion, "criterion")
        words = item_label(item, dict(names))
        if getattr(item, "mode", "none") != "none":
            words = f"{item.mode} of: {words[1:-1]}"  # a list item needs no parentheses
        return words
    except SegmentDefinitionError:
        return str(criterion)


def members_page(segment: Segment, args: Mapping[str, str]) -> tuple[Page, str]:
    """A page of the segment's members with why each is in (list, rule, override)."""
    q = (args.get("q") or "").strip()[:320]
    page = _page_number(args)
    sm = SegmentMembership
    query = (select(Member.id, Member.external_id, Member.email, Member.tier, Member.points,
                    sm.via, sm.since)
             .join(sm, sm.member_id == Member.id).where(sm.segment_id == segment.id))
    if q:
        query = query.where(or_(Member.id == q, Member.external_id == q,
                                Member.email == q.lower()))
        total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    else:
        total = segment.size or 0
    rows = db.session.execute(query.order_by(sm.member_id).limit(MEMBERS_PER_PAGE)
                              .offset((page - 1) * MEMBERS_PER_PAGE)).all()
    return Page(rows, page, MEMBERS_PER_PAGE, total), q


def size_chart(segment: Segment, days: int = 90) -> dict[str, Any] | None:
    """The segment's size over time as a line chart: steps of 5 minutes or an hour for a
    segment created in the last two days (rebuilt from its events), daily sizes otherwise."""
    history_ = size_history(segment, days)
    if not history_["points"]:
        return None
    return size_lines([{"name": segment.name, "url": None, "points": history_["points"]}],
                      every=history_["step"])


def history(segment: Segment, names: Mapping[int, str], limit: int = 20) -> list[dict]:
    """The segment's audit entries, newest first, with a readable diff of edits."""
    entries = db.session.scalars(
        select(AuditEntry).where(AuditEntry.entity_type == "segment",
                                 AuditEntry.entity_id == str(segment.id))
        .order_by(AuditEntry.entity_type.desc(), AuditEntry.entity_id.desc(),
                  AuditEntry.id.desc()).limit(limit)).all()
    all_names = dict(names)
    for entry in entries:
        for side in (entry.before or {}, entry.after or {}):
            for c in raw_criteria((side.get("include") or []) + (side.get("exclude") or [])):
                if isinstance(c, dict) and c.get("field") == "segment":
                    all_names.update({v: f"#{v}" for v in c.get("value") or []
                                      if isinstance(v, int) and v not in all_names})
    return [{"entry": e, "changes": _changes(e, all_names)} for e in entries]


def _changes(entry: AuditEntry, names: Mapping[int, str]) -> list[dict]:
    """Before/after of each changed attribute; criteria as readable words per criterion."""
    if entry.action not in ("segment.update", "segment.create", "segment.delete"):
        return []
    before, after = entry.before or {}, entry.after or {}
    out = []
    for key in ("name", "kind", "customer_segment_id", "url", "description"):
        if (before.get(key) or None) != (after.get(key) or None):
            out.append({"key": key.replace("_", " "), "before": before.get(key),
                        "after": after.get(key), "criteria": False})
    for key in ("include", "exclude"):
        old = [criterion_words(c, names) for c in before.get(key) or []]
        new = [criterion_words(c, names) for c in after.get(key) or []]
        if old != new:
            out.append({"key": key, "criteria": True,
                        "removed": [w for w in old if w not in new],
                        "added": [w for w in new if w not in old],
                        "kept": [w for w in new if w in old]})
    return out


def show_context(segment: Segment, args: Mapping[str, str]) -> dict[str, Any]:
    """Everything the segment page shows."""
    names = segment_names(segment)
    members, q = members_page(segment, args)
    this_segment = MembershipEvent.segment_id == segment.id
    if db.session.get_bind().dialect.name == "postgresql":
        # PostgreSQL would walk the primary key backwards past every other segment's events
        # (it assumes they are evenly mixed); `= ANY` keeps it on the (segment_id, id) index.
        this_segment = MembershipEvent.segment_id.in_([segment.id, -1])
    recent = db.session.scalars(
        select(MembershipEvent).where(this_segment)
        .order_by(MembershipEvent.segment_id.desc(), MembershipEvent.id.desc())
        .limit(EVENTS_SHOWN)).all()
    # Names in a second query: joining first makes PostgreSQL hash the whole members table.
    who = {r.id: (r.email, r.external_id) for r in db.session.execute(
        select(Member.id, Member.email, Member.external_id).where(
            Member.id.in_({e.member_id for e in recent})))} if recent else {}
    events = [(e, *who.get(e.member_id, (None, None))) for e in recent]
    return {
        "s": segment, "segment": segment, "describe": describe(segment), "names": names,
        "include_words": [criterion_words(c, names) for c in segment.include or []],
        "exclude_words": [criterion_words(c, names) for c in segment.exclude or []],
        "members": members, "q": q, "uses": service.where_used(segment),
        "events": events, "history": history(segment, names), "chart": size_chart(segment),
        "delete_form": DeleteForm(), "delete_refused": None, "archive_form": ArchiveForm(),
        "status_refused": None, **job_context(segment),
    }


# --- overlap --------------------------------------------------------------------------------

# Where each region's count sits in the Venn diagram (viewBox 400 x 330), by bit mask.
VENN = {
    2: {"circles": [(150, 160, 105), (250, 160, 105)],
        "labels": {1: (100, 160), 2: (300, 160), 3: (200, 160)},
        "names": [(120, 35, "middle"), (280, 35, "middle")], "height": 290},
    3: {"circles": [(155, 135, 95), (245, 135, 95), (200, 215, 95)],
        "labels": {1: (115, 110), 2: (285, 110), 4: (200, 265), 3: (200, 95),
                   5: (148, 200), 6: (252, 200), 7: (200, 163)},
        "names": [(110, 22, "middle"), (290, 22, "middle"), (200, 327, "middle")],
        "height": 340},
}


def _short(name: str, limit: int = 24) -> str:
    return name if len(name) <= limit else name[:limit - 1] + "…"


def overlap_picks(values: list[str]) -> tuple[list[Segment], list[str], list[str]]:
    """The segments named (id, #id, customer segment id or name), the texts as typed, and
    the problems with them."""
    from webapp.services.lookup import find_segment

    texts = [v.strip()[:200] for v in values if v and v.strip()][:4]
    problems: list[str] = []
    chosen: list[Segment] = []
    for text in texts:
        segment = find_segment(text.lstrip("#"), by_name=True)
        if segment is None:
            problems.append(f"No segment has the id, customer segment id or name “{text}”.")
        elif any(c.id == segment.id for c in chosen):
            problems.append(f"{segment.name} is chosen twice: choose different segments.")
        else:
            chosen.append(segment)
    if len(texts) > stats.MAX_OVERLAP:
        problems.append(f"Compare at most {stats.MAX_OVERLAP} segments at a time.")
    return chosen, texts, problems


def _region_words(mask: int, segments: list[Segment]) -> str:
    inside = [s.name for i, s in enumerate(segments) if mask & (1 << i)]
    outside = [s.name for i, s in enumerate(segments) if not mask & (1 << i)]
    if len(inside) == len(segments):
        return "In both" if len(segments) == 2 else "In all three"
    words = "Only in " + inside[0] if len(inside) == 1 else "In " + " and ".join(inside)
    return words + (", not " + " or ".join(outside) if len(inside) > 1 else "")


def overlap_context(values: list[str]) -> dict[str, Any]:
    """The overlap page: the pickers, and for 2 or 3 segments the Venn regions counted."""
    chosen, texts, problems = overlap_picks(values)
    context: dict[str, Any] = {
        "texts": texts + [""] * (stats.MAX_OVERLAP - len(texts)), "problems": problems,
        "result": None, "names": [name for name, in db.session.execute(
            select(Segment.name).where(Segment.archived_at.is_(None))
            .order_by(Segment.size.desc(), Segment.name).limit(500))]}
    if problems or len(chosen) < 2:
        return context
    result = stats.overlap(chosen)
    layout = VENN[len(chosen)]
    union = result.union
    regions = []
    for mask in sorted(layout["labels"], key=lambda m: (bin(m).count("1"), m)):
        count = result.count(mask)
        x, y = layout["labels"][mask]
        regions.append({"mask": mask, "count": count, "x": x, "y": y,
                        "words": _region_words(mask, chosen),
                        "percent": 100 * count / union if union else 0})
    context["result"] = {
        "segments": [{"segment": s, "x": layout["circles"][i][0], "y": layout["circles"][i][1],
                      "r": layout["circles"][i][2], "name_x": layout["names"][i][0],
                      "name_y": layout["names"][i][1], "short": _short(s.name),
                      "size": result.in_all(1 << i)} for i, s in enumerate(chosen)],
        "regions": regions, "union": union, "height": layout["height"],
        "all": result.count((1 << len(chosen)) - 1),
    }
    return context
