"""Member activities: recording them (API batches, CSV imports, the demo) and loading them for
the targeting core's activity criteria (semantics in :mod:`webapp.targeting.behaviour`).

Recording is one transaction per call: every valid item is written, each invalid one is named
with what is wrong, and a repeated external id (already stored, or twice in one call) is
recognised and not counted again. Each member with new activities is then re-evaluated, in
the same transaction, against the dynamic segments with an activity criterion that measures
one of them (and, through the cascade, the segments that depend on those), so an activity that
moves a member in or out of a segment writes that ADD/REMOVE event (source ``activity``)
before the request answers; an activity no criterion measures (a backfill older than every
window, a moment still to come, a type or properties no rule reads) re-evaluates nothing.
Leaving a window as time passes, and a future activity's moment coming, are applied by
``flask segments refresh``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

import sqlalchemy as sa

from webapp.bulk import CHUNK, one_of
from webapp.extensions import db
from webapp.models import Activity, Member
from webapp.services.lookup import _member_tries
from webapp.services.rules import program_timezone
from webapp.targeting import behaviour
from webapp.targeting.criteria import parse_definition, walk_criteria
from webapp.targeting.env import make_env
from webapp.targeting.paths import key_problem
from webapp.targeting.values import parse_iso, to_utc_naive, zone
from webapp.timeutil import utcnow

activities_t = Activity.__table__
members_t = Member.__table__

#: An activity's attributes (`activity_type`: JSON:API reserves the member name `type`).
FIELDS = ("member", "activity_type", "occurred_at", "amount", "properties", "external_id")
_KNOWN = frozenset(FIELDS)
MAX_PROPERTIES_BYTES = 8_000
MAX_EXTERNAL_ID = 255


@dataclass
class Outcome:
    """What became of one item: recorded, duplicate (its external id is known) or invalid."""

    status: str
    external_id: str | None = None
    id: int | None = None
    member_id: str | None = None
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class Recorded:
    """What a call recorded: the per-item outcomes, the activities it wrote (per member id, as
    the targeting core reads them) and the membership changes they caused."""

    outcomes: list[Outcome]
    new: dict[str, list[behaviour.Activity]] = field(default_factory=dict)
    deltas: list[Any] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {"recorded": 0, "duplicate": 0, "invalid": 0}
        for o in self.outcomes:
            out[o.status] += 1
        return out


def _text(value: Any, name: str, errors: dict[str, str], limit: int) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        errors[name] = f"{name} is required"
        return None
    if not isinstance(value, str):
        errors[name] = f"{name} is a string"
        return None
    if len(value) > limit or "\x00" in value:
        errors[name] = f"{name} is at most {limit:,} characters"
        return None
    return value.strip()


#: How the size of properties is measured (built once: json.dumps with an option builds an
#: encoder per call).
_PROPERTIES_JSON = json.JSONEncoder(allow_nan=False)
#: How properties are written where the rows bypass SQLAlchemy (as its JSON type would: None
#: is JSON null).
_STORED_JSON = json.JSONEncoder(allow_nan=False, ensure_ascii=False)


def _properties_problem(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "properties is a JSON object"
    for key in value:
        problem = key_problem(key) if isinstance(key, str) else "a key is not a string"
        if problem:
            return f"properties: {problem}"
    try:
        size = len(_PROPERTIES_JSON.encode(value))
    except (TypeError, ValueError):
        return "properties holds a value that is not JSON (NaN or infinity)"
    if size > MAX_PROPERTIES_BYTES:
        return f"properties is at most {MAX_PROPERTIES_BYTES:,} bytes of JSON ({size:,} given)"
    return None


def parse_item(raw: Mapping[str, Any], tz: str | tzinfo
               ) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """One activity's attributes checked: (the row to write without member_id, errors by key).

    `member` stays a reference (member id, external id or email) to resolve in bulk."""
    errors: dict[str, str] = {}
    if not _KNOWN.issuperset(raw):
        for key in sorted(str(k) for k in raw if k not in _KNOWN):
            errors[key] = f"unknown attribute {key}; an activity has {', '.join(FIELDS)}"
    member = _text(raw.get("member"), "member", errors, 320)
    kind = _text(raw.get("activity_type"), "activity_type", errors, behaviour.MAX_TYPE_LENGTH)
    external_id = _text(raw.get("external_id"), "external_id", errors, MAX_EXTERNAL_ID)
    occurred_at = None
    when = raw.get("occurred_at")
    if when is None or when == "":
        errors["occurred_at"] = "occurred_at is required (ISO 8601, e.g. 2026-12-01T14:00:00Z)"
    elif not isinstance(when, str):
        errors["occurred_at"] = "occurred_at is an ISO 8601 datetime string"
    else:
        try:
            parsed = parse_iso(when)
        except ValueError:
            parsed = None
        if not isinstance(parsed, datetime):
            errors["occurred_at"] = (f"occurred_at {when!r} is not an ISO 8601 datetime "
                                     "(2026-12-01T14:00:00Z or with an offset)")
        else:
            occurred_at = to_utc_naive(parsed, zone(tz))
            if not 1900 <= occurred_at.year <= 2999:
                errors["occurred_at"] = "occurred_at is between the years 1900 and 2999"
    amount_e4 = None
    amount = raw.get("amount")
    if amount is not None:
        amount_e4, problem = behaviour.amount_e4(amount)
        if problem:
            errors["amount"] = f"{problem} (got {amount!r})" if not isinstance(
                amount, str) else f"{problem}, not the string {amount!r}"
    props = raw.get("properties")
    if props is not None:
        problem = _properties_problem(props)
        if problem:
            errors["properties"] = problem
    if errors:
        return None, errors
    return {"member": member, "type": kind, "occurred_at": occurred_at, "amount_e4": amount_e4,
            "properties": props or None, "external_id": external_id}, {}


def resolve_members(refs: Iterable[str]) -> dict[str, str]:
    """Member references (member id, external id or email, tried in that order) to member ids,
    in a few queries for any number of references; unknown references are left out."""
    refs = sorted(set(refs))
    found: dict[str, str] = {}
    for column in ("id", "external_id", "email"):
        wanted: dict[str, list[str]] = defaultdict(list)
        for ref in refs:
            if ref in found:
                continue
            for col, value in _member_tries(ref):
                if col == column:
                    wanted[value].append(ref)
        if not wanted:
            continue
        for member_id, value in db.session.execute(sa.select(
                members_t.c.id, members_t.c[column]).where(one_of(members_t.c[column],
                                                                  sorted(wanted)))):
            for ref in wanted[value]:
                found.setdefault(ref, member_id)
    return found


def _insert(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert rows, skipping external ids already stored: the ids of those really inserted,
    by external id (`_insert_copied` on PostgreSQL, `_insert_many` on SQLite)."""
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        return _insert_copied(connection, rows)
    return _insert_many(connection, rows)


def _insert_many(connection: sa.Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
    """SQLite: one INSERT … ON CONFLICT (external_id) DO NOTHING executed by the driver with
    every row's values in their stored form (SQLAlchemy's per-row processing and RETURNING,
    which SQLite answers row by row, cost half as much again as the insert itself).

    The ids need no reading back: from its first write this transaction is the database's
    only writer, and SQLite gives a new row the table's largest id + 1 (activities has no
    AUTOINCREMENT), so the n rows the statement inserted hold the n largest ids, in the
    order given. When fewer rows went in than were given (external ids already stored), the
    rows are read back by external id and those with one of the n largest ids are the ones
    inserted. Both are checked (SQLite picks ids at random once the largest id is 2^63 - 1)."""
    names = ", ".join(_COPIED)
    dumps = _PROPERTIES_JSON.encode
    values = [(r["member_id"], r["type"], r["occurred_at"].isoformat(" ", "microseconds"),
               r["amount_e4"], dumps(r["properties"]), r["external_id"], r["source"],
               r["recorded_at"].isoformat(" ", "microseconds")) for r in rows]
    inserted = connection.exec_driver_sql(
        f"INSERT INTO activities ({names}) VALUES ({', '.join('?' for _ in _COPIED)}) "
        "ON CONFLICT (external_id) DO NOTHING", values).rowcount
    if not inserted:
        return {}
    last = connection.exec_driver_sql("SELECT max(id) FROM activities").scalar()
    first = last - inserted + 1
    if inserted == len(rows):
        ends = dict(connection.exec_driver_sql(
            "SELECT id, external_id FROM activities WHERE id IN (?, ?)", (first, last)).all())
        if ends.get(first) == rows[0]["external_id"] and ends.get(last) == rows[-1][
                "external_id"]:
            return {r["external_id"]: first + i for i, r in enumerate(rows)}
        return _ids_of([r["external_id"] for r in rows])  # every row went in
    found = {ext: id_ for ext, id_ in _ids_of([r["external_id"] for r in rows]).items()
             if id_ >= first}
    if len(found) != inserted:
        raise RuntimeError(f"activities: {inserted} rows inserted, {len(found)} found among "
                           "the newest ids")
    return found


_COPIED = ("member_id", "type", "occurred_at", "amount_e4", "properties", "external_id",
           "source", "recorded_at")


def _insert_copied(connection: sa.Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
    names = ", ".join(_COPIED)
    dumps = _STORED_JSON.encode
    with connection.connection.driver_connection.cursor() as cursor:
        # The table lives as long as the connection; its rows only until the transaction ends
        # (deleted below, and gone with a rollback like anything else the transaction wrote).
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS activities_incoming AS "
                       f"SELECT {names} FROM activities WITH NO DATA")
        with cursor.copy(f"COPY activities_incoming ({names}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row((r["member_id"], r["type"], r["occurred_at"], r["amount_e4"],
                                dumps(r["properties"]), r["external_id"], r["source"],
                                r["recorded_at"]))
        cursor.execute(f"INSERT INTO activities ({names}) SELECT {names} "
                       f"FROM activities_incoming ORDER BY external_id "
                       f"ON CONFLICT (external_id) DO NOTHING RETURNING external_id, id")
        inserted = dict(cursor.fetchall())
        cursor.execute("DELETE FROM activities_incoming")
    return inserted


def record(items: Sequence[Mapping[str, Any]], *, actor: str, source: str = "api",
           now: datetime | None = None, refresh: bool = True, commit: bool = True
           ) -> Recorded:
    """Record activities: an outcome per item, in order; then re-evaluate the members whose
    activities changed (see the module docstring). Commits unless `commit` is false."""
    tz = zone(program_timezone())
    now = now or utcnow()
    parsed: list[dict[str, Any] | None] = []
    outcomes: list[Outcome] = []
    for raw in items:
        row, errors = parse_item(raw, tz)
        parsed.append(row)
        ext = raw.get("external_id") if isinstance(raw.get("external_id"), str) else None
        outcomes.append(Outcome("invalid" if errors else "recorded", external_id=ext,
                                errors=errors))
    members = resolve_members(r["member"] for r in parsed if r is not None)
    rows: list[dict[str, Any]] = []
    first_of: dict[str, int] = {}
    for index, row in enumerate(parsed):
        if row is None:
            continue
        out = outcomes[index]
        member_id = members.get(row["member"])
        if member_id is None:
            out.status = "invalid"
            out.errors["member"] = (f"no member has the id, external id or email "
                                    f"{row['member']!r}")
            continue
        out.member_id = member_id
        if row["external_id"] in first_of:
            out.status = "duplicate"
            continue
        first_of[row["external_id"]] = index
        rows.append({"member_id": member_id, "type": row["type"],
                     "occurred_at": row["occurred_at"], "amount_e4": row["amount_e4"],
                     "properties": row["properties"], "external_id": row["external_id"],
                     "source": source, "recorded_at": now})
    # In one order (by external id) in every transaction: two batches sharing external ids
    # then wait for each other on the unique index in the same order, never in a cycle.
    rows.sort(key=lambda r: r["external_id"])
    inserted = _insert(rows) if rows else {}
    known = _ids_of([r["external_id"] for r in rows if r["external_id"] not in inserted])
    new: dict[str, list[behaviour.Activity]] = defaultdict(list)
    for row in rows:
        out = outcomes[first_of[row["external_id"]]]
        out.id = inserted.get(row["external_id"]) or known.get(row["external_id"])
        if row["external_id"] in inserted:
            new[row["member_id"]].append((row["type"], row["occurred_at"], row["amount_e4"],
                                          row["properties"]))
        else:
            out.status = "duplicate"
    result = Recorded(outcomes, new=new)
    if refresh and new:
        result.deltas = refresh_after(new, actor=actor, source=source, now=now)
    if commit:
        db.session.commit()
    return result


def _ids_of(external_ids: list[str]) -> dict[str, int]:
    if not external_ids:
        return {}
    return dict(db.session.execute(sa.select(activities_t.c.external_id, activities_t.c.id)
                                   .where(one_of(activities_t.c.external_id, external_ids))
                                   ).tuples().all())


@dataclass
class Due:
    """What recording activities leaves to re-evaluate: per segment id, the segment (with its
    rank in the order segments are evaluated, each after those it depends on) and the members
    whose new activities one of its activity criteria measures; the segments those activities
    may move members out of (for the others, `behaviour.only_joins`, the members already in
    stay in and are not re-evaluated); the types recorded."""

    segments: dict[int, tuple[int, Any]] = field(default_factory=dict)
    members: dict[int, set[str]] = field(default_factory=dict)
    may_leave: set[int] = field(default_factory=set)
    types: set[str] = field(default_factory=set)


def due_after(new: Mapping[str, Sequence[behaviour.Activity]], now: datetime,
              into: Due | None = None) -> Due:
    """Which members recording these new activities (per member id) may move in or out of
    which dynamic segments: a member is due for a segment when one of its new activities is
    measured by one of the segment's activity criteria at `now` (its type, inside the
    window, not in the future, the property filters holding). An activity none measures
    changes no measure, so no answer: recorded long ago (a backfill), in the future (the
    refresh at that moment applies it), of a type or with properties no rule reads. Segments
    that depend on a due one follow it through the cascade. Added to `into` when given."""
    from webapp.services.membership import segments_reading_activities

    due = into if into is not None else Due()
    types = {a[0] for acts in new.values() for a in acts}
    due.types |= types
    env = make_env(now, program_timezone())
    for rank, segment, definition, criteria in segments_reading_activities(types):
        members = behaviour.measuring_any(criteria, new, env)
        if not members:
            continue
        due.segments[segment.id] = (rank, segment)
        due.members.setdefault(segment.id, set()).update(members)
        if not behaviour.only_joins(definition, [a for m in members for a in new[m]]):
            due.may_leave.add(segment.id)
    return due


def refresh_due(due: Due, *, actor: str, source: str, now: datetime) -> list[Any]:
    """Bring the membership of the due members (see `due_after`) in line with their segments,
    in this transaction: each segment set-based over just its due members (those not in yet
    when nothing recorded can move a member out), each member's activities read through its
    own index (`rules_condition(per_member=True)`); segments that depend on a changed one
    follow through `apply_delta`'s cascade. The changes that moved someone, in order."""
    from webapp.services.membership import Cause, refresh_segment_members

    if not due.segments:
        return []
    cause = Cause("activity", actor, {"types": sorted(due.types), "source": source})
    deltas: list[Any] = []
    for _, segment in sorted(due.segments.values(), key=lambda ranked: ranked[0]):
        delta = refresh_segment_members(segment, sorted(due.members[segment.id]), cause, now,
                                        joins_only=segment.id not in due.may_leave)
        deltas.extend(d for d in delta.with_cascade() if d.changed)
    return deltas


def refresh_after(new: Mapping[str, Sequence[behaviour.Activity]], *, actor: str,
                  source: str, now: datetime) -> list[Any]:
    """Re-evaluate the members these new activities (per member id) may move, against the
    segments they may move them in or out of: `due_after`, then `refresh_due`."""
    return refresh_due(due_after(new, now), actor=actor, source=source, now=now)


# --- loading for evaluation -------------------------------------------------------------------


def activity_criteria(definitions: Iterable[Any]) -> list[Any]:
    """The validated activity criteria of these definitions (dicts or Definitions); definitions
    that do not validate are skipped (their evaluation reports the problem)."""
    out = []
    for d in definitions:
        raw = d if isinstance(d, dict) else None
        if raw is not None:
            from webapp.targeting.criteria import has_activity_criteria
            if not has_activity_criteria(raw):
                continue
        try:
            parsed = parse_definition(d) if raw is not None else d
        except Exception:  # noqa: BLE001 - an invalid definition is reported where evaluated
            continue
        out.extend(c for c in walk_criteria(parsed.include + parsed.exclude)
                   if c.kind == "activity")
    return out


def load(member_ids: Sequence[str], criteria: Sequence[Any], now: datetime | None = None,
         *, recorded_by: datetime | None = None, connection: Any = None
         ) -> dict[str, list[behaviour.Activity]]:
    """The activities these criteria read, per member id (every given member has a list);
    with `recorded_by`, only those recorded by then (an as-of decision)."""
    out: dict[str, list[behaviour.Activity]] = {m: [] for m in member_ids}
    now = now or utcnow()
    env = make_env(now, program_timezone())
    need = behaviour.needs(criteria, env.now, env.today, env.tz)
    if need is None or not member_ids:
        return out
    spans = sorted(_spans(criteria, env).items())
    statement = _load_statement(tuple(since is not None for _, since in spans),
                                recorded_by is not None)
    params: dict[str, Any] = {"recorded_by": recorded_by}
    for i, (kind, since) in enumerate(spans):
        params[f"type_{i}"] = kind
        params[f"since_{i}"] = since
    ids = list(member_ids)
    execute = (connection or db.session).execute
    for start in range(0, len(ids), CHUNK):
        params["ids"] = ids[start:start + CHUNK]
        for member_id, kind, at, amount, props in execute(statement, params):
            out[member_id].append((kind, at, amount, props))
    return out


_LOAD_STATEMENTS: dict[tuple[tuple[bool, ...], bool], sa.Select] = {}


def _load_statement(bounded: tuple[bool, ...], recorded: bool) -> sa.Select:
    """The statement `load` runs, built once per shape (which types have a start, whether
    `recorded_by` applies) with bound parameters, so SQLAlchemy compiles it once: the
    decorated answers read it on every request."""
    key = (bounded, recorded)
    statement = _LOAD_STATEMENTS.get(key)
    if statement is None:
        a = activities_t.c
        wanted = sa.or_(*(
            sa.and_(a.type == sa.bindparam(f"type_{i}"),
                    a.occurred_at >= sa.bindparam(f"since_{i}", type_=sa.DateTime()))
            if has_start else a.type == sa.bindparam(f"type_{i}")
            for i, has_start in enumerate(bounded)))
        if recorded:
            wanted = sa.and_(wanted, a.recorded_at <= sa.bindparam("recorded_by",
                                                                   type_=sa.DateTime()))
        statement = _LOAD_STATEMENTS[key] = sa.select(
            a.member_id, a.type, a.occurred_at, a.amount_e4, a.properties).where(
            a.member_id.in_(sa.bindparam("ids", expanding=True)), wanted).order_by(
            a.member_id, a.occurred_at, a.id)
    return statement


def _spans(criteria: Sequence[Any], env: Any) -> dict[str, datetime | None]:
    """How far back the criteria read each activity type (None: all time), so a type read
    over 7 days is not loaded over the 90 days another type needs."""
    spans: dict[str, datetime | None] = {}
    for c in criteria:
        kind = c.activity.type
        start, _ = c.activity.window.bounds(env.now, env.today, env.tz)
        if kind in spans and (spans[kind] is None or start is None):
            spans[kind] = None
        else:
            spans[kind] = start if kind not in spans else min(spans[kind], start)
    return spans


def attach(attributes: dict[str, Any], member_id: str, definitions: Iterable[Any],
           now: datetime | None = None) -> dict[str, Any]:
    """The member's attributes with the activities these definitions read, as the core reads
    them (`attributes["activities"]`); unchanged when no definition has activity criteria."""
    return attach_for(attributes, member_id, activity_criteria(definitions), now)


def attach_for(attributes: dict[str, Any], member_id: str, criteria: Sequence[Any],
               now: datetime | None = None) -> dict[str, Any]:
    """`attach` for activity criteria already collected (e.g. a catalog's)."""
    if criteria:
        attributes["activities"] = tuple(load([member_id], criteria, now)[member_id])
    return attributes


def recent(member_id: str, limit: int = 20) -> list[Activity]:
    """The member's most recent activities (newest first)."""
    return list(db.session.scalars(sa.select(Activity).where(
        Activity.member_id == member_id).order_by(Activity.occurred_at.desc(),
                                                  Activity.id.desc()).limit(limit)))


def count_for(member_id: str) -> int:
    """How many activities the member has."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(activities_t).where(
        activities_t.c.member_id == member_id)) or 0


def types_in_use(limit: int = 200) -> list[str]:
    """The activity types recorded so far (for the builder's suggestions), most used first."""
    a = activities_t.c
    return list(db.session.scalars(sa.select(a.type).group_by(a.type).order_by(
        sa.func.count().desc(), a.type).limit(limit)))


def member_page(member_id: str, page: int = 1, per_page: int = 50):
    """The member's activities, newest first, paginated (the member page's "all" list)."""
    return db.paginate(sa.select(Activity).where(Activity.member_id == member_id).order_by(
        Activity.occurred_at.desc(), Activity.id.desc()), page=page, per_page=per_page,
        error_out=False)
