"""The evaluation environment: the clock, the time zone and the other memberships."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from webapp.targeting import schema as s
from webapp.targeting.criteria import Criterion
from webapp.targeting.values import zone

Member = dict[str, Any]


class Env:
    """What an evaluation needs besides the member: the clock, the zone and other memberships."""

    __slots__ = ("now", "tz", "today", "in_segment", "explain_segment", "memo")

    def __init__(self, now: datetime, tz: tzinfo, today: date,
                 in_segment: Callable[[int], bool] | None = None,
                 explain_segment: Callable[[int], dict[str, Any] | None] | None = None) -> None:
        self.now = now                      # naive UTC
        self.tz = tz
        self.today = today
        self.in_segment = in_segment
        self.explain_segment = explain_segment
        self.memo: dict[Any, Any] = {}


def make_env(now: datetime | None = None, tz: str | tzinfo | None = "UTC",
             memberships: Collection[int] | Callable[[int], bool] | None = None) -> Env:
    """An evaluation environment (`now` naive = UTC; `memberships` answers `segment` criteria)."""
    zi = UTC if tz is None or tz == "UTC" or tz is UTC else zone(tz)
    if now is None:
        now = datetime.now(UTC)
    tzi = now.tzinfo
    if tzi is None:
        now_utc = now
        aware = now.replace(tzinfo=UTC)
    elif tzi is UTC:
        aware = now
        now_utc = now.replace(tzinfo=None)
    else:
        aware = now.astimezone(UTC)
        now_utc = aware.replace(tzinfo=None)
    today = aware.date() if zi is UTC else aware.astimezone(zi).date()
    in_segment: Callable[[int], bool] | None
    if memberships is None:
        in_segment = None
    elif callable(memberships):
        in_segment = memberships
    else:
        ids = frozenset(memberships)
        in_segment = ids.__contains__
    return Env(now=now_utc, tz=zi, today=today, in_segment=in_segment)


_last_env: tuple[Any, Any, Env | None] = (None, None, None)


def _shared_env(now: datetime | None, tz: str | tzinfo) -> Env:
    """An environment without memberships, reused while `now` and `tz` stay the same."""
    global _last_env
    last = _last_env  # one read: another thread may replace it meanwhile
    if now is not None and last[0] is now and last[1] == tz and last[2] is not None:
        return last[2]
    env = make_env(now, tz)
    if now is not None:
        _last_env = (now, tz, env)
    return env

def _threshold(c: Criterion) -> Callable[[Env], Any]:
    dv = c.date_value
    assert dv is not None
    if c.kind == s.DATE:
        if dv.days_ago is None:
            fixed = dv.as_date(date.min)
            return lambda env: fixed
        return lambda env: dv.as_date(env.today)
    if dv.days_ago is None and dv.moment is not None and dv.moment.tzinfo is not None:
        fixed_dt = dv.as_utc(datetime.min, UTC)
        return lambda env: fixed_dt
    def resolve(env: Env) -> Any:
        got = env.memo.get(dv)
        if got is None:
            got = env.memo[dv] = dv.as_utc(env.now, env.tz)
        return got
    return resolve
