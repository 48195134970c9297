"""Offer limits and activation (SPEC §8): validation, counting in windows, and the tree nodes.

A limit counts either activations or awards (fulfillments): over all members for the
`global_*` kinds, over one member for the `membership_*` kinds. The membership kinds may
count within a window instead of over all time:

- `{"limit": 3}`: over all time;
- `{"limit": 3, "window": {"days": 30}}`: a rolling window, the activities with
  `now - 30 days <= at <= now` (as the activity criteria count them); it frees up when the
  oldest counted activity leaves it;
- `{"limit": 3, "window": {"period": "month"}}`: a calendar period (`day`, `week` from
  Monday, `month`, `year`) in the program's time zone; it resets at the next period's start.

A limit is reached when its count is at least its `limit`. A limit that counts activations
does not hide the offer from a member who holds a current activation (the limit stops new
activations, not the use of one already granted). Pure: plain values in, nodes out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from webapp.targeting.errors import AudienceDefinitionError
from webapp.targeting.result import node
from webapp.targeting.values import zone

GLOBAL_ACTIVATION = "global_activation"
MEMBERSHIP_ACTIVATION = "membership_activation"
GLOBAL_AWARD_COUNT = "global_award_count"
MEMBERSHIP_AWARD_COUNT = "membership_award_count"
LIMIT_TYPES = (GLOBAL_ACTIVATION, MEMBERSHIP_ACTIVATION, GLOBAL_AWARD_COUNT,
               MEMBERSHIP_AWARD_COUNT)
PERIODS = ("day", "week", "month", "year")
MAX_LIMIT = 2**31 - 1
MAX_WINDOW_DAYS = 36_600
MAX_FULFILL_DAYS = 36_600
ACTIVATIONS = "activations"
AWARDS = "awards"
_PERIOD_WORDS = {"day": "today", "week": "this week", "month": "this month",
                 "year": "this year"}


class LimitDefinitionError(AudienceDefinitionError):
    """A limit configuration that cannot be stored (the message names what is wrong, `field`
    what it is about: `limit_type`, `configuration`, `configuration.limit`,
    `configuration.window`)."""


def counts(limit_type: str) -> str:
    """What a limit type counts: "activations" or "awards"."""
    return ACTIVATIONS if limit_type.endswith("activation") else AWARDS


def is_global(limit_type: str) -> bool:
    """Whether a limit type counts over all members."""
    return limit_type.startswith("global_")


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_whole(value: Any) -> Any:
    """A whole-valued float (574.0, which JSON Schema counts as an integer) as an int; any
    other value as it is (for `_whole` to judge), as member and reward numbers are read."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def validate_limit(limit_type: Any, configuration: Any) -> dict[str, Any]:
    """Check a limit and return its normalized configuration ({limit, window})."""
    if limit_type not in LIMIT_TYPES:
        raise LimitDefinitionError(
            f"limit_type must be one of {', '.join(LIMIT_TYPES)}, not {limit_type!r}",
            "limit_type")
    if not isinstance(configuration, Mapping):
        raise LimitDefinitionError(f"{limit_type}: configuration must be an object "
                                   '(e.g. {"limit": 3})')
    unknown = set(configuration) - {"limit", "window"}
    if unknown:
        raise LimitDefinitionError(
            f"{limit_type}: unknown key {', '.join(sorted(map(str, unknown)))} "
            "(give limit and, for the membership kinds, window)")
    limit = _as_whole(configuration.get("limit"))
    if not _whole(limit) or not 1 <= limit <= MAX_LIMIT:
        raise LimitDefinitionError(
            f"{limit_type}: limit must be a whole number from 1 to {MAX_LIMIT:,}",
            "configuration.limit")
    window = configuration.get("window")
    if window is None:
        return {"limit": limit, "window": None}
    if is_global(limit_type):
        raise LimitDefinitionError(
            f"{limit_type}: a global limit counts over all time and takes no window "
            "(windows are for membership_activation and membership_award_count)",
            "configuration.window")
    if not isinstance(window, Mapping) or len(window) != 1 or not (
            set(window) <= {"days", "period"}):
        raise LimitDefinitionError(
            f'{limit_type}: window is {{"days": N}} (rolling) or {{"period": "day", "week", '
            '"month" or "year"}} (calendar)', "configuration.window")
    if "days" in window:
        days = _as_whole(window["days"])
        if not _whole(days) or not 1 <= days <= MAX_WINDOW_DAYS:
            raise LimitDefinitionError(
                f"{limit_type}: window days must be a whole number from 1 to "
                f"{MAX_WINDOW_DAYS:,}", "configuration.window")
        return {"limit": limit, "window": {"days": days}}
    period = window["period"]
    if period not in PERIODS:
        raise LimitDefinitionError(
            f"{limit_type}: window period must be one of {', '.join(PERIODS)}, not "
            f"{period!r}", "configuration.window")
    return {"limit": limit, "window": {"period": period}}


#: What must_fulfill_within_days must be (the service puts it by that attribute).
FULFILL_DAYS_RULE = (f"must be a whole number of days from 1 to {MAX_FULFILL_DAYS:,}, or null "
                     "for no deadline")


def validate_fulfill_days(value: Any) -> int | None:
    """must_fulfill_within_days: a whole number of days from 1, or None for no deadline."""
    if value is None:
        return None
    value = _as_whole(value)
    if not _whole(value) or not 1 <= value <= MAX_FULFILL_DAYS:
        raise LimitDefinitionError(f"must_fulfill_within_days {FULFILL_DAYS_RULE}",
                                   "must_fulfill_within_days")
    return value


def check_same_count(existing: Sequence[str], new_type: str) -> None:
    """A global and a per-member limit on one offer must count the same thing; refuse a mix."""
    for other in existing:
        if counts(other) != counts(new_type):
            raise LimitDefinitionError(
                f"{new_type} counts {counts(new_type)} but this offer already has a "
                f"{other} limit, which counts {counts(other)}: all the limits of one offer "
                "must count the same thing (delete the other limit first)", "limit_type")


def describe_limit(limit_type: str, configuration: Mapping[str, Any]) -> str:
    """Plain words for a limit: 'at most 3 awards per member per calendar month'."""
    limit = configuration.get("limit") or 0
    what = counts(limit_type)
    noun = what[:-1] if limit == 1 else what
    who = "over all members" if is_global(limit_type) else "per member"
    window = configuration.get("window") or None
    if window is None:
        return f"at most {limit:,} {noun} {who}"
    if "days" in window:
        when = f"in any {window['days']:,} days" if window["days"] != 1 else "in any 1 day"
    else:
        when = f"per calendar {window['period']}"
    return f"at most {limit:,} {noun} {who} {when}"


# --- a member's usage of one offer ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Activation:
    """One activation: when, until when it may be fulfilled, and when its award used it."""

    activated_at: datetime
    expires_at: datetime | None = None
    fulfilled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """What the limits and the activation of one offer read for one member.

    `activations`/`awards` are this member's (awards as their times); the `global_*` counts
    are over all members."""

    activations: tuple[Activation, ...] = ()
    awards: tuple[datetime, ...] = ()
    global_activations: int = 0
    global_awards: int = 0

    def current_activation(self, now: datetime) -> Activation | None:
        """The activation the member may use at `now` (made by now, unused, not lapsed)."""
        best = None
        for a in self.activations:
            if a.activated_at > now:
                continue
            if a.fulfilled_at is not None and a.fulfilled_at <= now:
                continue
            if a.expires_at is not None and now >= a.expires_at:
                continue
            if best is None or a.activated_at > best.activated_at:
                best = a
        return best

    def fulfillment_count(self, now: datetime) -> int:
        """How many times the offer awarded this member up to `now`."""
        return sum(1 for at in self.awards if at <= now)


NO_USAGE = Usage()


def _local_midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC).replace(tzinfo=None)


def period_bounds(period: str, now: datetime, tz: str | tzinfo) -> tuple[datetime, datetime]:
    """The calendar period (program time zone) holding `now`: (start, next start), naive UTC."""
    zi = zone(tz)
    today = now.replace(tzinfo=UTC).astimezone(zi).date()
    if period == "day":
        start, end = today, today + timedelta(days=1)
    elif period == "week":
        start = today - timedelta(days=today.weekday())
        end = start + timedelta(days=7)
    elif period == "month":
        start = today.replace(day=1)
        end = (start.replace(year=start.year + 1, month=1) if start.month == 12
               else start.replace(month=start.month + 1))
    else:
        start = today.replace(month=1, day=1)
        end = start.replace(year=start.year + 1)
    return _local_midnight(start, zi), _local_midnight(end, zi)


@dataclass(frozen=True, slots=True)
class LimitCount:
    """One limit applied to one member at one moment."""

    used: int
    limit: int
    reached: bool
    resets_at: datetime | None   # when a reached limit frees up (None: never)
    changes_at: datetime | None  # the next instant the count may change with time alone
    window_words: str            # "this month", "in the last 30 days", "in all"


_US = timedelta(microseconds=1)


def count_limit(limit_type: str, configuration: Mapping[str, Any], usage: Usage,
                now: datetime, tz: str | tzinfo = "UTC") -> LimitCount:
    """The count a limit reads for this member at `now`, whether it is reached, and when it
    resets."""
    limit = int(configuration["limit"])
    window = configuration.get("window") or None
    if is_global(limit_type):
        used = usage.global_activations if counts(limit_type) == ACTIVATIONS \
            else usage.global_awards
        return LimitCount(used, limit, used >= limit, None, None, "over all members")
    times = sorted(a.activated_at for a in usage.activations) \
        if counts(limit_type) == ACTIVATIONS else sorted(usage.awards)
    times = [t for t in times if t <= now]
    future = [t for t in (a.activated_at for a in usage.activations)
              if t > now] if counts(limit_type) == ACTIVATIONS else \
        [t for t in usage.awards if t > now]
    next_future = min(future) if future else None
    if window is None:
        used = len(times)
        return LimitCount(used, limit, used >= limit, None, next_future, "in all")
    if "days" in window:
        span = timedelta(days=int(window["days"]))
        counted = [t for t in times if now - span <= t]
        used = len(counted)
        reached = used >= limit
        resets = counted[used - limit] + span + _US if reached else None
        # the oldest counted activity leaving the window changes the count
        leaves = counted[0] + span + _US if counted else None
        changes = min((m for m in (leaves, next_future) if m is not None), default=None)
        days = int(window["days"])
        words = f"in the last {days:,} days" if days != 1 else "in the last day"
        return LimitCount(used, limit, reached, resets, changes, words)
    start, end = period_bounds(window["period"], now, tz)
    used = sum(1 for t in times if t >= start)
    changes = min((m for m in (end, next_future) if m is not None), default=None)
    return LimitCount(used, limit, used >= limit, end if used >= limit else None, changes,
                      _PERIOD_WORDS[window["period"]])


def _day_text(moment: datetime, tz: str | tzinfo) -> str:
    local = moment.replace(tzinfo=UTC).astimezone(zone(tz))
    return f"{local.day} {local.strftime('%B')} {local.year}"


def limit_node(limit: Mapping[str, Any], usage: Usage, now: datetime,
               tz: str | tzinfo = "UTC") -> tuple[bool, dict[str, Any]]:
    """(reached, the tree node) of one limit for one member: the count used, the limit, the
    window and when it resets ("3 of 3 awards this month; resets 1 January 2027")."""
    limit_type = limit["limit_type"]
    config = limit["configuration"]
    got = count_limit(limit_type, config, usage, now, tz)
    what = counts(limit_type)
    head = f"{got.used:,} of {got.limit:,} {what} {got.window_words}"
    held = what == ACTIVATIONS and usage.current_activation(now) is not None
    reached = got.reached and not held
    expected: dict[str, Any] = {"limit_type": limit_type, "limit": got.limit,
                                "window": config.get("window"),
                                "resets_at": got.resets_at.isoformat() + "Z"
                                if got.resets_at else None}
    if "id" in limit:
        expected["limit_id"] = limit["id"]
    if got.reached:
        reset = (f"resets {_day_text(got.resets_at, tz)}" if got.resets_at is not None
                 else "does not reset")
        text = f"{head}; {reset}"
        if held:
            label = f"{text}; already activated, so it still applies to this member"
            return False, node("limit", label, True, got.used, expected)
        return True, node("limit", describe_limit(limit_type, config), False, got.used,
                          expected, text)
    left = got.limit - got.used
    label = f"{head}; {left:,} left" + (
        f" ({describe_limit(limit_type, config)})" if not is_global(limit_type) else "")
    return reached, node("limit", label, True, got.used, expected)


def activation_node(offer: Mapping[str, Any], usage: Usage, now: datetime,
                    tz: str | tzinfo = "UTC") -> tuple[bool, dict[str, Any]]:
    """(activated, the tree node) for an offer that requires activation."""
    days = offer.get("must_fulfill_within_days")
    rule = (f"requires activation, then an award within {days:,} days" if days
            else "requires activation")
    current = usage.current_activation(now)
    if current is not None:
        text = f"activated on {_day_text(current.activated_at, tz)}"
        if current.expires_at is not None:
            text += f"; must be fulfilled by {_day_text(current.expires_at, tz)}"
        return True, node("activation", f"{rule}: {text}", True, True,
                          {"must_fulfill_within_days": days,
                           "activated_at": current.activated_at.isoformat() + "Z",
                           "expires_at": current.expires_at.isoformat() + "Z"
                           if current.expires_at else None})
    past = [a for a in usage.activations if a.activated_at <= now]
    gap = "not activated"
    if past:
        last = max(past, key=lambda a: a.activated_at)
        if last.fulfilled_at is not None and last.fulfilled_at <= now:
            gap = (f"not activated (the activation of {_day_text(last.activated_at, tz)} was "
                   "used by an award; activate again)")
        elif last.expires_at is not None:
            gap = (f"not activated (the activation of {_day_text(last.activated_at, tz)} "
                   f"lapsed on {_day_text(last.expires_at, tz)} without an award)")
    return False, node("activation", rule, False, False,
                       {"must_fulfill_within_days": days}, gap)


def next_usage_change(limits: Sequence[Mapping[str, Any]], offer: Mapping[str, Any],
                      usage: Usage, now: datetime, tz: str | tzinfo = "UTC"
                      ) -> datetime | None:
    """The first instant after `now` at which this offer's limits or activation may read
    differently for this member with nothing stored changing (a window moving on, an
    activation lapsing or a future-dated activity coming into count)."""
    moments: list[datetime] = []
    for limit in limits:
        if is_global(limit["limit_type"]):
            continue
        got = count_limit(limit["limit_type"], limit["configuration"], usage, now, tz)
        if got.changes_at is not None:
            moments.append(got.changes_at)
        window = limit["configuration"].get("window") or None
        if window and "period" in window:
            moments.append(period_bounds(window["period"], now, tz)[1])
    if offer.get("requires_activation") or any(
            counts(lim["limit_type"]) == ACTIVATIONS for lim in limits):
        for a in usage.activations:
            for m in (a.activated_at, a.expires_at, a.fulfilled_at):
                if m is not None and m > now:
                    moments.append(m)
    for at in usage.awards:
        if at > now:
            moments.append(at)
    return min(moments) if moments else None
