"""Numbers behind the charts: membership changes per day, segment sizes over time, overlaps.

Days and hours are UTC, as the size snapshots are. Everything is counted in the database; at
most one row per day (or hour, or Venn region) comes back.

Membership events have no index on their time (every change writes one event per member, so
each index costs every upload). Their ids grow with time, though, so the first event of a
window is found by a binary search over the primary key, and the window is then read as an
id range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, literal, select

from webapp.extensions import db
from webapp.models import MembershipEvent, Segment, SegmentMembership, SegmentSizeSnapshot
from webapp.timeutil import utcnow

events_t = MembershipEvent.__table__
memberships_t = SegmentMembership.__table__
# A segment created this recently gets hourly points from its events instead of daily ones.
HOURLY_WITHIN = timedelta(hours=48)
MAX_OVERLAP = 3


def first_event_id_since(moment: datetime) -> int | None:
    """The smallest event id recorded at or after `moment` (None when there is none)."""
    low = db.session.scalar(select(func.min(events_t.c.id)))
    high = db.session.scalar(select(func.max(events_t.c.id)))
    if low is None or high is None:
        return None

    def created(event_id: int) -> datetime | None:
        # The first event at or after this id (ids may have gaps).
        return db.session.scalar(select(events_t.c.created_at).where(
            events_t.c.id >= event_id).order_by(events_t.c.id).limit(1))

    last = created(high)
    if last is None or last < moment:
        return None
    while low < high:
        middle = (low + high) // 2
        at = created(middle)
        if at is not None and at >= moment:
            high = middle
        else:
            low = middle + 1
    return low


def _day(value: Any) -> date:
    """A day from what the database's date() gives (a date, or ISO text on SQLite)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def membership_changes_per_day(days: int = 30, now: datetime | None = None
                               ) -> list[tuple[date, int, int]]:
    """(day, members added, members removed) for each of the last `days` days, oldest first."""
    now = now or utcnow()
    first_day = now.date() - timedelta(days=days - 1)
    start = datetime.combine(first_day, datetime.min.time())
    counts: dict[date, list[int]] = {first_day + timedelta(days=i): [0, 0] for i in range(days)}
    first_id = first_event_id_since(start)
    if first_id is not None:
        day = func.date(events_t.c.created_at)
        rows = db.session.execute(
            select(day, events_t.c.action, func.count())
            .where(events_t.c.id >= first_id, events_t.c.created_at >= start)
            .group_by(day, events_t.c.action))
        for value, action, count in rows:
            bucket = counts.get(_day(value))
            if bucket is not None:
                bucket[0 if action == "ADD" else 1] += count
    return [(d, adds, removes) for d, (adds, removes) in counts.items()]


def daily_sizes(segment_ids: list[int], days: int, now: datetime | None = None
                ) -> dict[int, list[tuple[date, int | None]]]:
    """Each segment's size at the end of each of the last `days` days, from the snapshots.

    A day without a snapshot had no change, so it carries the last known size forward; days
    before the first snapshot are None (the segment had no recorded size yet)."""
    now = now or utcnow()
    first_day = now.date() - timedelta(days=days - 1)
    if not segment_ids:
        return {}
    snap = SegmentSizeSnapshot
    known: dict[int, dict[date, int]] = {sid: {} for sid in segment_ids}
    for sid, day, size in db.session.execute(
            select(snap.segment_id, snap.day, snap.size)
            .where(snap.segment_id.in_(segment_ids), snap.day >= first_day)):
        known[sid][day] = size
    before = select(snap.segment_id, func.max(snap.day).label("day")).where(
        snap.segment_id.in_(segment_ids), snap.day < first_day).group_by(
        snap.segment_id).subquery()
    carried = dict(db.session.execute(select(snap.segment_id, snap.size).join(
        before, (before.c.segment_id == snap.segment_id) & (before.c.day == snap.day))).all())
    out: dict[int, list[tuple[date, int | None]]] = {}
    for sid in segment_ids:
        size = carried.get(sid)
        series = []
        for i in range(days):
            day = first_day + timedelta(days=i)
            size = known[sid].get(day, size)
            series.append((day, size))
        out[sid] = series
    return out


def _bucket(column, unit: str):
    """The event time cut to the minute or the hour, as text the same on both databases."""
    if db.session.get_bind().dialect.name == "postgresql":
        pattern = "YYYY-MM-DD HH24:MI" if unit == "minute" else "YYYY-MM-DD HH24"
        return func.to_char(func.date_trunc(unit, column), pattern)
    return func.strftime("%Y-%m-%d %H:%M" if unit == "minute" else "%Y-%m-%d %H", column)


def recent_sizes(segment: Segment, now: datetime | None = None
                 ) -> tuple[timedelta, list[tuple[datetime, int]]]:
    """The segment's size since it was created (at most the last 48 hours), rebuilt backwards
    from its current size and its events' net change per step: 5 minutes for a segment
    younger than two hours, an hour otherwise. Returns (step, [(step start, size at the end
    of that step)] + [(now, size now)])."""
    now = now or utcnow()
    born = max(segment.created_at or now - HOURLY_WITHIN, now - HOURLY_WITHIN)
    step = timedelta(minutes=5) if now - born <= timedelta(hours=2) else timedelta(hours=1)
    unit = "minute" if step < timedelta(hours=1) else "hour"
    start = born.replace(second=0, microsecond=0)
    start -= timedelta(minutes=start.minute % 5) if unit == "minute" else timedelta(
        minutes=start.minute)
    buckets = int((now - start) / step) + 1
    net = [0] * buckets
    this_segment = events_t.c.segment_id == segment.id
    if db.session.get_bind().dialect.name == "postgresql":
        this_segment = events_t.c.segment_id.in_([segment.id, -1])  # see segments.pages
    key = _bucket(events_t.c.created_at, unit)
    for text, change in db.session.execute(
            select(key, func.sum(case((events_t.c.action == "ADD", 1), else_=-1)))
            .where(this_segment, events_t.c.created_at >= start).group_by(key)):
        moment = datetime.strptime(str(text), "%Y-%m-%d %H:%M" if unit == "minute"
                                   else "%Y-%m-%d %H")
        index = int((moment - start) / step)
        if 0 <= index < buckets:
            net[index] += int(change or 0)
    # Walk back from now: a step ends at the size the next step starts from.
    sizes = [0] * buckets
    size = segment.size or 0
    for index in range(buckets - 1, -1, -1):
        sizes[index] = size
        size -= net[index]
    points = [(start + i * step, sizes[i]) for i in range(buckets)]
    return step, points + [(now, segment.size or 0)]


def size_history(segment: Segment, days: int = 90, now: datetime | None = None
                 ) -> dict[str, Any]:
    """The segment's size over time: in steps of minutes or hours for a segment created in
    the last 48 hours, otherwise daily (the last `days` days, from its first recorded size)."""
    now = now or utcnow()
    if segment.created_at is not None and now - segment.created_at <= HOURLY_WITHIN:
        step, points = recent_sizes(segment, now)
        return {"step": "hour" if step >= timedelta(hours=1) else "5 minutes",
                "points": points}
    series = daily_sizes([segment.id], days, now)[segment.id]
    points = [(day, size) for day, size in series if size is not None]
    return {"step": "day", "points": points}


def largest_segments(limit: int = 5) -> list[Segment]:
    """The largest segments that are not archived."""
    return list(db.session.scalars(select(Segment).where(Segment.archived_at.is_(None))
                                   .order_by(Segment.size.desc(), Segment.id).limit(limit)))


# --- overlap -------------------------------------------------------------------------------

@dataclass
class Overlap:
    """How many members are in each region of the Venn diagram of 2 or 3 segments."""

    segments: list[Segment]
    regions: dict[int, int]  # bit mask of the segments a member is in -> members

    @property
    def union(self) -> int:
        """Members in at least one of the segments."""
        return sum(self.regions.values())

    def count(self, mask: int) -> int:
        """Members in exactly the segments of `mask`."""
        return self.regions.get(mask, 0)

    def in_all(self, mask: int) -> int:
        """Members in every segment of `mask` (and maybe others)."""
        return sum(n for m, n in self.regions.items() if m & mask == mask)


def overlap(segments: list[Segment]) -> Overlap:
    """Members per Venn region, exactly, in one query: memberships grouped by member with a
    bit per segment, then counted per combination of bits."""
    if not 2 <= len(segments) <= MAX_OVERLAP:
        raise ValueError("compare two or three segments")
    bits = case(*[(memberships_t.c.segment_id == s.id, literal(1 << i))
                  for i, s in enumerate(segments)], else_=literal(0))
    per_member = (select(func.sum(bits).label("mask"))
                  .where(memberships_t.c.segment_id.in_([s.id for s in segments]))
                  .group_by(memberships_t.c.member_id).subquery())
    rows = db.session.execute(select(per_member.c.mask, func.count())
                              .group_by(per_member.c.mask))
    return Overlap(segments, {int(mask): int(n) for mask, n in rows if mask})
