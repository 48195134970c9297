"""What members did with offers, as the limits and activation checks read it (the database
edge of webapp.targeting.limits).

One round trip loads a member's activations and awards (for every offer, or some) and the
counts over all members of the offers that have a global limit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import OfferActivation, OfferFulfillment, OfferLimit, OfferUsage
from webapp.targeting.limits import Activation, Usage

_A = OfferActivation.__table__
_F = OfferFulfillment.__table__
_U = OfferUsage.__table__
_L = OfferLimit.__table__
_N = sa.cast(sa.null(), sa.BigInteger)
_T = sa.null()


def _raw(column: Any) -> Any:
    """A datetime column read as the driver gives it (SQLite: text, parsed only when a
    decision is computed; the cache key needs no parsing)."""
    return sa.type_coerce(column, sa.String)


def _query(offer_ids: bool, global_ids: bool) -> sa.CompoundSelect:
    member = sa.bindparam("member_id")
    activations = sa.select(sa.literal_column("'a'").label("source"), _A.c.offer_id,
                            _raw(_A.c.activated_at).label("t1"),
                            _raw(_A.c.expires_at).label("t2"),
                            _raw(_A.c.fulfilled_at).label("t3"), _N.label("n1"),
                            _N.label("n2")).where(_A.c.member_id == member)
    awards = sa.select(sa.literal_column("'f'"), _F.c.offer_id, _raw(_F.c.fulfilled_at), _T, _T,
                       _N, _N).where(_F.c.member_id == member)
    if offer_ids:
        ids = sa.bindparam("offer_ids", expanding=True)
        activations = activations.where(_A.c.offer_id.in_(ids))
        awards = awards.where(_F.c.offer_id.in_(ids))
    parts: list[Any] = [activations, awards]
    if global_ids:
        # the offers with a global limit, as stored (no list of ids to bind on every request);
        # the pattern is written in the statement: bound, SQLite runs the whole UNION slower
        limited = sa.select(_L.c.offer_id).where(_L.c.limit_type.like(
            sa.literal_column("'global!_%'"), escape="!"))
        parts.append(sa.select(sa.literal_column("'g'"), _U.c.offer_id, _T, _T, _T,
                               _U.c.activations, _U.c.awards).where(
            _U.c.offer_id.in_(limited)))
    return sa.union_all(*parts)


# Built once: the decorated offers read them on every request.
_QUERIES = {(o, g): _query(o, g) for o in (False, True) for g in (False, True)}


def usage_query() -> sa.CompoundSelect:
    """The statement of `usage_rows` for every offer of the member, with the counts over all
    members of every offer that has a global limit (none when no offer has one), for a
    caller that reads it together with other rows (parameter `member_id`)."""
    return _QUERIES[(False, True)]


def usage_rows(member_id: str, *, offer_ids: Collection[int] | None = None,
               global_ids: Collection[int] = ()) -> list[tuple]:
    """The member's activity rows (and, when `global_ids` names any, the counts over all
    members of every offer with a global limit) as plain tuples that can key a cache:
    (source, offer_id, t1, t2, t3, n1, n2). They are not sorted: the same data in another
    order only makes another key (a cache miss), never a wrong answer."""
    params: dict[str, Any] = {"member_id": member_id}
    if offer_ids is not None:
        params["offer_ids"] = sorted(offer_ids)
    query = _QUERIES[(offer_ids is not None, bool(global_ids))]
    return [tuple(r) for r in db.session.connection().execute(query, params)]


def _moment(value: Any) -> datetime | None:
    """A stored naive-UTC datetime from the driver's value (text on SQLite)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def usage_from_rows(rows: Iterable[tuple]) -> dict[int, Usage]:
    """Usage per offer id from `usage_rows`."""
    activations: dict[int, list[Activation]] = defaultdict(list)
    awards: dict[int, list[datetime]] = defaultdict(list)
    totals: dict[int, tuple[int, int]] = {}
    for source, offer_id, t1, t2, t3, n1, n2 in rows:
        if source == "a":
            activations[offer_id].append(Activation(_moment(t1), _moment(t2), _moment(t3)))
        elif source == "f":
            awards[offer_id].append(_moment(t1))
        else:
            totals[offer_id] = (int(n1 or 0), int(n2 or 0))
    out: dict[int, Usage] = {}
    for offer_id in set(activations) | set(awards) | set(totals):
        g_act, g_awd = totals.get(offer_id, (0, 0))
        out[offer_id] = Usage(activations=tuple(activations.get(offer_id, ())),
                              awards=tuple(awards.get(offer_id, ())),
                              global_activations=g_act, global_awards=g_awd)
    return out


def member_usage(member_id: str, *, offer_ids: Collection[int] | None = None,
                 global_ids: Collection[int] = ()) -> dict[int, Usage]:
    """Usage per offer id for one member (offers with no activity are absent)."""
    return usage_from_rows(usage_rows(member_id, offer_ids=offer_ids, global_ids=global_ids))
