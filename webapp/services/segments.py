"""Segment services: save, delete, where-used, reach/impact preview and rule-check warnings.

The dashboard views and the JSON:API both call these; the rules themselves live in
`webapp.targeting` and membership changes go through `webapp.services.membership`.

Decisions worth knowing:

* `save_segment` with `segment` given is a partial update: keys missing from `data` keep their
  current values (so an API PATCH can send only what changes).
* A segment's kind can change only while nothing is in it: no materialized members, no list
  entries and no overrides. Otherwise the change is refused (create a new segment instead).
* `url` is informational but is shown as a link, so only http(s) URLs are accepted.
* Error keys are attribute names (`name`, `kind`, `customer_segment_id`, `url`, `include`,
  `exclude`, `version`), a criterion path (`include[2]`), or `segment` for a refusal that is
  about the segment as a whole (the segment-count limit).
* Deleting a segment writes a REMOVE event for each of its members (so event consumers do not
  keep members of a segment that no longer exists); the events stay after the delete.
* Tags are lower-cased, trimmed, inner spaces collapsed, at most 40 characters, no commas,
  at most 20 per segment; the owner is a user named by id or email (None: no owner).
* Archive instead of delete. An archived segment leaves the pickers and the default list, keeps
  its members, events and history, and can be restored. Archiving is refused while anything
  uses the segment (offers' audiences, rewards' required segments, other segments' criteria),
  naming those uses: an archived segment that still decided who sees an offer would be a
  rule nobody can find. A new use of an archived segment (audience, required segment,
  criterion, upload) is refused with a message; uses that already exist keep working.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import current_app, has_request_context, url_for
from sqlalchemy import delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from webapp.extensions import db
from webapp.models import (
    Audience,
    AudienceSegment,
    Member,
    Offer,
    Override,
    Reward,
    RewardRequiredSegment,
    Segment,
    SegmentDependency,
    SegmentMembership,
    SegmentTag,
    User,
)
from webapp.services.audit import record
from webapp.services.errors import Conflict, ServiceError
from webapp.services.lookup import find_segment
from webapp.services.membership import (
    Cause,
    Staged,
    apply_delta,
    desired_condition,
    lock_segments,
    refresh_segment,
)
from webapp.services.rules import rules_condition
from webapp.targeting import (
    Criterion,
    Definition,
    Group,
    SegmentDefinitionError,
    count_criteria,
    describe_definition,
    find_cycle,
    group_parts,
    is_group,
    parse_criterion,
    walk_criteria,
)
from webapp.targeting import schema as ts
from webapp.timeutil import utcnow

members_t = Member.__table__
memberships_t = SegmentMembership.__table__

KINDS = ("dynamic", "static")
NAME_MAX = 200
DESCRIPTION_MAX = 10_000
CUSTOMER_ID_MAX = 255
URL_MAX = 2000
EDITABLE = ("name", "description", "kind", "customer_segment_id", "url", "include", "exclude",
            "tags", "owner")
TAG_MAX = 40
TAGS_PER_SEGMENT = 20
# Control characters (Unicode Cc) have no place in a label; other characters, even unassigned
# or private-use ones, are stored as given (a tag is text the client chose).
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
# A customer segment id is used as a URL path segment (/segments/<id>), so only characters that
# need no escaping there; made only of digits it would shadow the segment with that number.
_CUSTOMER_ID_RE = re.compile(r"^[A-Za-z0-9._:~-]+$")
CUSTOMER_ID_RULE = ("letters A-Z and a-z, digits 0-9 and the characters - _ . : ~, with at least "
                    "one that is not a digit (an all-digit id would be taken for a segment "
                    "number)")


class SegmentError(ServiceError):
    """A refused segment operation; `.errors` maps a field or criterion path to its message."""

    def __init__(self, errors: dict[str, str]):
        # A criterion's message already starts with its path (include[2] (…): …).
        super().__init__(errors, text="; ".join(f"{k}: {v}" if not v.startswith(k) else v
                                                for k, v in errors.items()))


class SegmentInUse(SegmentError):
    """The segment cannot be deleted: `.uses` lists every offer, reward and segment using it."""

    def __init__(self, segment: Segment, uses: list[dict]):
        self.uses = uses
        names = ", ".join(f"{_KIND_WORDS[u['kind']]} {u['name']}" for u in uses)
        super().__init__({"segment": f"{segment.name} is still used by {names}; "
                                     "remove those uses before deleting it"})


_KIND_WORDS = {"offer_audience": "offer", "reward": "reward", "segment": "segment"}


class SegmentStillUsed(SegmentError):
    """The segment cannot be archived: `.uses` lists every offer, reward and segment using it."""

    def __init__(self, segment: Segment, uses: list[dict]):
        self.uses = uses
        names = ", ".join(f"{_KIND_WORDS[u['kind']]} {u['name']}" for u in uses)
        super().__init__({"segment": f"{segment.name} is still used by {names}; "
                                     "remove those uses before archiving it"})


def archived_message(name: str, *, sentence: bool = False) -> str:
    """How a refused new use of an archived segment is explained (as the API's fragment, or
    with `sentence` as the dashboard's sentence)."""
    text = (f"egment {name} is archived, so it cannot be newly used; restore it on its page "
            "first, or choose another segment")
    return f"S{text}." if sentence else f"s{text}"


def archived_among(ids: Any, *, keep: Any = ()) -> dict[int, str]:
    """The archived segments among `ids` (id -> name), leaving out those in `keep` (uses that
    exist already). The rows are read FOR KEY SHARE on PostgreSQL, so an archive that runs
    at the same time waits for this use to be committed (and then sees it) or is seen here."""
    wanted = sorted({i for i in ids if isinstance(i, int) and not isinstance(i, bool)
                     and 0 < i < 2**63} - set(keep))
    if not wanted:
        return {}
    rows = db.session.execute(select(Segment.id, Segment.name, Segment.archived_at).where(
        Segment.id.in_(wanted)).with_for_update(read=True, key_share=True))
    return {sid: name for sid, name, archived_at in rows if archived_at is not None}


# --- input --------------------------------------------------------------------------------

def _limit(name: str) -> int:
    return int(current_app.config[name])


#: How the dashboard's labels name the segment attributes in messages people read.
LABELS = {"name": "Name", "description": "Description", "customer_segment_id":
          "Customer segment id", "url": "URL"}


def _text(value: Any, key: str, errors: dict[str, str], *, max_len: int,
          required: bool = False) -> str | None:
    """A stripped string attribute (None when empty), recording problems in `errors`."""
    label = LABELS.get(key, key)
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors[key] = f"{label} must be text."
        return None
    value = value.strip()
    if required and not value:
        errors[key] = f"{label} is required."
        return None
    if len(value) > max_len:
        errors[key] = (f"{label} must be at most {max_len:,} characters "
                       f"({len(value):,} given).")
        return None
    return value or None


def parse_criteria(items: Any, group: str, errors: dict[str, str]) -> list[Criterion | Group]:
    """Validate a list of criteria and groups; each refusal is recorded under its path, e.g.
    include[2] or include[0].any[1] (a group's own problem under the group's path)."""
    if items is None:
        return []
    if not isinstance(items, list | tuple):
        errors[group] = f"{group} is a list of criteria"
        return []
    parsed = [_parse_item(raw, f"{group}[{i}]", 0, errors) for i, raw in enumerate(items)]
    return [p for p in parsed if p is not None]


def _parse_item(raw: Any, where: str, depth: int, errors: dict[str, str]
                ) -> Criterion | Group | None:
    """One criterion or group (None when refused: the refusals are in `errors`)."""
    if is_group(raw):
        try:
            mode, items = group_parts(raw, where, depth + 1)
        except SegmentDefinitionError as exc:
            errors[where] = str(exc)
            return None
        parsed = [_parse_item(x, f"{where}.{mode}[{i}]", depth + 1, errors)
                  for i, x in enumerate(items)]
        if any(p is None for p in parsed):
            return None
        return Group(mode, tuple(p for p in parsed if p is not None), where)
    try:
        criterion = parse_criterion(raw, where)
    except SegmentDefinitionError as exc:
        errors[where] = str(exc)
        return None
    repeated = _repeated_segments(criterion)
    if repeated:
        errors[criterion.where] = (
            f"{criterion.where} (segment {criterion.operator} {list(criterion.value)}): "
            f"segment {', '.join(f'#{r}' for r in repeated)} is listed more than once; "
            "list each segment once")
        return None
    return criterion


def _repeated_segments(c: Criterion) -> list[int]:
    """The segment ids a segment criterion lists more than once."""
    if c.kind != ts.SEGMENT or not isinstance(c.value, list | tuple):
        return []
    seen: set[int] = set()
    return sorted({v for v in c.value if v in seen or seen.add(v)})


def resolve_segment_references(items: Any, group: str, errors: dict[str, str]) -> Any:
    """Criteria with each `segment` criterion's customer segment ids replaced by segment ids.

    Segments are named by id or customer segment id everywhere (audiences, required segments,
    URLs); criteria store ids, so a name is resolved once, here, and an unknown one is
    recorded under the criterion's path naming it. Groups (`any`/`all`/`none`) are walked.
    """
    if not isinstance(items, list | tuple):
        return items
    return [_resolve_criterion(raw, f"{group}[{i}]", errors) for i, raw in enumerate(items)]


def _resolve_criterion(raw: Any, where: str, errors: dict[str, str]) -> Any:
    if not isinstance(raw, dict):
        return raw
    if raw.get("field") != "segment":
        nested = {key: resolve_segment_references(raw[key], f"{where}.{key}", errors)
                  for key in ("any", "all", "none") if isinstance(raw.get(key), list)}
        return {**raw, **nested} if nested else raw
    value = raw.get("value")
    if not isinstance(value, list) or not any(isinstance(v, str) for v in value):
        return raw
    resolved: list[Any] = []
    unknown: list[str] = []
    for item in value:
        if not isinstance(item, str):
            resolved.append(item)
            continue
        segment = find_segment(item)
        if segment is None:
            unknown.append(item)
        resolved.append(segment.id if segment is not None else item)
    if unknown:
        names = ", ".join(repr(u) for u in unknown)
        errors[where] = (f"{where} (segment {raw.get('operator')} {value}): no segment has "
                         f"the id or customer segment id {names}")
        return raw
    return {**raw, "value": resolved}


def parse_definition_input(definition: dict, errors: dict[str, str], *,
                           segment_id: int | None = None) -> Definition | None:
    """Validate {kind, include, exclude}: criteria, limits, referenced segments and cycles."""
    kind = definition.get("kind") or "dynamic"
    if kind not in KINDS:
        errors["kind"] = f"kind is static or dynamic, not {kind!r}"
        return None
    unknown: dict[str, str] = {}
    include = parse_criteria(resolve_segment_references(definition.get("include"), "include",
                                                        unknown), "include", errors)
    exclude = parse_criteria(resolve_segment_references(definition.get("exclude"), "exclude",
                                                        unknown), "exclude", errors)
    errors.update(unknown)  # "no segment named X" says more than "ids are whole numbers"
    limit = _limit("LIMIT_CRITERIA")
    for group in ("include", "exclude"):
        count = count_criteria(definition.get(group) or [])
        if count > limit:
            errors[group] = (f"Too many {group} criteria: the limit is {limit:,} {group} "
                             f"{'criterion' if limit == 1 else 'criteria'} per segment "
                             f"(counted in every group too) and {count:,} were given; "
                             f"remove {count - limit:,}.")
    if kind == "static":
        for group in ("include", "exclude"):
            if definition.get(group):
                errors[group] = (f"A static segment has no {group} criteria; its members are "
                                 "its list (choose dynamic to use criteria).")
    if any(k.startswith(("include", "exclude")) for k in errors):
        return None
    parsed = Definition(kind=kind, include=tuple(include), exclude=tuple(exclude),
                        references=frozenset(v for c in walk_criteria(include + exclude)
                                             if c.kind == ts.SEGMENT for v in c.value))
    _check_references(parsed, segment_id, errors)
    return parsed


def _check_references(d: Definition, segment_id: int | None, errors: dict[str, str]) -> None:
    """Referenced segments must exist, and no reference may lead back to this segment."""
    if not d.references:
        return
    known = set(db.session.scalars(select(Segment.id).where(Segment.id.in_(d.references))))
    existing = set(db.session.scalars(select(SegmentDependency.depends_on_id).where(
        SegmentDependency.segment_id == segment_id))) if segment_id is not None else set()
    archived = archived_among(d.references, keep=existing)
    for c in d.criteria():
        if c.kind != ts.SEGMENT:
            continue
        missing = [v for v in c.value if v not in known]
        if missing:
            errors[c.where] = (f"{c.where} (segment {c.operator} {list(c.value)}): no segment "
                               f"with id {', '.join(f'#{m}' for m in missing)}")
        elif any(v in archived for v in c.value):
            first = next(v for v in c.value if v in archived)
            errors[c.where] = f"{c.where}: {archived_message(archived[first])}"
        elif segment_id is not None and segment_id in c.value:
            errors[c.where] = (f"{c.where} (segment {c.operator} {list(c.value)}): a segment "
                               "cannot refer to itself")
    if segment_id is None or any(k.startswith(("include", "exclude")) for k in errors):
        return
    # Cycles: the graph is the stored dependencies with this segment's edges replaced.
    graph: dict[int, set[int]] = defaultdict(set)
    for sid, dep in db.session.execute(select(SegmentDependency.segment_id,
                                              SegmentDependency.depends_on_id)):
        if sid != segment_id:
            graph[sid].add(dep)
    graph[segment_id] = set(d.references)
    definitions = {sid: Definition(kind="dynamic", references=frozenset(refs))
                   for sid, refs in graph.items()}
    try:
        find_cycle(definitions, names_of(set(graph) | {r for v in graph.values() for r in v}))
    except SegmentDefinitionError as exc:
        first = next(c for c in d.criteria() if c.kind == ts.SEGMENT)
        errors[first.where] = f"{first.where}: {exc}"


def names_of(ids: set[int]) -> dict[int, str]:
    """Segment names by id, for the given ids."""
    if not ids:
        return {}
    rows = db.session.execute(select(Segment.id, Segment.name).where(Segment.id.in_(ids)))
    return {sid: name for sid, name in rows}


def _stored(segment: Segment) -> dict[str, Any]:
    """The editable attributes of a segment, as the audit trail records them."""
    return {"name": segment.name, "description": segment.description or "",
            "kind": segment.kind, "customer_segment_id": segment.customer_segment_id,
            "url": segment.url, "include": list(segment.include or []),
            "exclude": list(segment.exclude or []), "tags": segment.tags,
            "owner": segment.owner.email if segment.owner is not None else None}


def parse_tags(value: Any, errors: dict[str, str]) -> list[str]:
    """Tags from a list of strings: trimmed, inner spaces collapsed, lower-cased, unique."""
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(t, str) for t in value):
        errors["tags"] = "tags is a list of words, e.g. [\"loyalty\", \"q4 campaign\"]"
        return []
    tags: list[str] = []
    for raw in value:
        tag = " ".join(raw.split()).lower()
        if not tag:
            continue
        if _CONTROL_RE.search(tag):
            errors["tags"] = "a tag is printable text (no control characters)"
            return []
        if "," in tag:
            errors["tags"] = f"tag {tag[:60]!r} contains a comma; commas separate tags"
            return []
        if len(tag) > TAG_MAX:
            errors["tags"] = (f"tag {tag[:40]}… is {len(tag):,} characters; a tag is at most "
                              f"{TAG_MAX} characters")
            return []
        if tag not in tags:
            tags.append(tag)
    if len(tags) > TAGS_PER_SEGMENT:
        errors["tags"] = (f"a segment has at most {TAGS_PER_SEGMENT} tags ({len(tags)} given); "
                          f"remove {len(tags) - TAGS_PER_SEGMENT}")
        return []
    return sorted(tags)


def find_owner(value: Any, errors: dict[str, str]) -> User | None:
    """The owner named by user id or email (None for no owner); unknown ones are refused."""
    if value is None or value == "":
        return None
    user = None
    if isinstance(value, int) and not isinstance(value, bool):
        user = db.session.get(User, value) if 0 < value < 2**31 else None
    elif isinstance(value, str) and len(value) <= 320 and "\x00" not in value:
        text = value.strip()
        if text.isdigit() and len(text) < 10:
            user = db.session.get(User, int(text))
        else:
            user = db.session.scalar(select(User).where(func.lower(User.email) == text.lower()))
    else:
        errors["owner"] = "owner is a user's email (or null for no owner)"
        return None
    if user is None:
        shown = str(value)[:80]
        errors["owner"] = f"owner {shown!r} is not a user of Beacon; give a user's email"
    return user


def has_content(segment: Segment) -> bool:
    """Whether anything is in the segment: members, list entries or overrides (its kind is
    then fixed)."""
    return bool(db.session.scalar(select(exists().where(
        memberships_t.c.segment_id == segment.id)))) or bool(db.session.scalar(select(exists(
            ).where(Override.segment_id == segment.id))))


def _who_changed(segment: Segment) -> str:
    who = segment.updated_by_label or "someone"
    when = segment.updated_at.strftime("%Y-%m-%d %H:%M UTC") if segment.updated_at else "earlier"
    return f"{who} changed this segment at {when} (now version {segment.version})"


# --- save -----------------------------------------------------------------------------------

def validate(data: dict, *, segment: Segment | None = None) -> dict[str, Any]:
    """The canonical attributes `data` would give the segment; raises SegmentError."""
    if not isinstance(data, dict):
        raise SegmentError({"segment": "a segment is an object of attributes"})
    current = _stored(segment) if segment is not None else {
        "name": None, "description": "", "kind": None, "customer_segment_id": None,
        "url": None, "include": [], "exclude": [], "tags": [], "owner": None}
    merged = {**current, **{k: v for k, v in _canonical_keys(data).items() if k in EDITABLE}}
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    out["name"] = _text(merged["name"], "name", errors, max_len=NAME_MAX, required=True)
    out["description"] = _text(merged["description"], "description", errors,
                               max_len=DESCRIPTION_MAX) or ""
    out["customer_segment_id"] = _text(merged["customer_segment_id"], "customer_segment_id",
                                       errors, max_len=CUSTOMER_ID_MAX)
    _check_customer_id(out["customer_segment_id"], errors)
    url = _text(merged["url"], "url", errors, max_len=URL_MAX)
    if url and not _URL_RE.match(url):
        errors["url"] = "URL must be a web address starting with http:// or https://."
    out["url"] = url
    out["tags"] = parse_tags(merged["tags"], errors)
    owner = find_owner(merged["owner"], errors)
    out["owner"] = owner.email if owner is not None else None
    out["owner_id"] = owner.id if owner is not None else None
    kind = merged["kind"]
    if kind not in KINDS:
        errors["kind"] = ("Kind is required: static or dynamic." if kind in (None, "")
                          else f"Kind must be static or dynamic, not {kind!r}.")
        kind = None
    out["kind"] = kind
    if kind is not None:
        parsed = parse_definition_input(
            {"kind": kind, "include": merged["include"], "exclude": merged["exclude"]},
            errors, segment_id=segment.id if segment is not None else None)
        if parsed is not None:
            out["include"] = [c.to_dict() for c in parsed.include]
            out["exclude"] = [c.to_dict() for c in parsed.exclude]
            out["references"] = sorted(parsed.references)
    csid = out["customer_segment_id"]
    if csid and "customer_segment_id" not in errors:
        taken = db.session.scalar(select(Segment.id).where(
            Segment.customer_segment_id == csid))
        if taken is not None and (segment is None or taken != segment.id):
            errors["customer_segment_id"] = Conflict(f"Customer segment id {csid!r} is already "
                                                     f"used by segment #{taken}.")
    if segment is None:
        limit = _limit("LIMIT_SEGMENTS")
        count = db.session.scalar(select(func.count()).select_from(Segment)) or 0
        if count >= limit:
            errors["segment"] = (f"The limit is {limit:,} segment{'' if limit == 1 else 's'} "
                                 "and it is reached; "
                                 "delete a segment you no longer need first.")
    elif kind is not None and kind != segment.kind and has_content(segment):
        errors["kind"] = (f"The kind cannot change from {segment.kind} to {kind} once the "
                          "segment has members, list entries or overrides; create a new "
                          "segment instead.")
    if errors:
        raise SegmentError(errors)
    return out


def _check_customer_id(csid: str | None, errors: dict[str, str]) -> None:
    """Refuse a customer segment id that could not be used in a URL or shadows a segment id."""
    if not csid or "customer_segment_id" in errors:
        return
    if not _CUSTOMER_ID_RE.match(csid):
        bad = sorted({ch for ch in csid if not _CUSTOMER_ID_RE.match(ch)})
        shown = " ".join("space" if ch == " " else repr(ch) for ch in bad[:10])
        errors["customer_segment_id"] = (f"Customer segment id {csid[:60]!r} contains "
                                         f"{shown}; it may use only {CUSTOMER_ID_RULE}.")
    elif csid.isdigit():
        errors["customer_segment_id"] = (f"Customer segment id {csid!r} is only digits, so "
                                         f"/segments/{csid} would mean segment #{csid}; add a "
                                         f"letter or prefix, e.g. \"crm-{csid}\" (letters, "
                                         "digits and - _ . : ~ are allowed).")
    elif set(csid) == {"."}:
        errors["customer_segment_id"] = (f"Customer segment id {csid!r} cannot be only dots "
                                         f"(a URL path treats it as a directory); it may use "
                                         f"only {CUSTOMER_ID_RULE}.")


def _canonical_keys(data: dict) -> dict[str, Any]:
    aliases = {"customerSegmentId": "customer_segment_id"}
    return {aliases.get(k, k): v for k, v in data.items()}


def save_segment(data: dict, *, segment: Segment | None = None, actor: str,
                 actor_id: int | None = None, expected_version: int | None = None) -> Segment:
    """Create (segment None) or update a segment, re-materialize it, audit, commit once."""
    try:
        segment = write_segment(data, segment=segment, actor=actor, actor_id=actor_id,
                                expected_version=expected_version)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise SegmentError({"customer_segment_id": Conflict(
            "customer segment id is already used by another segment")}) from None
    return segment


def write_segment(data: dict, *, segment: Segment | None = None, actor: str,
                  actor_id: int | None = None, expected_version: int | None = None,
                  progress: Callable[[int], None] | None = None,
                  staged: Staged | None = None) -> Segment:
    """`save_segment` without the commit: the caller commits (a background job commits its
    own status with it). `progress` hears how many members the rule change moved so far;
    `staged` are the sets the new rules move, when the caller sized the change already."""
    if segment is not None and expected_version is not None \
            and expected_version != segment.version:
        raise SegmentError({"version": f"{_who_changed(segment)}; your edit was based on "
                                       f"version {expected_version}. Review the current "
                                       "definition and apply your change again."})
    values = validate(data, segment=segment)
    references = values.pop("references", [])
    owner_id = values.pop("owner_id")
    now = utcnow()
    creating = segment is None
    read_version = None if creating else segment.version
    if not creating:
        # The write lock (this segment and its dependents, in id order) before the row is
        # updated: a rule edit re-materializes them, and a writer holding one of them must
        # not be waiting for this segment's row in turn. It reloads the segment, so the
        # optimistic check below compares with the version this edit was based on.
        lock_segments([segment.id])
    before = None if creating else _stored(segment)
    if creating:
        segment = Segment(created_by_id=actor_id, created_at=now, version=1, size=0)
        db.session.add(segment)
    else:
        # Optimistic lock: the version moves only if nobody saved since we read it.
        moved = db.session.execute(
            update(Segment).where(Segment.id == segment.id,
                                  Segment.version == read_version)
            .values(version=read_version + 1)
            .execution_options(synchronize_session=False))
        if moved.rowcount != 1:
            db.session.rollback()
            db.session.refresh(segment)
            raise SegmentError({"version": f"{_who_changed(segment)} while you were "
                                           "editing. Review the current definition and "
                                           "apply your change again."})
        set_committed_value(segment, "version", read_version + 1)
    for key in EDITABLE:
        if key not in ("tags", "owner"):
            setattr(segment, key, values[key])
    segment.owner = db.session.get(User, owner_id) if owner_id is not None else None
    wanted = set(values["tags"])
    for row in [r for r in segment.tag_rows if r.tag not in wanted]:
        segment.tag_rows.remove(row)
    segment.tag_rows.extend(SegmentTag(tag=t) for t in sorted(wanted - set(segment.tags)))
    segment.updated_by_id = actor_id
    segment.updated_by_label = actor
    segment.updated_at = now
    db.session.flush()
    db.session.execute(delete(SegmentDependency).where(
        SegmentDependency.segment_id == segment.id))
    if references:
        db.session.execute(insert(SegmentDependency), [
            {"segment_id": segment.id, "depends_on_id": ref} for ref in references])
    after = _stored(segment)
    if creating:
        record(actor, "segment.create", "segment", segment.id,
               f"Created {segment.kind} segment {segment.name}", after=after)
    else:
        changed = [k for k in EDITABLE if before[k] != after[k]]
        record(actor, "segment.update", "segment", segment.id,
               f"Changed {', '.join(changed) or 'nothing'} of segment {segment.name} "
               f"(version {segment.version})", before=before, after=after)
    rules_changed = creating or any(before[k] != after[k]
                                    for k in ("kind", "include", "exclude"))
    if segment.kind == "dynamic" and rules_changed:
        refresh_segment(segment, Cause("rule", actor, {
            "reason": "segment created" if creating else "criteria changed",
            "segment_version": segment.version}), progress=progress, staged=staged)
    return segment


# --- where used and delete ---------------------------------------------------------------

def _url(endpoint: str, **values: Any) -> str | None:
    if not has_request_context() or endpoint not in current_app.view_functions:
        return None
    return url_for(endpoint, **values)


def where_used(segment: Segment) -> list[dict]:
    """Every offer audience, reward and other segment that uses this segment."""
    uses: list[dict] = []
    rows = db.session.execute(
        select(Audience.id, Audience.audience_type, Offer.id, Offer.name)
        .join(AudienceSegment, AudienceSegment.audience_id == Audience.id)
        .join(Offer, Offer.id == Audience.offer_id)
        .where(AudienceSegment.segment_id == segment.id).order_by(Offer.name, Audience.id))
    for audience_id, audience_type, offer_id, offer_name in rows:
        uses.append({"kind": "offer_audience", "id": audience_id, "name": offer_name,
                     "offer_id": offer_id, "audience_type": audience_type,
                     "url": _url("offers.show", offer_id=offer_id)})
    rows = db.session.execute(
        select(Reward.id, Reward.name)
        .join(RewardRequiredSegment, RewardRequiredSegment.reward_id == Reward.id)
        .where(RewardRequiredSegment.segment_id == segment.id).order_by(Reward.name))
    for reward_id, name in rows:
        uses.append({"kind": "reward", "id": reward_id, "name": name,
                     "url": _url("rewards.show", reward_id=reward_id)})
    rows = db.session.execute(
        select(Segment.id, Segment.name)
        .join(SegmentDependency, SegmentDependency.segment_id == Segment.id)
        .where(SegmentDependency.depends_on_id == segment.id).order_by(Segment.name))
    for segment_id, name in rows:
        uses.append({"kind": "segment", "id": segment_id, "name": name,
                     "url": _url("segments.show", segment_id=segment_id)})
    return uses


def delete_segment(segment: Segment, *, actor: str) -> None:
    """Delete an unused segment (REMOVE events for its members are written and kept)."""
    lock_segments([segment.id])
    uses = where_used(segment)
    if uses:
        raise SegmentInUse(segment, uses)
    before = _stored(segment)
    members = select(memberships_t.c.member_id).where(memberships_t.c.segment_id == segment.id)
    source = "static_list" if segment.kind == "static" else "rule"
    delta = apply_delta(segment, remove=members, via="list" if segment.kind == "static" else "rule",
                        cause=Cause(source, actor, {"reason": "segment deleted"}), audit=False)
    record(actor, "segment.delete", "segment", segment.id,
           f"Deleted {segment.kind} segment {segment.name} ({delta.removed:,} members)",
           before={**before, "size": delta.removed}, after=None)
    db.session.delete(segment)
    db.session.commit()


def archive_segment(segment: Segment, *, actor: str) -> Segment:
    """Archive an unused segment (refused naming its uses); members and history are kept."""
    if segment.archived_at is not None:
        raise SegmentError({"segment": f"{segment.name} is archived already"})
    # The row lock makes a use being added at the same time either wait for this archive
    # (and then be refused) or be committed first (and then be listed below).
    db.session.execute(select(Segment.id).where(Segment.id == segment.id).with_for_update())
    uses = where_used(segment)
    if uses:
        db.session.rollback()
        raise SegmentStillUsed(segment, uses)
    segment.archived_at = utcnow()
    segment.archived_by_label = actor
    record(actor, "segment.archive", "segment", segment.id,
           f"Archived segment {segment.name} ({segment.size or 0:,} members kept)",
           before={"archived": False}, after={"archived": True})
    db.session.commit()
    return segment


def restore_segment(segment: Segment, *, actor: str) -> Segment:
    """Bring an archived segment back to the list and the pickers."""
    if segment.archived_at is None:
        raise SegmentError({"segment": f"{segment.name} is not archived"})
    segment.archived_at = None
    segment.archived_by_label = None
    record(actor, "segment.restore", "segment", segment.id,
           f"Restored segment {segment.name} from the archive",
           before={"archived": True}, after={"archived": False})
    db.session.commit()
    return segment


def all_tags() -> list[tuple[str, int]]:
    """Every tag in use with how many segments carry it, most used first."""
    rows = db.session.execute(select(SegmentTag.tag, func.count()).group_by(SegmentTag.tag)
                              .order_by(func.count().desc(), SegmentTag.tag))
    return [(tag, count) for tag, count in rows]


def owners() -> list[User]:
    """The users who may own segments (active ones), by name."""
    return list(db.session.scalars(select(User).where(User.active.is_(True))
                                   .order_by(User.name, User.email)))


# --- preview and warnings ---------------------------------------------------------------

def rule_expression(d: Definition, now=None):
    """SQL boolean over `members` for a validated definition's rules (no overrides)."""
    return rules_condition(d, now=now)


def _sample_columns():
    c = members_t.c
    return (c.id, c.external_id, c.email, c.tier, c.points)


def _samples(query) -> list[dict]:
    return [{"id": r.id, "external_id": r.external_id, "email": r.email, "tier": r.tier,
             "points": r.points} for r in db.session.execute(query)]


def _few(query, sample: int) -> list[dict]:
    """The first `sample` rows of a query whose matches may be rare.

    We only ask once the exact count says there are some. PostgreSQL plans `LIMIT 10` as if
    matches were common and can crawl a million rows by index; a materialized CTE makes it
    compute the (known to be small or cheap) set first. SQLite stops at the first rows anyway.
    """
    rows = query.cte("candidates").prefix_with("MATERIALIZED", dialect="postgresql")
    return _samples(select(rows).limit(sample))


def total_members() -> int:
    """How many members there are."""
    return db.session.scalar(select(func.count()).select_from(members_t)) or 0


def preview(definition: dict, *, segment: Segment | None = None, sample: int = 10) -> dict:
    """Exact reach of a definition, samples, and for an existing segment the join/leave impact.

    Everything is computed in the database; at most `sample` rows of each list are loaded.
    Raises SegmentError when the definition is refused.
    """
    errors: dict[str, str] = {}
    d = parse_definition_input(definition, errors,
                               segment_id=segment.id if segment is not None else None)
    if d is None or errors:
        raise SegmentError(errors)
    now = utcnow()
    result: dict[str, Any] = {"kind": d.kind, "total_members": total_members(),
                              "describe": describe_definition(d, names_of(set(d.references)))}
    in_segment = in_this = None
    if segment is not None:
        in_segment = exists().where(memberships_t.c.segment_id == segment.id,
                                    memberships_t.c.member_id == members_t.c.id)
        in_this = sa.and_(memberships_t.c.member_id == members_t.c.id,
                          memberships_t.c.segment_id == segment.id)
    if d.kind == "static":
        if segment is None:
            cond = sa.false()
        else:
            cond = in_segment
    elif segment is not None:
        cond = desired_condition(segment.id, d.to_dict(), now)
    else:
        cond = rule_expression(d, now)
    if segment is None:
        result["count"] = db.session.scalar(
            select(func.count()).select_from(members_t).where(cond)) or 0
        result["samples"] = _samples(select(*_sample_columns()).where(cond).limit(sample))
        return result
    current = db.session.scalar(select(func.count()).select_from(memberships_t).where(
        memberships_t.c.segment_id == segment.id)) or 0
    result["current"] = current
    if d.kind == "static" or _unchanged(d, segment):
        # The stored rules: the materialized membership is the answer, no scan needed.
        result["count"], staying = current, current
        result["samples"] = _samples(select(*_sample_columns()).join(
            memberships_t, memberships_t.c.member_id == members_t.c.id).where(
            memberships_t.c.segment_id == segment.id).limit(sample))
    else:
        # One scan (a left join, hash-joined on PostgreSQL) gives both who would match and
        # who of them is in the segment already.
        row = db.session.execute(select(
            func.count(), func.count(memberships_t.c.member_id)).select_from(
            members_t.outerjoin(memberships_t, in_this)).where(cond)).one()
        result["count"], staying = row[0] or 0, row[1] or 0
        result["samples"] = _samples(select(*_sample_columns()).where(cond).limit(sample))
    result["joining"] = result["count"] - staying
    result["leaving"] = current - staying
    joining = select(*_sample_columns()).select_from(
        members_t.outerjoin(memberships_t, in_this)).where(
        cond, memberships_t.c.member_id.is_(None))
    leaving = select(*_sample_columns()).join(memberships_t, in_this).where(
        sa.not_(sa.func.coalesce(cond, sa.false())))
    result["joining_samples"] = _few(joining, sample) if result["joining"] else []
    result["leaving_samples"] = _few(leaving, sample) if result["leaving"] else []
    changed = bool(result["joining"] or result["leaving"])
    uses = where_used(segment) if changed else []
    result["affected"] = {
        "offers": list({u["offer_id"]: {"id": u["offer_id"], "name": u["name"], "url": u["url"]}
                        for u in uses if u["kind"] == "offer_audience"}.values()),
        "rewards": [{"id": u["id"], "name": u["name"], "url": u["url"]}
                    for u in uses if u["kind"] == "reward"],
        "segments": [{"id": u["id"], "name": u["name"], "url": u["url"]}
                     for u in uses if u["kind"] == "segment"],
    }
    return result


def _unchanged(d: Definition, segment: Segment) -> bool:
    """Whether a definition is the segment's stored one (stored criteria are canonical)."""
    stored = d.to_dict()
    return (segment.kind == d.kind and stored["include"] == list(segment.include or [])
            and stored["exclude"] == list(segment.exclude or []))


def _bounds(criteria: tuple[Criterion, ...]) -> dict[str, list[Criterion]]:
    by_field: dict[str, list[Criterion]] = defaultdict(list)
    for c in criteria:
        numeric = c.kind == ts.INTEGER or (c.kind == ts.ANY and c.operator in ts.ORDERING)
        if numeric and c.operator in (ts.GTE, ts.GT, ts.LTE, ts.LT, ts.EQUALS):
            by_field[c.field].append(c)
    return by_field


def _contradiction(criteria: list[Criterion]) -> tuple[Criterion, Criterion] | None:
    """Two numeric criteria on one field that no value can meet together, or None."""
    for i, a in enumerate(criteria):
        for b in criteria[i + 1:]:
            if not _compatible(a, b):
                return a, b
    return None


def _interval(c: Criterion) -> tuple[float, bool, float, bool]:
    """(low, low_inclusive, high, high_inclusive) of the values a criterion admits."""
    inf = float("inf")
    v = float(c.value)
    return {ts.GTE: (v, True, inf, False), ts.GT: (v, False, inf, False),
            ts.LTE: (-inf, False, v, True), ts.LT: (-inf, False, v, False),
            ts.EQUALS: (v, True, v, True)}[c.operator]


def _integer_range(c: Criterion) -> tuple[float, float]:
    """The whole numbers a criterion on an integer field admits, as (lowest, highest)."""
    low, low_inc, high, high_inc = _interval(c)
    if low != float("-inf"):
        low = math.ceil(low) if low_inc else math.floor(low) + 1
    if high != float("inf"):
        high = math.floor(high) if high_inc else math.ceil(high) - 1
    return low, high


def _compatible(a: Criterion, b: Criterion) -> bool:
    """Whether some value meets both numeric criteria."""
    if any(isinstance(x.value, bool) or not isinstance(x.value, int | float) for x in (a, b)):
        return True
    if a.kind == ts.INTEGER and b.kind == ts.INTEGER:
        (lo1, hi1), (lo2, hi2) = _integer_range(a), _integer_range(b)
        return max(lo1, lo2) <= min(hi1, hi2)
    lo1, li1, hi1, hi1i = _interval(a)
    lo2, li2, hi2, hi2i = _interval(b)
    lo, lo_inc = max((lo1, li1), (lo2, li2), key=lambda t: (t[0], not t[1]))
    hi, hi_inc = min((hi1, hi1i), (hi2, hi2i), key=lambda t: (t[0], t[1]))
    return lo < hi or (lo == hi and lo_inc and hi_inc)


def _label(c: Criterion, names: dict[int, str]) -> str:
    from webapp.targeting import criterion_label

    return criterion_label(c, names)


def _key(item: Criterion | Group) -> str:
    """What makes two items the same rule (repr tells True, 1 and 1.0 apart)."""
    if isinstance(item, Group):
        return repr(item.to_dict())
    return repr((item.field, item.operator, item.value, item.case_insensitive))


def _complements(a: Criterion, b: Criterion) -> bool:
    """Whether every member meets one of two criteria: an operator and its negation on the same
    value (`x = 1` and `x != 1`). `p >= 5` and `p < 5` are not: a member without p meets
    neither."""
    if (a.field, a.case_insensitive, repr(a.value)) != (b.field, b.case_insensitive,
                                                        repr(b.value)):
        return False
    return ts.NEGATIVE.get(a.operator) == b.operator or ts.NEGATIVE.get(b.operator) == a.operator


def _constant(item: Criterion | Group) -> bool | None:
    """True or False when an item holds for every member or for none, else None (may vary)."""
    if not isinstance(item, Group):
        if item.operator == ts.IN and item.value == []:
            return False
        if item.operator == ts.NOT_IN and item.value == []:
            return True
        return None
    values = [_constant(i) for i in item.items]
    crits = [i for i in item.items if not isinstance(i, Group)]
    if item.mode == "all":
        if False in values or any(_contradiction(g) for g in _bounds(crits).values()):
            return False
        return True if all(v is True for v in values) else None
    covered = True in values or any(_complements(a, b) for n, a in enumerate(crits)
                                    for b in crits[n + 1:])
    holds_any = True if covered else (False if all(v is False for v in values) else None)
    if holds_any is None or item.mode == "any":
        return holds_any
    return not holds_any


_MODE_NAMES = {"all": "an all", "any": "an any", "none": "a none"}


def _group_warnings(d: Definition, names: dict[int, str]) -> list[str]:
    """Warnings about groups: always true or false, repeated items, one-item groups."""
    from webapp.targeting import item_label, walk_groups

    out: list[str] = []
    for g in walk_groups(d.include + d.exclude):
        text = f"{g.where} ({_MODE_NAMES[g.mode]} group)"
        if len(g.items) == 1:
            only = g.items[0]
            if g.mode == "none":
                out.append(f"{text} has one item: it means not ({item_label(only, names)}); a "
                           "criterion with the opposite operator says it more simply.")
            else:
                out.append(f"{text} has one item, so it is the same as that item alone "
                           f"({item_label(only, names)}): flatten it (remove the group).")
        seen: dict[str, str] = {}
        for n, item in enumerate(g.items):
            where = f"{g.where}.{g.mode}[{n}]"
            key = _key(item)
            if key in seen:
                out.append(f"{where} repeats {seen[key]} ({item_label(item, names)}); "
                           "remove one.")
            else:
                seen[key] = where
        crits = [i for i in g.items if not isinstance(i, Group)]
        if g.mode == "all":
            for group in _bounds(crits).values():
                pair = _contradiction(group)
                if pair:
                    out.append(f"In {text}, {_label(pair[0], names)} and "
                               f"{_label(pair[1], names)} contradict each other: no member can "
                               "meet both, so the group never holds.")
                    break
        value = _constant(g)
        if value is not None:
            effect = ("so it is always true" if value else "so it is never true")
            if g.where.startswith("include") and g.where.count("[") == 1:
                effect += ("" if value else ": the segment matches no one")
            elif g.where.startswith("exclude") and g.where.count("[") == 1:
                effect += (": it excludes every member" if value else
                           ": it never excludes anyone")
            out.append(f"{text} holds for {'every member' if value else 'no member'}, "
                       f"{effect}.")
    return out


def warnings(definition: dict, count: int | None, total_members: int) -> list[str]:
    """Rule checks to show before saving: everyone/no one, contradictions, duplicates, excludes,
    and groups that always or never hold, repeat an item or hold only one."""
    errors: dict[str, str] = {}
    try:
        d = parse_definition_input(definition, errors)
    except SegmentDefinitionError:
        return []
    if d is None or d.kind != "dynamic":
        return []
    names = names_of(set(d.references))
    out: list[str] = []
    if not d.include and not d.exclude:
        out.append("There are no criteria: this segment matches every member.")
    elif count is not None and total_members and count == total_members:
        out.append(f"These criteria match every member ({total_members:,}): "
                   "check that is what you want.")
    top = [c for c in d.include if not isinstance(c, Group)]
    for group in _bounds(top).values():
        pair = _contradiction(group)
        if pair:
            out.append(f"{_label(pair[0], names)} and {_label(pair[1], names)} contradict "
                       "each other: no member can meet both, so the segment matches no one.")
    seen: dict[tuple, str] = {}
    for c in d.include + d.exclude:
        if isinstance(c, Group):
            continue
        key = (c.field, c.operator, repr(c.value), c.case_insensitive)
        if key in seen:
            first = seen[key]
            if first.split("[")[0] == c.where.split("[")[0]:
                out.append(f"{c.where} repeats {first} ({_label(c, names)}); remove one.")
            else:
                out.append(f"{c.where} excludes what {first} includes ({_label(c, names)}): "
                           "the segment matches no one.")
        else:
            seen[key] = c.where
    out.extend(_group_warnings(d, names))
    if count == 0 and d.exclude:
        admitted = db.session.scalar(select(func.count()).select_from(members_t).where(
            rule_expression(Definition(kind="dynamic", include=d.include)))) or 0
        if admitted:
            out.append(f"The exclude criteria remove everyone the include criteria admit "
                       f"({admitted:,} members): the segment matches no one.")
    elif count == 0 and total_members:
        out.append("These criteria match no one right now.")
    return out


__all__ = [
    "SegmentError", "SegmentInUse", "SegmentStillUsed", "all_tags", "archive_segment",
    "archived_among", "archived_message", "delete_segment", "has_content", "names_of", "owners",
    "parse_criteria", "parse_tags", "find_owner", "restore_segment",
    "parse_definition_input", "preview", "resolve_segment_references", "rule_expression",
    "save_segment", "total_members", "validate", "warnings", "where_used",
]
